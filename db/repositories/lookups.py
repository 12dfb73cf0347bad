"""Reads the case-side services need beside the main repositories: names behind recorded actors, and lists narrowed
by a scope condition (services/scope.py builds the conditions; the queries live here)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from db.models import Case, Department, Enterprise, FundItem, Notice
from schemas.vocabulary import NoticeCategory, NoticeStatus


def department_names(*, session: Session, codes: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return dict(session.execute(select(Department.code, Department.name).where(Department.code.in_(wanted))).all())


def enterprise_names(*, session: Session, usccs: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(usccs))
    if not wanted:
        return {}
    return dict(session.execute(select(Enterprise.uscc, Enterprise.name).where(Enterprise.uscc.in_(wanted))).all())


def enterprise_names_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Enterprise]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_(wanted)))}


def fund_items_where(*, session: Session, condition: ColumnElement[bool]) -> list[FundItem]:
    """The fund items that satisfy a scope condition, in id order."""
    return list(session.scalars(select(FundItem).where(condition).order_by(FundItem.id)))


def fund_item(*, session: Session, fund_item_id: int) -> FundItem | None:
    return session.get(FundItem, fund_item_id)


def notices_in_scope(case_condition: ColumnElement[bool], item_condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Notices of cases the caller may see, and pushes of fund items it may see."""
    return or_(
        Notice.case_id.in_(select(Case.id).where(case_condition)),
        Notice.case_id.is_(None) & Notice.fund_item_id.in_(select(FundItem.id).where(item_condition)),
    )


def notices_for_enterprise(
    *, session: Session, enterprise_id: int, condition: ColumnElement[bool], limit: int = 200
) -> list[Notice]:
    """An enterprise's notices that satisfy `condition`, newest first."""
    stmt = select(Notice).where(Notice.enterprise_id == enterprise_id, condition)
    return list(session.scalars(stmt.order_by(Notice.id.desc()).limit(limit)))


def queued_pushes(*, session: Session, enterprise_id: int) -> int:
    """Pushes still waiting to be sent to the enterprise (an opt-out withdraws them)."""
    stmt = select(func.count()).where(
        Notice.enterprise_id == enterprise_id, Notice.category == NoticeCategory.PUSH, Notice.status == NoticeStatus.QUEUED
    )
    return int(session.scalar(stmt) or 0)


def ping(*, session: Session) -> None:
    """A round trip to the database (readiness)."""
    session.execute(select(1))
