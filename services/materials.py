"""Application materials (申报材料): an enterprise uploads files to its review case (with the application, or answering
a 补正), and the enterprise itself and the reviewing department open them.

Files are checked before anything is stored (rules/materials.py: type from the content, size per file, files per
case), kept in the material store (gateways/storage.py, outside the database) and recorded with their SHA-256. An
upload is all or nothing: one refused file refuses the whole upload, naming every file and its rule."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from temporalio.client import Client

from db.models import CaseMaterial
from db.repositories import fund_items
from db.repositories import materials as repo
from gateways.storage import MaterialStore, MissingMaterial
from rules.materials import MEDIA_TYPES, Limits, Upload, display_name, problems, sniff
from schemas.cases import ApplicationIn, CaseOut, CaseProgress
from schemas.materials import MaterialOut
from schemas.vocabulary import AuditKind, CaseStatus, FundItemMode, MaterialPurpose, MaterialType, Role
from services import audit, reviews
from services import cases as case_service
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.scope import Scope
from services.uow import UnitOfWork
from settings import Settings

# While these hold, the enterprise may add materials (before the department's review starts, or answering 补正).
OPEN_FOR_MATERIALS = frozenset({CaseStatus.RECEIVED, CaseStatus.COMPLETENESS, CaseStatus.SUPPLEMENT})


def limits_of(settings: Settings) -> Limits:
    return Limits(max_file_bytes=settings.materials_max_file_bytes, max_files=settings.materials_max_files)


def out(row: CaseMaterial) -> MaterialOut:
    return MaterialOut(
        id=row.id,
        case_id=row.case_id,
        purpose=row.purpose,
        purpose_label=MaterialPurpose.label_of(row.purpose),
        file_name=row.file_name,
        content_type=row.content_type,
        content_type_label=MaterialType.label_of(row.content_type),
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        uploaded_by=row.uploaded_by,
        created_at=row.created_at,
        href=f"/api/v1/cases/{row.case_id}/materials/{row.id}",
    )


def refuse_bad(uploads: list[Upload], limits: Limits, *, already: int = 0) -> None:
    """Invalid naming every refused file and its rule (nothing is stored when one file is refused)."""
    found = problems(uploads, limits, already=already)
    if found:
        raise Invalid("；".join(found), field="files", rule="materials")


def store_uploads(
    *,
    session: Session,
    scope: Scope,
    case_id: int,
    uploads: list[Upload],
    store: MaterialStore,
    limits: Limits,
    answering_supplement: bool = False,
) -> list[MaterialOut]:
    """Keep the files on the enterprise's own review case while it may take materials (answering a 补正: only while
    the case waits for it)."""
    if scope.role != Role.ENTERPRISE:
        raise Forbidden("只有申报企业本身可以上传申报材料", rule="role")
    if not uploads:
        raise Invalid("files：请选择至少一个文件", field="files", rule="materials_required")
    case = case_service.visible_case(session=session, scope=scope, case_id=case_id)
    if case.mode != FundItemMode.REVIEW:
        raise Conflict("只有申报审批事项的办件需要上传申报材料", field="case_id", rule="materials_not_needed")
    status = CaseStatus(case.status)
    if answering_supplement and status != CaseStatus.SUPPLEMENT:
        raise Conflict(f"办件当前为“{status.label}”，不在补正环节，不能提交补正材料", field="case_id",
                       rule="not_in_supplement")  # fmt: skip
    if status not in OPEN_FOR_MATERIALS:
        raise Conflict(
            f"办件当前为“{status.label}”，不能再上传材料（受理后审核开始前、或退回补正期间可以上传）",
            field="case_id",
            rule="materials_closed",
        )
    refuse_bad(uploads, limits, already=repo.count_for_case(session=session, case_id=case.id))
    purpose = MaterialPurpose.SUPPLEMENT if status == CaseStatus.SUPPLEMENT else MaterialPurpose.APPLICATION
    rows = []
    for upload in uploads:
        key = store.put(upload.content)
        rows.append(
            repo.add(
                session=session,
                case_id=case.id,
                purpose=purpose,
                file_name=display_name(upload.name),
                content_type=sniff(upload.content),  # type: ignore[arg-type]  (refuse_bad proved it known)
                size_bytes=len(upload.content),
                sha256=hashlib.sha256(upload.content).hexdigest(),
                storage_key=key,
                uploaded_by=scope.actor,
            )
        )
    return [out(r) for r in rows]


def _readers(scope: Scope) -> None:
    if scope.role not in (Role.ENTERPRISE, Role.DEPARTMENT, Role.ADMIN):
        raise Forbidden(f"{Role.label_of(scope.role)}无权查看申报材料（仅申报企业和审核部门可以查看）", rule="role")


def list_for_case(*, session: Session, scope: Scope, case_id: int) -> list[MaterialOut]:
    """The case's materials, for the enterprise itself and the departments reviewing it."""
    _readers(scope)
    case = case_service.visible_case(session=session, scope=scope, case_id=case_id)
    return [out(r) for r in repo.for_case(session=session, case_id=case.id)]


