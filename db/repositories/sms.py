"""SQL for the SMS dispatcher and receipts: due notices, recent sends per phone, receipts, statistics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from db.models import Case, FundItem, Notice

ACTIVE = ("sending", "sent", "delivered")


def claim_due(*, session: Session, now: datetime, limit: int) -> list[Notice]:
    """Queued notices whose time has come, and sending ones whose lease ran out (a dispatcher died).

    PostgreSQL locks them FOR UPDATE SKIP LOCKED so several dispatchers share the queue; SQLite's
    BEGIN IMMEDIATE already makes the claiming transaction exclusive.
    """
    stmt = (
        select(Notice)
        .where(
            or_(
                and_(Notice.status == "queued", or_(Notice.next_attempt_at.is_(None), Notice.next_attempt_at <= now)),
                and_(Notice.status == "sending", Notice.next_attempt_at <= now),
            )
        )
        .order_by(Notice.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def recent_sends(*, session: Session, phone_hash: str, template_key: str | None, since: datetime) -> list[datetime]:
    """When this phone was sent to since `since` (for one template, or any when None)."""
    stmt = select(Notice.sent_at).where(
        Notice.phone_hash == phone_hash, Notice.sent_at >= since, Notice.status.in_(ACTIVE)
    )
    if template_key is not None:
        stmt = stmt.where(Notice.template_key == template_key)
    return [_aware(t) for t in session.scalars(stmt) if t is not None]


def get(*, session: Session, notice_id: int, lock: bool = False) -> Notice | None:
    stmt = select(Notice).where(Notice.id == notice_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def by_provider_msg_id(*, session: Session, provider: str, provider_msg_id: str) -> Notice | None:
    return session.scalar(
        select(Notice).where(Notice.provider == provider, Notice.provider_msg_id == provider_msg_id).limit(1)
    )


def stats(*, session: Session, department_id: int | None = None) -> list[dict]:
    """Per fund item: notices queued, sent, delivered, failed (a notice counts under its own or its case's item)."""
    item_id = func.coalesce(Notice.fund_item_id, Case.fund_item_id)
    stmt = (
        select(
            FundItem.id,
            FundItem.code,
            FundItem.name,
            func.count(Notice.id),
            func.sum(case((Notice.status.in_(("queued", "sending")), 1), else_=0)),
            func.sum(case((Notice.status == "sent", 1), else_=0)),
            func.sum(case((Notice.status == "delivered", 1), else_=0)),
            func.sum(case((Notice.status == "failed", 1), else_=0)),
        )
        .select_from(Notice)
        .outerjoin(Case, Case.id == Notice.case_id)
        .join(FundItem, FundItem.id == item_id)
        .group_by(FundItem.id, FundItem.code, FundItem.name)
        .order_by(FundItem.id)
    )
    if department_id is not None:
        stmt = stmt.where(FundItem.department_id == department_id)
    return [
        {
            "fund_item_id": r[0],
            "fund_item_code": r[1],
            "fund_item_name": r[2],
            "total": int(r[3] or 0),
            "pending": int(r[4] or 0),
            "sent": int(r[5] or 0),
            "delivered": int(r[6] or 0),
            "failed": int(r[7] or 0),
        }
        for r in session.execute(stmt)
    ]


def failures(*, session: Session, fund_item_id: int, limit: int = 500) -> list[Notice]:
    item_id = func.coalesce(Notice.fund_item_id, Case.fund_item_id)
    return list(
        session.scalars(
            select(Notice)
            .outerjoin(Case, Case.id == Notice.case_id)
            .where(item_id == fund_item_id, Notice.status == "failed")
            .order_by(Notice.id.desc())
            .limit(limit)
        )
    )


def _aware(t: datetime) -> datetime:
    from datetime import UTC

    return t if t.tzinfo else t.replace(tzinfo=UTC)
