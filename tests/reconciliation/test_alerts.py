"""Closing an alert sticks unless a run that started after the close sees the mismatch again."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from db.repositories import reconciliation


def _run(session: Session, started_at: datetime) -> int:
    run = reconciliation.start_run(
        session=session, run_key=f"alerts-{uuid.uuid4().hex}", statement_date=date(2026, 9, 1), trigger="manual"
    )
    run.started_at = started_at
    session.flush()
    return run.id


def test_a_run_under_way_at_the_close_does_not_reopen_it(session: Session) -> None:
    ref = f"2026-09-01:{uuid.uuid4().hex[:12]}:settle"
    now = datetime.now(UTC)
    earlier = _run(session, now - timedelta(minutes=5))
    alert = reconciliation.raise_alert(
        session=session, kind="recon_missing_ours", ref=ref, message="第一次", recon_run_id=earlier
    )
    closed = reconciliation.close_alert(session=session, alert_id=alert.id, by="finance:YC-CZJ", note="已核实")
    assert closed is not None and closed.status == "closed" and closed.closed_by == "finance:YC-CZJ"

    # The same (or another older) run raising it again — a retried activity, a run started before the close.
    again = reconciliation.raise_alert(
        session=session, kind="recon_missing_ours", ref=ref, message="重试", recon_run_id=earlier
    )
    assert (again.status, again.closed_by, again.message) == ("closed", "finance:YC-CZJ", "第一次")

    # A run that started after the close sees it again: reopened.
    later = _run(session, datetime.now(UTC) + timedelta(seconds=1))
    reopened = reconciliation.raise_alert(
        session=session, kind="recon_missing_ours", ref=ref, message="再次发现", recon_run_id=later
    )
    assert (reopened.status, reopened.closed_by, reopened.message) == ("open", None, "再次发现")
