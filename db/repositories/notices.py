"""The SMS outbox: one row per (case, stage) by its dedupe key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db import bulk
from db.models import Notice
from db.sql.insert import insert_for
from schemas.vocabulary import NoticeCategory, NoticeStatus


def enqueue(
    *,
    session: Session,
    dedupe_key: str,
    enterprise_id: int,
    case_id: int | None,
    template_key: str,
    params: dict[str, Any],
    content: str,
    phone_enc: str | None,
    phone_masked: str | None,
    status: str = NoticeStatus.QUEUED,
    provider: str = "outbox",
    fund_item_id: int | None = None,
    category: str = NoticeCategory.CASE,
) -> tuple[int, bool]:
    """Queue a notice unless one with the same key exists (a retried stage never notifies twice); (id, created).

    Prebuilt Core statements, no ORM object or flush: every case stage queues one, on the instant hot path. One
    INSERT … ON CONFLICT DO NOTHING RETURNING id (both engines): only a duplicate costs a second statement, the
    lookup of the first notice's id."""
    inserted = session.execute(
        _insert_once(session),
        {
            "dedupe_key": dedupe_key,
            "enterprise_id": enterprise_id,
            "case_id": case_id,
            "template_key": template_key,
            "params": params,
            "content": content,
            "phone_enc": phone_enc,
            "phone_masked": phone_masked,
            "status": status,
            "provider": provider,
            "fund_item_id": fund_item_id,
            "category": category,
        },
    ).scalar()
    if inserted is not None:
        return inserted, True
    return session.execute(_NOTICE_BY_KEY, {"dedupe_key": dedupe_key}).scalar_one(), False


_notice_t = Notice.__table__
_NOTICE_BY_KEY = select(_notice_t.c.id).where(_notice_t.c.dedupe_key == bindparam("dedupe_key"))
_INSERT_ONCE = {
    name: dialect.insert(_notice_t).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_notice_t.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _insert_once(session: Session) -> Insert:
    return _INSERT_ONCE[session.get_bind().dialect.name]


def for_enterprise(*, session: Session, enterprise_id: int, limit: int = 200) -> list[Notice]:
    return list(
        session.scalars(
            select(Notice).where(Notice.enterprise_id == enterprise_id).order_by(Notice.id.desc()).limit(limit)
        )
    )


def for_case(*, session: Session, case_id: int) -> list[Notice]:
    return list(session.scalars(select(Notice).where(Notice.case_id == case_id).order_by(Notice.id)))


def insert_ignoring_duplicates(session: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING on the dialect in use (both databases speak it): duplicates are skipped."""
    return insert_for(session, table).on_conflict_do_nothing()


def enqueue_many(*, session: Session, rows: Sequence[dict[str, Any]], beat: bulk.Beat = bulk.no_beat) -> int:
    """`enqueue` for many notices in one DBAPI executemany; rows whose dedupe key exists are skipped. Returns rows sent
    to the database (on PostgreSQL and SQLite the duplicates among them are silently ignored)."""
    if not rows:
        return 0
    defaults = {"case_id": None, "status": NoticeStatus.QUEUED, "provider": "outbox", "category": NoticeCategory.CASE,
                "fund_item_id": None, "attempts": 0, "receipt_polls": 0}  # fmt: skip
    full = [row if defaults.keys() <= row.keys() else defaults | dict(row) for row in rows]  # a campaign's are full
    bulk.insert_rows(session, Notice.__table__, full, ignore_duplicates=True, beat=beat)
    return len(rows)
