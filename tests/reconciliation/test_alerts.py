"""Alerts stay closed when finance closes them while a reconciliation run is under way; a later run reopens them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from activities.reconciliation import ReconciliationActivities
from db.models import Alert
from db.repositories import reconciliation
from db.session import transaction
from schemas.reconciliation import ReconInput
from schemas.treasury import DailyStatement, StatementLine

DAY = date(2026, 11, 21)
EXTRA = "ZDEXTRA000000009"  # on the treasury's statement, never sent by Zhida: a missing_ours alert


class Statements:
    """The treasury's statement of DAY with one unknown voucher; `during_fetch` runs while a run fetches it."""

    def __init__(self) -> None:
        self.during_fetch: Callable[[], None] = lambda: None

    def statement(self, day: date) -> DailyStatement:
        self.during_fetch()
        line = StatementLine(
            VoucherNo=EXTRA,
            LineType="paid",
            PayAcctNo="420500000000000001",
            PayAmt=123_456,
            Amount=123_456,
            SettledAt=datetime(2026, 11, 21, 3, tzinfo=UTC),
        )
        return DailyStatement(StatementDate=day, Lines=[line], LineCount=1, TotalPaidAmt=123_456, TotalReturnedAmt=0)


def _alert(db_url: str) -> Alert:
    with transaction(db_url) as session:
        [alert] = reconciliation.list_alerts(session=session, status=None)
        session.expunge(alert)
        return alert


def _close(db_url: str, alert_id: int) -> None:
    with transaction(db_url) as session:
        reconciliation.close_alert(session=session, alert_id=alert_id, by="finance:CZJ", note="已与国库核实")


def test_a_close_during_a_run_is_not_undone_by_that_run(module_db_url: str) -> None:
    statements = Statements()
    acts = ReconciliationActivities(db_url=module_db_url, statements=statements)
    run = lambda key: acts.reconcile(ReconInput(run_key=key, statement_date=DAY, trigger="manual"))  # noqa: E731

    assert run("alerts-1").missing_ours == 1
    alert = _alert(module_db_url)
    assert (alert.kind, alert.status) == ("recon_missing_ours", "open")

    # Finance closes the alert while the next run (the daily schedule, say) is fetching the statement.
    statements.during_fetch = lambda: _close(module_db_url, alert.id)
    assert run("alerts-2").missing_ours == 1
    assert _alert(module_db_url).status == "closed"

    # A run that starts after the close sees the mismatch again: the alert reopens.
    statements.during_fetch = lambda: None
    run("alerts-3")
    reopened = _alert(module_db_url)
    assert (reopened.id, reopened.status, reopened.closed_at) == (alert.id, "open", None)