@dataclass(frozen=True)
class MaterialFile:
    material: MaterialOut
    media_type: str
    content: bytes


def open_material(
    *, session: Session, scope: Scope, case_id: int, material_id: int, store: MaterialStore
) -> MaterialFile:
    """One material's bytes, checked against the SHA-256 recorded when it was submitted."""
    _readers(scope)
    case = case_service.visible_case(session=session, scope=scope, case_id=case_id)
    row = repo.get(session=session, case_id=case.id, material_id=material_id)
    if row is None:
        raise NotFound(f"办件 {case_id} 没有编号为 {material_id} 的材料", field="material_id")
    try:
        content = store.get(row.storage_key)
    except MissingMaterial as exc:
        raise Conflict(f"材料“{row.file_name}”的文件已不在存储中，请联系管理员", field="material_id") from exc
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise Conflict(f"材料“{row.file_name}”的文件与提交时的 SHA-256 不符，已拒绝打开", field="material_id",
                       rule="sha256")  # fmt: skip
    if scope.role != Role.ENTERPRISE:
        # An official (or an administrator) reading an enterprise's documents is an export of its data: in the audit
        # chain, in the request's transaction (which commits before the file is sent).
        audit.record(session=session, kind=AuditKind.EXPORT, actor=scope.actor, subject=f"material:{row.id}",
                     data={"case_id": case.id, "material_id": row.id, "sha256": row.sha256})  # fmt: skip
    return MaterialFile(out(row), MEDIA_TYPES[MaterialType(row.content_type)], content)


def required_materials(*, session: Session, code: str) -> list[str] | None:
    """The names of the materials the listed version of a review item requires (申报指南 guide.materials); None for
    an item that is not a review item (it takes no materials)."""
    item = fund_items.get_by_code(session=session, code=code)
    if item is None or item.mode != FundItemMode.REVIEW:
        return None
    version = fund_items.version(
        session=session, fund_item_id=item.id, number=item.listed_version or item.current_version
    )
    guide: dict[str, Any] = ((version.config if version else {}) or {}).get("guide") or {}
    return [m.get("name", "") for m in guide.get("materials") or [] if m.get("required", True)]


async def apply_with_materials(
    *,
    uow: UnitOfWork,
    client: Client,
    settings: Settings,
    scope: Scope,
    body: ApplicationIn,
    uploads: list[Upload],
    store: MaterialStore,
) -> tuple[CaseOut, bool]:
    """Apply with the materials in one request: the files are checked before the case is created, stored once it is,
    and only then does the workflow start (the department finds the materials from the first moment)."""
    limits = limits_of(settings)
    required = await uow.read(required_materials, code=body.fund_item_code)
    if required is None and uploads:
        raise Conflict("只有申报审批事项需要上传申报材料，本事项请直接申报", field="files", rule="materials_not_needed")
    if required and not uploads:
        raise Invalid(
            f"files：本事项须提交申报材料（{'、'.join(required)}），请选择文件后再提交",
            field="files",
            rule="materials_required",
        )
    refuse_bad(uploads, limits)
    case, created = await uow.write(
        case_service.create_application, scope=scope, body=body, workflow_key=settings.workflow_id_key()
    )
    if uploads:  # a repeated application adds them to the first case while it still takes materials
        await uow.write(
            store_uploads, scope=scope, case_id=case.id, uploads=uploads, store=store, limits=limits
        )
    await case_service.start_case_workflow(client=client, settings=settings, case=case)
    return await uow.read(case_service.case_view, case=case), created


async def answer_supplement(
    *,
    uow: UnitOfWork,
    client: Client,
    settings: Settings,
    scope: Scope,
    case_id: int,
    comment: str,
    uploads: list[Upload],
    store: MaterialStore,
) -> CaseProgress:
    """The enterprise answers a 补正 request: the new materials are kept, then the returned stage resumes."""
    if uploads:
        await uow.write(
            store_uploads, scope=scope, case_id=case_id, uploads=uploads, store=store, limits=limits_of(settings),
            answering_supplement=True,
        )  # fmt: skip
    return await reviews.resubmit(uow=uow, client=client, scope=scope, case_id=case_id, comment=comment)
