"""The finance cockpit's queries (财政看板): disbursement breakdowns, budget execution, paid amounts over time, the
dates timeliness is measured on, overdue stages, returns waiting for correction, and the drill-down list of cases.

Every query takes the caller's scope as a condition on Case (services/scope.py builds it) and the cockpit's filters;
names are looked up here too, so pages never show codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import BigInteger, ColumnElement, cast, exists, func, literal, select, true
from sqlalchemy.orm import Session, aliased

from db.models import (
    BudgetEntry,
    BudgetLine,
    Case,
    CaseTask,
    Department,
    Enterprise,
    FundItem,
    PaymentInstruction,
    PaymentReturn,
)
from db.repositories import cockpit_summaries as summaries
from db.sql.localtime import local_month
from schemas.cockpit import CockpitFilter
from schemas.localtime import LOCAL_TZ
from schemas.vocabulary import BudgetEntryKind, CaseStatus, DepartmentKind, PaymentStatus, ReturnHandling, TaskStatus


def fen_sum(column: ColumnElement[int]) -> ColumnElement[int]:
    """A sum of fen as an integer: PostgreSQL sums BIGINT to NUMERIC, which would reach Python as a Decimal."""
    return cast(func.sum(column), BigInteger)


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC moments that bound a local month (an index on settled_at serves the range)."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=LOCAL_TZ)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=LOCAL_TZ)
    return start, end


def case_source():
    """The funding source (资金来源, the budget line) a case's first reservation drew on."""
    return (
        select(BudgetLine.source)
        .join(BudgetEntry, BudgetEntry.budget_line_id == BudgetLine.id)
        .where(BudgetEntry.case_id == Case.id, BudgetEntry.kind == BudgetEntryKind.RESERVE)
        .order_by(BudgetEntry.id)
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


def overdue_task(now: datetime, task=CaseTask) -> ColumnElement[bool]:
    """A stage past its working-day deadline: timed out, or still open after its due moment (the status as an IN list
    first, so the index on status and due moment serves both)."""
    return task.status.in_([TaskStatus.TIMED_OUT, TaskStatus.OPEN]) & (
        (task.status == TaskStatus.TIMED_OUT) | (task.due_at < now)
    )


def _conditions(scope: ColumnElement[bool], f: CockpitFilter, region_prefix: str | None, now: datetime) -> list:
    # Conditions on Case only (per-case EXISTS for the item's department and the enterprise's region), so a query can
    # read the cases alone: joined, SQLite's planner drove from the items or the enterprises and sorted every case of
    # the filter to page the newest fifty.
    where: list = [scope]
    if f.fund_item_id is not None:
        where.append(Case.fund_item_id == f.fund_item_id)
    if f.department_id is not None:
        item = aliased(FundItem)
        where.append(exists().where(item.id == Case.fund_item_id, item.department_id == f.department_id))
    if region_prefix:
        enterprise = aliased(Enterprise)
        where.append(exists().where(enterprise.id == Case.enterprise_id, enterprise.region_code.startswith(region_prefix)))
    if f.status is not None:
        where.append(Case.status == f.status)
    if f.source:
        where.append(case_source() == f.source)
    if f.budget_line_id is not None:
        where.append(
            exists().where(
                BudgetEntry.case_id == Case.id,
                BudgetEntry.budget_line_id == f.budget_line_id,
                BudgetEntry.kind == BudgetEntryKind.RESERVE,
            )
        )
    if f.paid_month:
        start, end = _month_bounds(f.paid_month)
        paid = aliased(PaymentInstruction)  # an alias: the queries that filter may join the instructions themselves
        where.append(
            exists().where(
                paid.case_id == Case.id,
                paid.status == PaymentStatus.PAID,
                paid.settled_at >= start,
                paid.settled_at < end,
            )
        )
    if f.overdue_department:
        task = aliased(CaseTask)  # an alias: the overdue figure joins the stages itself
        where.append(
            exists().where(
                task.case_id == Case.id, task.department_code == f.overdue_department, overdue_task(now, task)
            )
        )
    return where


@dataclass(frozen=True)
class Query:
    """The caller's scope and the cockpit's filters, ready to narrow any query on cases."""

    scope: ColumnElement[bool]
    filters: CockpitFilter
    region_prefix: str | None
    now: datetime
    items: ColumnElement[bool] = field(default_factory=true)  # the same scope on fund items (the summaries are keyed by item)

    def where(self) -> list:
        return _conditions(self.scope, self.filters, self.region_prefix, self.now)

    def summary_filters(self, session: Session, name: str) -> dict | None:
        """The filters as a summary takes them, or None when the summary cannot answer: a drill-down key it is not
        keyed by, or a summary not usable now (cockpit_summaries.usable)."""
        f = self.filters
        if f.budget_line_id is not None or f.paid_month or f.overdue_department:
            return None
        if not summaries.usable(session=session, name=name):
            return None
        return {"items": self.items, "fund_item_id": f.fund_item_id, "department_id": f.department_id,
                "region_prefix": self.region_prefix, "status": f.status, "source": f.source}  # fmt: skip


def _cases(*columns):
    return (
        select(*columns)
        .select_from(Case)
        .join(FundItem, FundItem.id == Case.fund_item_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
    )


@dataclass(frozen=True)
class Bucket:
    """One row of a breakdown: the key it groups by, the cases, the approved amount and what was paid."""

    key: str | int | None
    cases: int
    amount_fen: int
    paid_fen: int


BREAKDOWNS = ("fund_item", "department", "region", "source", "status")


def breakdown(*, session: Session, query: Query, by: str) -> list[Bucket]:
    """Cases, approved amount and paid amount grouped by fund item, department, region, funding source or status."""
    narrowed = query.summary_filters(session, summaries.CASES)
    if narrowed is not None:
        return [Bucket(*row) for row in summaries.case_buckets(session=session, by=by, **narrowed)]
    key = {
        "fund_item": Case.fund_item_id,
        "department": FundItem.department_id,
        "region": Enterprise.region_code,
        "source": case_source(),
        "status": Case.status,
    }[by].label("key")
    stmt = (
        _cases(
            key,
            func.count(Case.id),
            func.coalesce(fen_sum(Case.amount_fen), 0),
            func.coalesce(fen_sum(Case.paid_fen), 0),
        )
        .where(*query.where())
        .group_by(key)
        .order_by(func.coalesce(fen_sum(Case.paid_fen), 0).desc(), key)
    )
    return [Bucket(k, int(n), int(a), int(p)) for k, n, a, p in session.execute(stmt)]


@dataclass(frozen=True)
class LineExecution:
    """A budget line's execution: the ledger's totals, and what was paid and returned on the cases behind it."""

    line_id: int
    fund_item_id: int
    source: str
    budget_year: int
    total_fen: int
    reserved_fen: int
    committed_fen: int
    paid_fen: int
    returned_fen: int
    cases: int


def budget_lines(*, session: Session, item_scope: ColumnElement[bool], query: Query) -> list[LineExecution]:
    """Every budget line of the fund items in scope (narrowed by the item and department filters), with the paid and
    returned amounts of the cases (narrowed by every filter) whose reservation is on the line."""
    f = query.filters
    item_where = [item_scope]
    if f.fund_item_id is not None:
        item_where.append(FundItem.id == f.fund_item_id)
    if f.department_id is not None:
        item_where.append(FundItem.department_id == f.department_id)
    if f.source:
        item_where.append(BudgetLine.source == f.source)
    reserved_on = (
        select(BudgetEntry.budget_line_id.label("line_id"), BudgetEntry.case_id.label("case_id"))
        .where(BudgetEntry.kind == BudgetEntryKind.RESERVE)
        .distinct()
        .subquery()
    )
    narrowed = query.summary_filters(session, summaries.CASES)
    if narrowed is not None and f.status is None and summaries.usable(session=session, name=summaries.MONTHS):
        return _budget_lines_from_summaries(session, item_where, query, narrowed, reserved_on)
    in_filter = _cases(Case.id).where(*query.where())
    paid = (
        select(reserved_on.c.line_id, fen_sum(PaymentInstruction.paid_amt_fen).label("fen"))
        .join(PaymentInstruction, PaymentInstruction.case_id == reserved_on.c.case_id)
        .where(PaymentInstruction.status == PaymentStatus.PAID, reserved_on.c.case_id.in_(in_filter))
        .group_by(reserved_on.c.line_id)
        .subquery()
    )
    returned = (
        select(reserved_on.c.line_id, fen_sum(PaymentReturn.amount_fen).label("fen"))
        .join(PaymentReturn, PaymentReturn.case_id == reserved_on.c.case_id)
        .where(reserved_on.c.case_id.in_(in_filter))
        .group_by(reserved_on.c.line_id)
        .subquery()
    )
    counted = (
        select(reserved_on.c.line_id, func.count(reserved_on.c.case_id).label("n"))
        .where(reserved_on.c.case_id.in_(in_filter))
        .group_by(reserved_on.c.line_id)
        .subquery()
    )
    stmt = (
        select(
            BudgetLine,
            func.coalesce(paid.c.fen, 0),
            func.coalesce(returned.c.fen, 0),
            func.coalesce(counted.c.n, 0),
        )
        .join(FundItem, FundItem.id == BudgetLine.fund_item_id)
        .outerjoin(paid, paid.c.line_id == BudgetLine.id)
        .outerjoin(returned, returned.c.line_id == BudgetLine.id)
        .outerjoin(counted, counted.c.line_id == BudgetLine.id)
        .where(*item_where)
        .order_by(BudgetLine.fund_item_id, BudgetLine.id)
    )
    return [
        LineExecution(
            line.id,
            line.fund_item_id,
            line.source,
            line.budget_year,
            line.total_fen,
            line.reserved_fen,
            line.committed_fen,
            int(p),
            int(r),
            int(n),
        )
        for line, p, r, n in session.execute(stmt)
    ]


def _budget_lines_from_summaries(session: Session, item_where: list, query: Query, narrowed: dict,
                                 reserved_on) -> list[LineExecution]:  # fmt: skip
    """budget_lines from the summaries: cases and paid payments per line counted on each case's first reservation;
    the returns (few) from the returns themselves, driven by payment_return rather than every case in scope."""
    counted, paid = summaries.by_line(session=session, **narrowed)
    returned_stmt = (
        _cases(reserved_on.c.line_id, fen_sum(PaymentReturn.amount_fen))
        .join(PaymentReturn, PaymentReturn.case_id == Case.id)
        .join(reserved_on, reserved_on.c.case_id == Case.id)
        .where(*query.where())
        .group_by(reserved_on.c.line_id)
    )
    returned = {line: int(fen or 0) for line, fen in session.execute(returned_stmt)}
    lines = session.scalars(
        select(BudgetLine)
        .join(FundItem, FundItem.id == BudgetLine.fund_item_id)
        .where(*item_where)
        .order_by(BudgetLine.fund_item_id, BudgetLine.id)
    )
    return [
        LineExecution(line.id, line.fund_item_id, line.source, line.budget_year, line.total_fen, line.reserved_fen,
                      line.committed_fen, paid.get((line.fund_item_id, line.source), 0), returned.get(line.id, 0),
                      counted.get((line.fund_item_id, line.source), 0))
        for line in lines
    ]  # fmt: skip


def paid_by_month(*, session: Session, query: Query) -> list[tuple[str, int, int]]:
    """(local month, payments, paid fen) of the payments settled as paid, oldest month first."""
    narrowed = query.summary_filters(session, summaries.MONTHS)
    if narrowed is not None and narrowed.pop("status") is None:
        return summaries.paid_months(session=session, **narrowed)
    month = local_month(PaymentInstruction.settled_at).label("month")
    stmt = (
        _cases(month, func.count(PaymentInstruction.id), fen_sum(PaymentInstruction.paid_amt_fen))
        .join(PaymentInstruction, PaymentInstruction.case_id == Case.id)
        .where(*query.where(), PaymentInstruction.status == PaymentStatus.PAID)
        .group_by(month)
        .order_by(month)
    )
    return [(m, int(n), int(fen)) for m, n, fen in session.execute(stmt)]


def paid_spans(*, session: Session, query: Query) -> list[tuple[int, datetime, datetime]]:
    """(fund item, application or match moment, paid moment) of every paid case, for the timeliness figures."""
    stmt = _cases(Case.fund_item_id, Case.created_at, Case.closed_at).where(
        *query.where(), Case.status == CaseStatus.PAID, Case.closed_at.is_not(None)
    )
    return [(i, a, b) for i, a, b in session.execute(stmt)]


def paid_days(*, session: Session, query: Query) -> list[tuple[int, int, int]] | None:
    """(fund item, working days to pay, paid cases) from the histogram, or None when it cannot answer the filters
    (then the service counts the days from paid_spans)."""
    narrowed = query.summary_filters(session, summaries.DAYS)
    if narrowed is None:
        return None
    status = narrowed.pop("status")
    if status is not None and status != CaseStatus.PAID:
        return []
    return summaries.paid_days(session=session, **narrowed)


def overdue_by_department(*, session: Session, query: Query) -> list[tuple[str, int, int]]:
    """(department code, overdue stages, cases) of the stages past their deadline on the cases in scope."""
    stmt = (
        select(CaseTask.department_code, func.count(CaseTask.id), func.count(func.distinct(CaseTask.case_id)))
        .select_from(CaseTask)
        .join(Case, Case.id == CaseTask.case_id)  # from the overdue stages (few) to their cases, not the other way
        .where(*query.where(), overdue_task(query.now))
        .group_by(CaseTask.department_code)
        .order_by(func.count(CaseTask.id).desc(), CaseTask.department_code)
    )
    return [(code, int(n), int(c)) for code, n, c in session.execute(stmt)]


@dataclass(frozen=True)
class CaseRow:
    """One case of a drill-down list, with its latest payment instruction (凭证) when there is one."""

    id: int
    enterprise_name: str
    uscc: str
    region_code: str
    fund_item_name: str
    department_name: str
    status: str
    amount_fen: int | None
    paid_fen: int
    created_at: datetime
    closed_at: datetime | None
    source: str | None
    voucher_no: str | None
    voucher_status: str | None
    voucher_amount_fen: int | None
    settled_at: datetime | None
    return_reason: str | None
    returned_on: date | None


def _among(column, chunk: list[int]):
    """A condition selecting at least the ids of `chunk` (sorted or not): their range when they are dense (the
    export's ids mostly are), else an IN list; the caller keeps only the ids it asked for. A range binds two
    parameters where an IN list renders and binds a thousand for every chunk."""
    low, high = min(chunk), max(chunk)
    return column.between(low, high) if high - low < 4 * len(chunk) else column.in_(chunk)


@dataclass
class _Names:
    """Enterprise, fund item and department names read once per list (a thousand cases share few of each)."""

    enterprises: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # id → (name, uscc, region)
    items: dict[int, tuple[str, str]] = field(default_factory=dict)  # id → (item name, department name)

    def load(self, session: Session, enterprise_ids: set[int], item_ids: set[int]) -> None:
        missing = sorted(enterprise_ids - self.enterprises.keys())
        for start in range(0, len(missing), 1000):
            for i, *fields in session.execute(
                select(Enterprise.id, Enterprise.name, Enterprise.uscc, Enterprise.region_code).where(
                    Enterprise.id.in_(missing[start : start + 1000])
                )
            ):
                self.enterprises[i] = tuple(fields)  # type: ignore[assignment]
        missing = sorted(item_ids - self.items.keys())
        for start in range(0, len(missing), 1000):
            for i, *fields in session.execute(
                select(FundItem.id, FundItem.name, Department.name)
                .join(Department, Department.id == FundItem.department_id)
                .where(FundItem.id.in_(missing[start : start + 1000]))
            ):
                self.items[i] = tuple(fields)  # type: ignore[assignment]


def _details(session: Session, ids: list[int], names: _Names | None = None) -> list[CaseRow]:
    """The rows of the given cases, in the order given: names, the latest instruction, the latest return, the source.

    Read per thousand ids with plain range or IN conditions and the names from a cache: joining per-case "latest"
    subqueries made SQLite re-scan them for every row of a million-case table."""
    names = names or _Names()
    connection = session.connection()  # Core rows: the ORM's row handling costs more than the rows here
    out: dict[int, CaseRow] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        wanted = set(chunk)
        # Only the columns shown: whole rows would carry the encrypted account fields for nothing.
        instructions: dict[int, tuple] = {}
        for case_id, *fields in connection.execute(
            select(PaymentInstruction.case_id, PaymentInstruction.voucher_no, PaymentInstruction.status,
                   PaymentInstruction.pay_amt_fen, PaymentInstruction.settled_at)
            .where(_among(PaymentInstruction.case_id, chunk))
            .order_by(PaymentInstruction.attempt)
        ).all():  # fmt: skip
            instructions[case_id] = tuple(fields)
        returns: dict[int, tuple] = {}
        for case_id, *fields in connection.execute(
            select(PaymentReturn.case_id, PaymentReturn.reason, PaymentReturn.returned_on)
            .where(_among(PaymentReturn.case_id, chunk))
            .order_by(PaymentReturn.id)
        ).all():
            returns[case_id] = tuple(fields)
        sources: dict[int, str] = {}
        for case_id, source in connection.execute(
            select(BudgetEntry.case_id, BudgetLine.source)
            .join(BudgetLine, BudgetLine.id == BudgetEntry.budget_line_id)
            .where(_among(BudgetEntry.case_id, chunk), BudgetEntry.kind == BudgetEntryKind.RESERVE)
            .order_by(BudgetEntry.id.desc())
        ).all():
            sources[case_id] = source  # the first reservation wins (read last)
        stmt = select(Case.id, Case.enterprise_id, Case.fund_item_id, Case.status, Case.amount_fen, Case.paid_fen,
                      Case.created_at, Case.closed_at).where(_among(Case.id, chunk))  # fmt: skip
        cases = [row for row in connection.execute(stmt).all() if row[0] in wanted]
        names.load(session, {r[1] for r in cases}, {r[2] for r in cases})
        for case_id, enterprise_id, item_id, *rest in cases:
            pay = instructions.get(case_id, (None, None, None, None))
            ret = returns.get(case_id, (None, None))
            out[case_id] = CaseRow(case_id, *names.enterprises[enterprise_id], *names.items[item_id], *rest,
                                   sources.get(case_id), *pay, *ret)  # fmt: skip
    return [out[i] for i in ids if i in out]


def case_list(*, session: Session, query: Query, offset: int, limit: int) -> tuple[int, list[CaseRow]]:
    """(total, one page of cases) behind a figure, newest first (the total from the case summary when it can)."""
    narrowed = query.summary_filters(session, summaries.CASES)
    if narrowed is not None:
        total = summaries.case_buckets(session=session, by=None, **narrowed)[0][1]
    else:
        total = session.scalar(select(func.count(Case.id)).where(*query.where())) or 0
    page = select(Case.id).where(*query.where()).order_by(Case.id.desc()).offset(offset).limit(limit)
    return int(total), _details(session, list(session.scalars(page)))


def iter_cases(*, session: Session, query: Query, limit: int, chunk: int = 1000) -> Iterator[CaseRow]:
    """Every case behind a figure up to `limit`, newest first, read a thousand at a time (for a streamed export)."""
    page = select(Case.id).where(*query.where()).order_by(Case.id.desc()).limit(limit)
    ids = list(session.scalars(page))
    names = _Names()
    for start in range(0, len(ids), chunk):
        yield from _details(session, ids[start : start + chunk], names)


def awaiting_correction(*, session: Session, query: Query, limit: int = 200) -> list[CaseRow]:
    """Returned payments waiting for the enterprise to correct its account (待更正收款账户)."""
    q = Query(query.scope, query.filters.with_(status=CaseStatus.AWAITING_CORRECTION), query.region_prefix, query.now,
              query.items)  # fmt: skip
    return case_list(session=session, query=q, offset=0, limit=limit)[1]


# ------------------------------------------------------------------------------------------------------ names


def item_names(*, session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(FundItem.id, FundItem.name).where(FundItem.id.in_(sorted(set(ids))))).all())


def departments(*, session: Session, ids: list[int] | None = None, codes: list[str] | None = None) -> list[Department]:
    stmt = select(Department).order_by(Department.id)
    if ids is not None:
        stmt = stmt.where(Department.id.in_(sorted(set(ids))))
    if codes is not None:
        stmt = stmt.where(Department.code.in_(sorted(set(codes))))
    return list(session.scalars(stmt))


def policy_departments_of(*, session: Session, item_scope: ColumnElement[bool]) -> list[tuple[int, str]]:
    """(id, name) of the departments owning fund items in scope, for the filter form."""
    stmt = (
        select(Department.id, Department.name)
        .join(FundItem, FundItem.department_id == Department.id)
        .where(item_scope)
        .distinct()
        .order_by(Department.id)
    )
    return [(i, n) for i, n in session.execute(stmt)]


def items_of(*, session: Session, item_scope: ColumnElement[bool]) -> list[tuple[int, str]]:
    return [
        (i, n) for i, n in session.execute(select(FundItem.id, FundItem.name).where(item_scope).order_by(FundItem.id))
    ]


def sources_of(*, session: Session, item_scope: ColumnElement[bool]) -> list[str]:
    stmt = (
        select(BudgetLine.source)
        .join(FundItem, FundItem.id == BudgetLine.fund_item_id)
        .where(item_scope)
        .distinct()
        .order_by(BudgetLine.source)
    )
    return list(session.scalars(stmt))


def regions_of(*, session: Session, scope: ColumnElement[bool]) -> list[str]:
    """The division codes of the enterprises with cases in scope, for the filter form."""
    stmt = _cases(Enterprise.region_code).where(scope).distinct().order_by(Enterprise.region_code)
    return list(session.scalars(stmt))


def item_ids_of_department(*, session: Session, department_id: int) -> list[int]:
    return list(session.scalars(select(FundItem.id).where(FundItem.department_id == department_id)))


@dataclass(frozen=True)
class Pending:
    """A decision waiting for the finance bureau: a review case's finance stage, or a cross-year return's budget."""

    case_id: int
    enterprise_name: str
    fund_item_name: str
    amount_fen: int | None
    stage_key: str | None
    since: datetime | None
    due_at: datetime | None
    reason: str | None


def finance_stages(*, session: Session, query: Query, department_code: str | None) -> list[Pending]:
    """Open stages assigned to the finance bureau (财政审核) on the cases in scope, the most urgent first; an
    administrator (no department) sees every finance bureau's."""
    finance_codes = select(Department.code).where(Department.kind == DepartmentKind.FINANCE)
    holder = (
        CaseTask.department_code == department_code if department_code else CaseTask.department_code.in_(finance_codes)
    )
    stmt = (
        _cases(
            Case.id,
            Enterprise.name,
            FundItem.name,
            Case.amount_fen,
            CaseTask.stage_key,
            CaseTask.created_at,
            CaseTask.due_at,
            CaseTask.stage_name,
        )
        .join(CaseTask, CaseTask.case_id == Case.id)
        .where(*query.where(), holder, CaseTask.status == TaskStatus.OPEN)
        .order_by(CaseTask.due_at.is_(None), CaseTask.due_at, Case.id)
    )
    return [Pending(*row) for row in session.execute(stmt)]


def budget_decisions_due(*, session: Session, query: Query) -> list[Pending]:
    """Cross-year returns (跨年度退票) whose money went back to finance, on cases not yet final: each waits for a
    decision to arrange new budget or end the case."""
    finals = [s.value for s in CaseStatus.finals()]
    stmt = (
        _cases(
            Case.id,
            Enterprise.name,
            FundItem.name,
            PaymentReturn.amount_fen,
            literal(None),
            PaymentReturn.created_at,
            literal(None),
            PaymentReturn.reason,
        )
        .join(PaymentReturn, PaymentReturn.case_id == Case.id)
        .where(
            *query.where(),
            PaymentReturn.cross_year.is_(True),
            PaymentReturn.handling == ReturnHandling.BACK_TO_FINANCE,
            Case.status.not_in(finals),
        )
        .order_by(PaymentReturn.created_at, Case.id)
    )
    return [Pending(*row) for row in session.execute(stmt)]


def ledger(*, session: Session, query: Query) -> list[tuple]:
    """The real-name ledger (实名台账): paid fen per recipient, fund item, funding source and local month."""
    month = local_month(PaymentInstruction.settled_at).label("month")
    source = case_source().label("source")
    stmt = (
        _cases(
            Enterprise.uscc,
            Enterprise.name,
            FundItem.name,
            source,
            month,
            func.count(PaymentInstruction.id),
            fen_sum(PaymentInstruction.paid_amt_fen),
        )
        .join(PaymentInstruction, PaymentInstruction.case_id == Case.id)
        .where(*query.where(), PaymentInstruction.status == PaymentStatus.PAID)
        .group_by(Enterprise.uscc, Enterprise.name, FundItem.name, source, month)
        .order_by(month, Enterprise.uscc, FundItem.name)
    )
    return [tuple(row) for row in session.execute(stmt)]
