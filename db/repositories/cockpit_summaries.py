"""The cockpit's summaries: read them, and rebuild the working-days histogram after a calendar change.

Database triggers (migrations/versions/2026-12-01-1103_cockpit_summaries.py) keep the summaries in the transaction of
every write to cases, payment instructions, reservations and enterprises, so a figure read from them is as exact as
one counted from the cases. They serve the filters they are keyed by (fund item, department through the item, region,
case status, funding source); a drill-down key (budget line, paid month, overdue department) is counted from the
cases (db/repositories/cockpit.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import Column, ColumnElement, Date, Integer, MetaData, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from db.models import (
    BudgetEntry,
    BudgetLine,
    Case,
    CockpitCaseSummary,
    CockpitPaidDays,
    CockpitPaidMonth,
    CockpitSummaryState,
    Enterprise,
    FundItem,
    PaymentInstruction,
)
from db.sql.localtime import OFFSET_HOURS, local_day, local_month
from schemas.vocabulary import BudgetEntryKind, CaseStatus, PaymentStatus

CASES, MONTHS, DAYS = "cockpit_case_summary", "cockpit_paid_month", "cockpit_paid_days"


def settle(*, session: Session) -> None:
    """Fold this transaction's pending shares into the summaries now (PostgreSQL folds them at commit, see migration
    2026-12-01-1201_cockpit_speed.py), so a read in the same transaction as a write sees it; later writes are deferred
    again. SQLite's triggers add to the summaries at once: nothing to do."""
    if session.get_bind().dialect.name == "postgresql":
        connection = session.connection()
        connection.exec_driver_sql("SET CONSTRAINTS cockpit_fold IMMEDIATE")
        connection.exec_driver_sql("SET CONSTRAINTS cockpit_fold DEFERRED")


def usable(*, session: Session, name: str) -> bool:
    """Whether a summary may be read: present, fresh, and cut with the local offset the pages use."""
    settle(session=session)
    state = session.get(CockpitSummaryState, name)
    return state is not None and not state.stale and state.offset_hours == OFFSET_HOURS


def stale(*, session: Session, name: str) -> bool:
    state = session.get(CockpitSummaryState, name)
    return state is not None and state.stale


def _where(table, *, items: ColumnElement[bool], fund_item_id, department_id, region_prefix, status, source) -> list:
    where: list = [items]
    if fund_item_id is not None:
        where.append(table.fund_item_id == fund_item_id)
    if department_id is not None:
        where.append(FundItem.department_id == department_id)
    if region_prefix:
        where.append(table.region_code.startswith(region_prefix))
    if status is not None:
        where.append(table.status == status)
    if source:
        where.append(table.source == source)
    return where


def _from(table, *columns):
    return select(*columns).select_from(table).join(FundItem, FundItem.id == table.fund_item_id)


def case_buckets(*, session: Session, by: str | None, **filters) -> list[tuple]:
    """(key, cases, approved fen, paid fen) grouped by fund item, department, region, source or status; by None:
    one row of totals. The funding source '' (no reservation yet) reads as None."""
    t = CockpitCaseSummary
    sums = (func.sum(t.cases), func.coalesce(func.sum(t.amount_fen), 0), func.coalesce(func.sum(t.paid_fen), 0))
    where = _where(t, **filters)
    if by is None:
        n, a, p = session.execute(_from(t, *sums).where(*where)).one()
        return [(None, int(n or 0), int(a), int(p))]
    key = {"fund_item": t.fund_item_id, "department": FundItem.department_id, "region": t.region_code,
           "source": t.source, "status": t.status}[by]  # fmt: skip
    stmt = (
        _from(t, key, *sums)
        .where(*where)
        .group_by(key)
        .having(func.sum(t.cases) > 0)
        .order_by(func.coalesce(func.sum(t.paid_fen), 0).desc(), key)
    )
    return [(k if k != "" else None, int(n), int(a), int(p)) for k, n, a, p in session.execute(stmt)]


def paid_months(*, session: Session, **filters) -> list[tuple[str, int, int]]:
    """(local month, payments, paid fen), oldest first."""
    t = CockpitPaidMonth
    stmt = (
        _from(t, t.month, func.sum(t.payments), func.sum(t.paid_fen))
        .where(*_where(t, status=None, **filters))
        .group_by(t.month)
        .having(func.sum(t.payments) > 0)
        .order_by(t.month)
    )
    return [(m or None, int(n), int(fen)) for m, n, fen in session.execute(stmt)]


def by_line(*, session: Session, **filters) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    """({(fund item, source): cases}, {(fund item, source): fen of paid payments}): what the budget execution table
    counts per budget line (a line is one item's source), each case on the line of its first reservation."""
    c, m = CockpitCaseSummary, CockpitPaidMonth
    cases = _from(c, c.fund_item_id, c.source, func.sum(c.cases)).where(*_where(c, **filters))
    status = filters.pop("status")
    paid = _from(m, m.fund_item_id, m.source, func.sum(m.paid_fen)).where(*_where(m, status=None, **filters))
    counted = {(i, src): int(n) for i, src, n in session.execute(cases.group_by(c.fund_item_id, c.source))}
    if status is not None:  # payments are not kept by case status
        raise ValueError("by_line takes no status filter")
    fen = {(i, src): int(n or 0) for i, src, n in session.execute(paid.group_by(m.fund_item_id, m.source))}
    return counted, fen


