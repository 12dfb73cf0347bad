"""The cockpit's summaries, kept by triggers, always equal a recount from the cases (both engines): after the known
dataset is written through the repositories, and after the writes that move figures between keys — a status change,
a payment settled, a reservation giving a case its funding source, an enterprise moving district. The working days
the triggers count in SQL equal rules.calendar's over holidays and make-up days; a calendar change marks the
histogram stale and the next cockpit read rebuilds it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import BudgetEntry, BudgetLine, CalendarDay, Case, Enterprise, PaymentInstruction
from db.repositories import calendar as calendar_repo
from db.repositories import cockpit_summaries as summaries
from db.session import engine_for, transaction
from schemas.localtime import local_date
from schemas.principal import Principal
from schemas.vocabulary import BudgetEntryKind, CaseStatus, PaymentStatus, Role
from services import cockpit
from services import scope as scopes
from tests.db import cockpit_dataset
from tests.db.cockpit_dataset import NOW, Dataset


def _source():
    return (
        select(BudgetLine.source)
        .join(BudgetEntry, BudgetEntry.budget_line_id == BudgetLine.id)
        .where(BudgetEntry.case_id == Case.id, BudgetEntry.kind == BudgetEntryKind.RESERVE)
        .order_by(BudgetEntry.id)
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


def recount(s: Session) -> dict[str, set[tuple]]:
    """The three summaries counted from the cases, payments and the calendar (rules.calendar), as sets of rows."""
    cases: Counter = Counter()
    amounts: Counter = Counter()
    paid: Counter = Counter()
    days: Counter = Counter()
    calendar = calendar_repo.load_calendar(session=s)
    rows = s.execute(
        select(Case.fund_item_id, Enterprise.region_code, Case.status, _source(), Case.amount_fen, Case.paid_fen,
               Case.created_at, Case.closed_at).join(Enterprise, Enterprise.id == Case.enterprise_id)
    )  # fmt: skip
    for item, region, status, source, amount, paid_fen, began, closed in rows:
        key = (item, region, status, source or "")
        cases[key] += 1
        amounts[key] += amount or 0
        paid[key] += paid_fen
        if status == CaseStatus.PAID and closed is not None:
            span = max(0, calendar.working_days_between(local_date(began), local_date(closed)))
            days[(item, region, source or "", span)] += 1
    months: Counter = Counter()
    month_fen: Counter = Counter()
    for item, region, source, settled, fen in s.execute(
        select(Case.fund_item_id, Enterprise.region_code, _source(), PaymentInstruction.settled_at,
               PaymentInstruction.paid_amt_fen)
        .join(Case, Case.id == PaymentInstruction.case_id).join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(PaymentInstruction.status == PaymentStatus.PAID)
    ):  # fmt: skip
        key = (item, region, source or "", local_date(settled).strftime("%Y-%m") if settled else "")
        months[key] += 1
        month_fen[key] += fen
    return {
        summaries.CASES: {(*k, n, amounts[k], paid[k]) for k, n in cases.items()},
        summaries.MONTHS: {(*k, n, month_fen[k]) for k, n in months.items()},
        summaries.DAYS: {(*k, n) for k, n in days.items()},
    }


def stored(s: Session) -> dict[str, set[tuple]]:
    return {name: summaries.summary_rows(session=s, name=name) for name in (summaries.CASES, summaries.MONTHS,
                                                                               summaries.DAYS)}  # fmt: skip


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[tuple[str, Dataset]]:
    """This module's own database (the session's is shared with tests that count what they find): the calendar
    seeded and the histogram recounted before the dataset's cases, so every working-day count of those cases is the
    triggers' own. The checks compare the whole database's summaries."""
    with transaction(module_db_url) as s:
        calendar_repo.seed_from_chinese_calendar(session=s)
        summaries.rebuild_paid_days(session=s, working_days=_working_days(s))
        data = cockpit_dataset.build(s)
    yield module_db_url, data
    engine_for(module_db_url).dispose()


def _working_days(s: Session):
    calendar = calendar_repo.load_calendar(session=s)
    return lambda a, b: max(0, calendar.working_days_between(a, b))


def test_the_triggers_keep_every_summary_equal_to_a_recount(world: tuple[str, Dataset]) -> None:
    url, data = world
    with transaction(url) as s:
        assert not summaries.stale(session=s, name=summaries.DAYS)
        got, want = stored(s), recount(s)
        assert got == want
        # c3 began on 9-28 and was paid on 10-09 over the National Day holiday: 4 working days, counted in SQL.
        item_a = data.ids["item_A"]
        assert {(r[3], r[4]) for r in got[summaries.DAYS] if r[0] == item_a} == {(2, 1), (5, 1), (4, 1)}


def test_writes_that_move_figures_between_keys_move_the_summaries(world: tuple[str, Dataset]) -> None:
    url, data = world
    with transaction(url) as s:
        c5 = s.get(Case, data.ids["c5"])
        assert c5 is not None
        # A reviewing case approved, reserved (it gets its funding source), paid through an instruction, closed.
        line = s.get(BudgetLine, data.lines["A:区级财政"])
        assert line is not None
        line.reserved_fen += 700_000
        s.add(BudgetEntry(budget_line_id=line.id, case_id=c5.id, kind=BudgetEntryKind.RESERVE, amount_fen=700_000))
        c5.status, c5.amount_fen = CaseStatus.PAYING, 700_000
        s.flush()
        s.add(PaymentInstruction(voucher_no=f"SUMMARY{data.tag}", case_id=c5.id, attempt=1, adm_div_code="420500",
                                 st_year=2026, pay_acct_no="P", payee_acct_no_enc="x", payee_acct_no_masked="6222****",
                                 payee_acct_name="企业", payee_acct_bank_name="银行", payee_acct_bank_no="102",
                                 pay_amt_fen=700_000, pay_summary_code="30299", fund_source="区级财政"))  # fmt: skip
        s.flush()
        instruction = s.scalar(select(PaymentInstruction).where(PaymentInstruction.voucher_no == f"SUMMARY{data.tag}"))
        assert instruction is not None
        instruction.status, instruction.paid_amt_fen = PaymentStatus.PAID, 700_000
        instruction.settled_at = cockpit_dataset.bj(2026, 10, 12, 10)  # Monday after the make-up Saturday 10-10
        c5.status, c5.paid_fen, c5.closed_at = CaseStatus.PAID, 700_000, instruction.settled_at
        s.flush()
        assert stored(s) == recount(s)
        # The enterprise of c4 moves from 西陵 to 点军; a paid case is returned.
        e4 = s.get(Enterprise, data.ids["e4"])
        assert e4 is not None
        e4.region_code = "420504"
        c1 = s.get(Case, data.ids["c1"])
        assert c1 is not None
        c1.status = CaseStatus.AWAITING_CORRECTION
        s.flush()
        assert stored(s) == recount(s)
        s.rollback()


def test_a_calendar_change_marks_the_histogram_stale_and_the_cockpit_rebuilds_it(world: tuple[str, Dataset]) -> None:
    url, data = world
    with transaction(url) as s:
        # A made-up holiday on Wednesday 2026-09-02: c1 (9-01 → 9-03) now took 1 working day.
        s.add(CalendarDay(day=date(2026, 9, 2), is_workday=False, name="测试"))
        s.flush()
        assert summaries.stale(session=s, name=summaries.DAYS)
        scope = scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject=data.finance_yc))
        rows = cockpit.timeliness(session=s, scope=scope, filters=cockpit.make_filter(), now=NOW)
        assert not summaries.stale(session=s, name=summaries.DAYS)
        assert stored(s) == recount(s)
        by_item = {r.fund_item_id: r for r in rows}
        assert by_item[data.ids["item_A"]].cases == 3
        assert by_item[data.ids["item_A"]].median_days == 4.0  # 1, 4, 5
        s.rollback()
    with transaction(url) as s:
        assert s.scalar(select(func.count()).select_from(CalendarDay).where(CalendarDay.name == "测试")) == 0


def test_rebuild_recounts_every_summary_as_the_triggers_keep_it(world: tuple[str, Dataset]) -> None:
    """`zhida db rebuild-cockpit` (services.cockpit.rebuild_summaries, set-based) gives the rows the triggers keep,
    also after a write in the same transaction (pending shares are folded first on PostgreSQL, not counted twice)."""
    url, data = world
    with transaction(url) as s:
        c5 = s.get(Case, data.ids["c5"])
        assert c5 is not None
        c5.amount_fen = (c5.amount_fen or 0) + 100
        s.flush()
        kept = stored(s)
        cockpit.rebuild_summaries(session=s)
        assert stored(s) == kept == recount(s)
        assert not summaries.stale(session=s, name=summaries.DAYS)
        s.rollback()
