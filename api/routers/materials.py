"""Application materials (申报材料) over the API and for the pages: an enterprise uploads files to its review case
(multipart), the enterprise and the reviewing department list and open them. The bytes come from the material store
(outside the database); a download is served as an attachment with the type its content showed, never sniffed again
by the browser."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response

from api.deps import SessionDep, allow
from api.openapi import file_answer
from api.routers.web import error_page, signed_in
from rules.materials import Upload
from schemas.materials import MaterialOut
from schemas.text import Id
from schemas.vocabulary import Role
from services import materials
from services.errors import DomainError, Invalid
from services.scope import Scope

router = APIRouter()
Readers = Annotated[Scope, Depends(allow(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]
Uploader = Annotated[Scope, Depends(allow(Role.ENTERPRISE))]


async def read_uploads(request: Request, files: list[UploadFile]) -> list[Upload]:
    """The uploaded files as (name, bytes); a file is read at most one byte past the per-file limit (the rule then
    names it as too big without holding all of it)."""
    settings = request.app.state.settings
    if len(files) > settings.materials_max_files:
        raise Invalid(f"材料数量超过上限：每个办件最多 {settings.materials_max_files} 个文件（本次 {len(files)} 个）",
                      field="files", rule="materials")  # fmt: skip
    found = []
    for f in files:
        if not f.filename and not f.size:
            continue  # an empty file input of a form
        found.append(Upload(f.filename or "", await f.read(settings.materials_max_file_bytes + 1)))
    return found


def store_of(request: Request):
    return request.app.state.materials


def _download(file: materials.MaterialFile) -> Response:
    name = file.material.file_name
    return Response(
        file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f"attachment; filename=\"material-{file.material.id}\"; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "X-Content-SHA256": file.material.sha256,
        },
    )


@router.post(
    "/api/v1/cases/{case_id}/materials",
    response_model=list[MaterialOut],
    status_code=201,
    tags=["cases 办件"],
)
async def upload(
    case_id: Id, request: Request, session: SessionDep, scope: Uploader, files: Annotated[list[UploadFile], File()]
) -> list[MaterialOut]:
    """Upload materials to my review case (multipart, field `files`, repeatable): PDF, JPEG, PNG or OFD told from the
    content; size and count limits from settings (`ZHIDA_MATERIALS_MAX_FILE_BYTES`, `ZHIDA_MATERIALS_MAX_FILES`)."""
    uploads = await read_uploads(request, files)
    return materials.store_uploads(
        session=session, scope=scope, case_id=case_id, uploads=uploads, store=store_of(request),
        limits=materials.limits_of(request.app.state.settings),
    )  # fmt: skip


@router.get("/api/v1/cases/{case_id}/materials", response_model=list[MaterialOut], tags=["cases 办件"])
def list_materials(case_id: Id, session: SessionDep, scope: Readers) -> list[MaterialOut]:
    """The case's materials with their SHA-256 (the enterprise itself and the reviewing departments)."""
    return materials.list_for_case(session=session, scope=scope, case_id=case_id)


@router.get("/api/v1/cases/{case_id}/materials/{material_id}", tags=["cases 办件"],
            response_class=Response,
            responses={200: file_answer("application/pdf", "image/jpeg", "image/png")})  # fmt: skip
def download(case_id: Id, material_id: Id, request: Request, session: SessionDep, scope: Readers) -> Response:
    """One material's file (checked against its SHA-256 before it is served)."""
    found = materials.open_material(
        session=session, scope=scope, case_id=case_id, material_id=material_id, store=store_of(request)
    )
    return _download(found)


@router.get("/web/cases/{case_id}/materials/{material_id}", include_in_schema=False)
def page_download(case_id: int, material_id: int, request: Request, session: SessionDep) -> Response:
    """The same file for the pages (the enterprise's case page and the department's review screen)."""
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        found = materials.open_material(
            session=session, scope=scope, case_id=case_id, material_id=material_id, store=store_of(request)
        )
    except DomainError as exc:
        return error_page(request, exc)
    return _download(found)
