"""The enterprise archive (企档): its data sources, imports (API and page: upload, result, the per-row error report)
and an enterprise's facts with source and date, now or as of a day. The use cases are in services/archive.py."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import pages
from api.deps import SessionDep, allow
from api.openapi import file_answer
from api.routers.web import error_page, signed_in
from schemas.archive import ArchiveSourceOut, FactOut, ImportOut, ProvenanceOut
from schemas.archive_sources import SOURCES
from schemas.vocabulary import Role
from services import archive
from services.errors import DomainError, Forbidden, Invalid
from services.scope import Scope

router = APIRouter(tags=["archive 企档"])
Importer = Annotated[Scope, Depends(allow(Role.DEPARTMENT))]
Viewer = Annotated[Scope, Depends(allow(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]
Staff = Annotated[Scope, Depends(allow(Role.DEPARTMENT, Role.FINANCE))]
MAX_BYTES = 50 * 1024 * 1024  # a year's registrations of a city fit many times over


@router.get("/api/v1/archive/sources", response_model=list[ArchiveSourceOut],
            summary="企档数据来源（拥有的字段、格式、更新频率）")  # fmt: skip
def list_sources(scope: Viewer) -> list[dict[str, Any]]:
    """Every data source: the fields it owns (a field has one owner), its file columns, formats and cadence."""
    return archive.sources()


async def _raw_body(request: Request) -> bytes:
    data = await request.body()
    if len(data) > MAX_BYTES:
        raise Invalid("文件超过 50 MB（文件大小规则）", field="body", rule="max_size")
    return data


@router.post("/api/v1/archive/imports", status_code=201, response_model=ImportOut,
             summary="导入数据来源文件（全部校验通过才写入）")  # fmt: skip
def import_file(
    session: SessionDep,
    scope: Importer,
    data: Annotated[bytes, Depends(_raw_body)],
    source: Annotated[str, Query(description="数据来源：market、tax、social、tech、credit")],
    file_name: Annotated[str, Query(max_length=200, description="文件名，其扩展名定格式：.csv、.xlsx、.json")],
    source_date: Annotated[date | None, Query(description="数据日期（文件未逐行给出时）")] = None,
) -> dict[str, Any]:
    """The file is the request body. Every row is validated first; any error stores nothing but the failed import
    with its per-row report (status `failed`); the same file again is found by its content hash (`duplicate`)."""
    result = archive.import_file(
        session=session, scope=scope, source_name=source, file_name=file_name, data=data, source_date=source_date
    )
    return dataclasses.asdict(result)


@router.get("/api/v1/archive/imports", response_model=list[ImportOut], summary="最近的数据导入")
def list_imports(session: SessionDep, scope: Importer) -> list[dict[str, Any]]:
    """Recent imports, newest first: an administrator sees all, a department its own."""
    return [dataclasses.asdict(r) for r in archive.imports(session=session, scope=scope)]


@router.get("/api/v1/archive/imports/{import_id}", response_model=ImportOut, summary="一次数据导入及其逐行错误")
def get_import(import_id: int, session: SessionDep, scope: Importer) -> dict[str, Any]:
    row = archive.get_import(session=session, scope=scope, import_id=import_id)
    return dataclasses.asdict(archive.ImportResult.of(row, errors=row.error_count))


@router.get("/api/v1/archive/imports/{import_id}/errors.csv", summary="逐行错误报告（CSV）", response_class=Response,
            responses={200: file_answer("text/csv")})  # fmt: skip
def error_report(import_id: int, session: SessionDep, scope: Importer) -> Response:
    report = archive.error_report(session=session, scope=scope, import_id=import_id)
    return Response(
        report.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )


@router.get("/api/v1/archive/enterprises/{uscc}/facts", response_model=list[FactOut],
            summary="企业档案数据及其来源、数据日期（可按日期回溯）")  # fmt: skip
def facts(
    uscc: str,
    session: SessionDep,
    scope: Viewer,
    as_of: Annotated[date | None, Query(description="回溯到该日（北京时间）平台所知的数据")] = None,
) -> list[dict[str, Any]]:
    """Each fact with the source that said it, its source date and the import that brought it; with `as_of`, what
    the platform knew at the end of that day (fields recorded before history began are left out)."""
    found = (
        archive.facts(session=session, scope=scope, uscc=uscc)
        if as_of is None
        else archive.as_of(session=session, scope=scope, uscc=uscc, day=as_of)
    )
    return [f.as_dict() for f in found]


@router.get("/api/v1/archive/cases/{case_id}/provenance", response_model=dict[str, ProvenanceOut],
            summary="办件冻结证据中每项数据的来源导入")  # fmt: skip
def case_provenance(case_id: int, session: SessionDep, scope: Viewer) -> dict[str, dict[str, Any]]:
    """For each fact frozen in the case's evidence: the import (or manual change) that supplied the value the archive
    held when the case was created, with its source and source date (all null: recorded before history began)."""
    return archive.provenance(session=session, scope=scope, case_id=case_id)


# --- pages -----------------------------------------------------------------------------------------------------


def _importer_page(request: Request) -> Scope | Response:
    scope = signed_in(request)
    if isinstance(scope, Scope) and scope.role not in archive.IMPORTERS:
        return error_page(request, Forbidden("只有管理员和主管部门可以导入企档数据", rule="role"))
    return scope


@router.get("/web/archive", response_class=HTMLResponse, include_in_schema=False)
def archive_page(request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict:
        return {
            "sources": list(SOURCES.values()),
            "importable": archive.importable(scope=scope),
            "imports": archive.imports(session=session, scope=scope),
        }

    return pages.page(request, "archive_imports.html", build, guard=_importer_page)


@router.post("/web/archive/imports", response_class=HTMLResponse, include_in_schema=False)
async def archive_upload(
    request: Request,
    session: SessionDep,
    source: Annotated[str, Form()] = "",
    source_date: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    scope = _importer_page(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        if file is None or not file.filename:
            raise Invalid("请选择要导入的文件（必填规则）", field="file")
        try:
            day = date.fromisoformat(source_date) if source_date else None
        except ValueError:
            raise Invalid("数据日期应写成 YYYY-MM-DD（日期规则）", field="source_date") from None
        data = await file.read()
        if len(data) > MAX_BYTES:
            raise Invalid("文件超过 50 MB（文件大小规则）", field="file")
        result = archive.import_file(
            session=session, scope=scope, source_name=source, file_name=file.filename, data=data, source_date=day
        )
    except DomainError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/web/archive/imports/{result.id}{'?duplicate=1' if result.duplicate else ''}", 303)


@router.get("/web/archive/imports/{import_id}", response_class=HTMLResponse, include_in_schema=False)
def archive_import_page(import_id: int, request: Request, session: SessionDep, duplicate: bool = False) -> Response:
    def build(scope: Scope) -> dict:
        row = archive.get_import(session=session, scope=scope, import_id=import_id)
        return {
            "result": archive.ImportResult.of(row, errors=200),
            "created_at": row.created_at,
            "source_date": row.source_date,
            "duplicate": duplicate,
        }

    return pages.page(request, "archive_import.html", build, guard=_importer_page)


@router.get("/web/archive/imports/{import_id}/errors.csv", include_in_schema=False)
def archive_errors_download(import_id: int, request: Request, session: SessionDep) -> Response:
    scope = _importer_page(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        report = archive.error_report(session=session, scope=scope, import_id=import_id)
    except DomainError as exc:
        return error_page(request, exc)
    return Response(
        report.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
