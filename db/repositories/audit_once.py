"""Keys of audit records written at most once (`audit_once`): claimed by insert-if-absent in the record's own
transaction, so two requests (or two processes, or a retried activity) that race to write the same record write it
once — the loser's insert does nothing (PostgreSQL: it waits for the winner's commit, then finds the key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from db.models import AuditOnce
from db.sql.insert import insert_for

# Keys are swept this long after their expiry (clock differences between the processes that check tokens).
SWEEP_MARGIN = timedelta(minutes=10)


def claim(*, session: Session, key: str, expires_at: datetime | None = None) -> bool:
    """Insert the key unless it is there; True when this transaction inserted it (its record is to be written)."""
    statement = insert_for(session, AuditOnce).values(key=key[:200], expires_at=expires_at, created_at=datetime.now(UTC))
    inserted = session.execute(statement.on_conflict_do_nothing(index_elements=["key"]).returning(AuditOnce.key))
    return inserted.scalar() is not None


def sweep(*, session: Session, now: datetime | None = None) -> int:
    """Forget keys past their expiry (a token refused since cannot be used for the first time again)."""
    cut = (now or datetime.now(UTC)) - SWEEP_MARGIN
    return session.execute(delete(AuditOnce).where(AuditOnce.expires_at < cut)).rowcount or 0
