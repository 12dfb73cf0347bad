"""Case events are append-only in the database itself (migration f2), as audit records are (e4): an UPDATE of any
event, a DELETE of one younger than the retention (183 days) and, on PostgreSQL, a TRUNCATE are refused on both
engines; older events may go. Every guard is still there at head (SQLite loses a table's triggers when a later
migration copies the table). Dropping the guards, as an attacker with DDL rights would, is caught by the chain
(tests/security/test_audit_chain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.models import AuditRecord, CaseEvent
from db.repositories import audit
from schemas.vocabulary import AuditKind
from tests.security.test_audit_chain import _case_with_events, _event

GUARDS = {
    "sqlite": {"audit_record_append_only", "audit_record_retention", "case_event_append_only", "case_event_retention"},
    "postgresql": {"audit_record_guard", "audit_record_no_truncate", "case_event_guard", "case_event_no_truncate"},
}


def _triggers(session: Session) -> set[str]:
    if session.get_bind().dialect.name == "postgresql":
        return set(session.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    return set(session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))


def test_every_guard_exists_at_head(session: Session) -> None:
    assert GUARDS[session.get_bind().dialect.name] <= _triggers(session)


@pytest.mark.parametrize("column", ["reason", "actor", "hash"])
def test_an_event_cannot_be_updated(session: Session, column: str) -> None:
    case_id = _case_with_events(session)
    event = _event(session, case_id, 2)
    with pytest.raises(DBAPIError, match="case events are append-only"), session.begin_nested():
        session.execute(update(CaseEvent).where(CaseEvent.id == event.id).values({column: "改过"}))
    session.expire_all()
    assert audit.verify_case(session=session, case_id=case_id) is None


@pytest.mark.parametrize("seq", [1, 3])
def test_a_young_event_cannot_be_deleted(session: Session, seq: int) -> None:
    case_id = _case_with_events(session)
    with pytest.raises(DBAPIError, match="kept at least 183 days"), session.begin_nested():
        session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == seq))
    with pytest.raises(DBAPIError, match="kept at least 183 days"), session.begin_nested():
        session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id))
    session.expire_all()
    assert audit.verify_case(session=session, case_id=case_id) is None


def test_an_event_past_the_retention_may_be_deleted(session: Session) -> None:
    case_id = _case_with_events(session)
    old = CaseEvent(case_id=case_id, seq=99, key="old", kind="matched", actor="system:rules", prev_hash="0", hash="0",
                    created_at=datetime.now(UTC) - timedelta(days=200))  # fmt: skip
    session.add(old)
    session.flush()
    session.execute(delete(CaseEvent).where(CaseEvent.id == old.id))
    assert session.get(CaseEvent, old.id) is None


def test_truncate_is_refused_on_postgresql(session: Session) -> None:
    _case_with_events(session)
    if session.get_bind().dialect.name != "postgresql":
        # SQLite has no TRUNCATE: its `DELETE FROM` without WHERE fires the row guards (tested above).
        with pytest.raises(DBAPIError, match="kept at least 183 days"), session.begin_nested():
            session.execute(text("DELETE FROM case_event"))
        return
    audit.append(session=session, kind=AuditKind.EXPORT, actor="admin:ops", subject="x")
    for table in ("case_event", "audit_record"):
        with pytest.raises(DBAPIError, match="TRUNCATE is refused"), session.begin_nested():
            session.execute(text(f"TRUNCATE {table} CASCADE"))
    assert session.query(AuditRecord).count() >= 1
