"""A case stage queues its notice once by its dedupe key, in one statement; a retried stage gets the first one."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from db.repositories import notices
from tests.reconciliation.support import make_instruction


def _enqueue(session: Session, key: str, enterprise_id: int, case_id: int) -> tuple[int, bool]:
    return notices.enqueue(
        session=session,
        dedupe_key=key,
        enterprise_id=enterprise_id,
        case_id=case_id,
        template_key="received",
        params={"case_no": "ZD0000000001"},
        content="您的申报已受理",
        phone_enc=None,
        phone_masked="139****0001",
    )


def test_a_notice_is_queued_once_in_one_statement(session: Session) -> None:
    instruction = make_instruction(session)
    case_id = instruction.case_id
    from db.models import Case

    enterprise_id = session.get(Case, case_id).enterprise_id
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(session.connection(), "before_cursor_execute", listener)
    try:
        first, created = _enqueue(session, f"case:{case_id}:received", enterprise_id, case_id)
        assert created and len(statements) == 1, statements  # no lookup before the insert
        again, created_again = _enqueue(session, f"case:{case_id}:received", enterprise_id, case_id)
    finally:
        event.remove(session.connection(), "before_cursor_execute", listener)
    assert (again, created_again) == (first, False)
    assert [n.id for n in notices.for_case(session=session, case_id=case_id)] == [first]
