"""The enterprise archive (企档)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from db.models import ArchiveChange, Enterprise


def get_by_uscc(*, session: Session, uscc: str) -> Enterprise | None:
    return session.scalar(select(Enterprise).where(Enterprise.uscc == uscc))


def get(*, session: Session, enterprise_id: int) -> Enterprise | None:
    return session.get(Enterprise, enterprise_id)


def add(*, session: Session, enterprise: Enterprise) -> Enterprise:
    session.add(enterprise)
    session.flush()
    return enterprise


def count(*, session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Enterprise)) or 0)


def record_change(*, session: Session, enterprise_id: int, actor: str, source: str, changes: dict) -> ArchiveChange:
    """Keep who changed which archive fields, from where, with the old and new values."""
    change = ArchiveChange(enterprise_id=enterprise_id, actor=actor, source=source, changes=changes)
    session.add(change)
    session.flush()
    return change


def changes_of(*, session: Session, enterprise_id: int) -> list[ArchiveChange]:
    """An enterprise's archive changes, newest first."""
    stmt = select(ArchiveChange).where(ArchiveChange.enterprise_id == enterprise_id)
    return list(session.scalars(stmt.order_by(ArchiveChange.id.desc())))


def usccs(*, session: Session) -> set[str]:
    """Every USCC on file (generators skip them)."""
    return set(session.scalars(select(Enterprise.uscc)))


def insert_many(*, session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert archive rows in one executemany (Core, no ORM objects); returns how many."""
    if rows:
        session.execute(insert(Enterprise.__table__), rows)
    return len(rows)
