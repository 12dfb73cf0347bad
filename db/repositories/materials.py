"""Application materials (case_material): the rows that point at files in the material store."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CaseMaterial


def add(
    *,
    session: Session,
    case_id: int,
    purpose: str,
    file_name: str,
    content_type: str,
    size_bytes: int,
    sha256: str,
    storage_key: str,
    uploaded_by: str,
) -> CaseMaterial:
    row = CaseMaterial(
        case_id=case_id,
        purpose=purpose,
        file_name=file_name,
        content_type=content_type,
        size_bytes=size_bytes,
        sha256=sha256,
        storage_key=storage_key,
        uploaded_by=uploaded_by,
    )
    session.add(row)
    session.flush()
    return row


def for_case(*, session: Session, case_id: int) -> list[CaseMaterial]:
    """The case's materials, in the order they arrived."""
    return list(session.scalars(select(CaseMaterial).where(CaseMaterial.case_id == case_id).order_by(CaseMaterial.id)))


def count_for_case(*, session: Session, case_id: int) -> int:
    return session.scalar(select(func.count()).select_from(CaseMaterial).where(CaseMaterial.case_id == case_id)) or 0


def get(*, session: Session, case_id: int, material_id: int) -> CaseMaterial | None:
    """One material of the case (a material of another case is not found through this one)."""
    return session.scalar(
        select(CaseMaterial).where(CaseMaterial.id == material_id, CaseMaterial.case_id == case_id)
    )