def paid_days(*, session: Session, **filters) -> list[tuple[int, int, int]]:
    """(fund item, working days to pay, paid cases) of the histogram."""
    t = CockpitPaidDays
    stmt = (
        _from(t, t.fund_item_id, t.days, func.sum(t.cases))
        .where(*_where(t, status=None, **filters))
        .group_by(t.fund_item_id, t.days)
        .having(func.sum(t.cases) > 0)
        .order_by(t.fund_item_id, t.days)
    )
    return [(i, int(d), int(n)) for i, d, n in session.execute(stmt)]


def _first_source():
    return (
        select(BudgetLine.source)
        .join(BudgetEntry, BudgetEntry.budget_line_id == BudgetLine.id)
        .where(BudgetEntry.case_id == Case.id, BudgetEntry.kind == BudgetEntryKind.RESERVE)
        .order_by(BudgetEntry.id)
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)  # SQLite's date() is text


def rebuild_paid_days(*, session: Session, working_days: Callable[[date, date], int]) -> int:
    """Recount the working-days histogram from the paid cases (after the calendar changed); returns the paid cases.
    `working_days(began, paid)` counts on local days, at least 0.

    Set-based: the distinct (began, paid) local-day pairs are few (days × a month) whatever the cases, so only they
    are counted in Python, into a temporary table the grouping joins. On PostgreSQL the table is locked first, so a
    case paid meanwhile waits and is counted once, by its trigger."""
    settle(session=session)  # pending shares folded now would be counted twice after the recount
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("LOCK TABLE cockpit_paid_days IN EXCLUSIVE MODE")
    session.execute(delete(CockpitPaidDays))
    began, paid = local_day(Case.created_at), local_day(Case.closed_at)
    is_paid = (Case.status == CaseStatus.PAID, Case.closed_at.is_not(None))
    pairs = [(_as_date(a), _as_date(b)) for a, b in session.execute(select(began, paid).where(*is_paid).distinct())]
    spans = Table("cockpit_rebuild_spans", MetaData(), Column("began", Date, primary_key=True),
                  Column("paid", Date, primary_key=True), Column("days", Integer, nullable=False),
                  prefixes=["TEMPORARY"])  # fmt: skip
    connection = session.connection()
    spans.drop(connection, checkfirst=True)
    spans.create(connection)
    try:
        rows = [{"began": a, "paid": b, "days": working_days(a, b)} for a, b in pairs]
        for start in range(0, len(rows), 5000):
            session.execute(insert(spans), rows[start : start + 5000])
        source = func.coalesce(_first_source(), "")
        counted = (
            select(Case.fund_item_id, Enterprise.region_code, source, spans.c.days, func.count(Case.id))
            .join(Enterprise, Enterprise.id == Case.enterprise_id)
            .join(spans, (spans.c.began == began) & (spans.c.paid == paid))
            .where(*is_paid)
            .group_by(Case.fund_item_id, Enterprise.region_code, source, spans.c.days)
        )
        session.execute(
            insert(CockpitPaidDays).from_select(["fund_item_id", "region_code", "source", "days", "cases"], counted)
        )
    finally:
        spans.drop(connection)
    session.execute(update(CockpitSummaryState).where(CockpitSummaryState.name == DAYS).values(stale=False))
    return int(session.scalar(select(func.coalesce(func.sum(CockpitPaidDays.cases), 0))) or 0)


def rebuild_all(*, session: Session, working_days: Callable[[date, date], int]) -> None:
    """Recount every summary from the cases (after a bulk load that ran with the triggers off, or a restore)."""

    settle(session=session)
    session.execute(delete(CockpitCaseSummary))
    session.execute(delete(CockpitPaidMonth))
    source = func.coalesce(_first_source(), "")
    cases = (
        select(Case.fund_item_id, Enterprise.region_code, Case.status, source.label("source"), func.count(Case.id),
               func.coalesce(func.sum(func.coalesce(Case.amount_fen, 0)), 0), func.coalesce(func.sum(Case.paid_fen), 0))
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .group_by(Case.fund_item_id, Enterprise.region_code, Case.status, source)
    )  # fmt: skip
    session.execute(
        insert(CockpitCaseSummary).from_select(
            ["fund_item_id", "region_code", "status", "source", "cases", "amount_fen", "paid_fen"], cases
        )
    )
    month = func.coalesce(local_month(PaymentInstruction.settled_at), "")
    months = (
        select(Case.fund_item_id, Enterprise.region_code, source, month, func.count(PaymentInstruction.id),
               func.sum(PaymentInstruction.paid_amt_fen))
        .select_from(PaymentInstruction)
        .join(Case, Case.id == PaymentInstruction.case_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(PaymentInstruction.status == PaymentStatus.PAID)
        .group_by(Case.fund_item_id, Enterprise.region_code, source, month)
    )  # fmt: skip
    session.execute(
        insert(CockpitPaidMonth).from_select(
            ["fund_item_id", "region_code", "source", "month", "payments", "paid_fen"], months
        )
    )
    rebuild_paid_days(session=session, working_days=working_days)
    session.execute(update(CockpitSummaryState).values(stale=False, offset_hours=OFFSET_HOURS))


def summary_rows(*, session: Session, name: str) -> set[tuple]:
    """Every non-empty row of a summary, for checks against a recount."""
    settle(session=session)
    table = {CASES: CockpitCaseSummary, MONTHS: CockpitPaidMonth, DAYS: CockpitPaidDays}[name].__table__
    keep = [c for c in table.columns if c.name != "id"]
    first_sum = {CASES: "cases", MONTHS: "payments", DAYS: "cases"}[name]
    return {tuple(r) for r in session.execute(select(*keep).where(table.c[first_sum] != 0))}
