"""The finance cockpit (财政看板): every yuan of the caller's region by fund item, department, region, funding source
and status; budget execution per budget line; paid amounts by month; timeliness in working days; overdue stages;
returns waiting for correction; reconciliation alerts. Every figure names the filter that lists the cases behind it.

Finance bureaus see their region (services/scope.py), administrators everything; departments and enterprises are
refused. Exports of every table are in services/cockpit_export.py.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.repositories import calendar as calendar_repo
from db.repositories import campaigns as campaign_repo
from db.repositories import cockpit as repo
from db.repositories import cockpit_summaries as summaries
from db.repositories.cockpit import Bucket, CaseRow, LineExecution, Pending, Query
from rules.stats import median_of_counts, percentile_of_counts
from schemas.cockpit import CockpitFilter
from schemas.localtime import local_date
from schemas.principal import Principal
from schemas.regions import region_name
from schemas.vocabulary import CaseStatus, Role
from services import campaigns, payouts, reconciliation
from services import scope as scopes
from services.errors import Forbidden, Invalid
from services.scope import Scope

PAGE_SIZES = (20, 50, 100, 200)
_REGION = re.compile(r"^\d{6}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
GROUPS = {
    "fund_item": "资金事项",
    "department": "主管部门",
    "region": "企业所在地区",
    "source": "资金来源",
    "status": "办件状态",
}


def _finance(scope: Scope) -> None:
    if scope.role not in (Role.FINANCE, Role.ADMIN):
        raise Forbidden("财政看板仅限财政部门查看", rule="finance_only")


require_finance = _finance


def make_filter(
    *,
    fund_item_id: int | None = None,
    department_id: int | None = None,
    region: str | None = None,
    source: str | None = None,
    status: str | None = None,
    budget_line_id: int | None = None,
    paid_month: str | None = None,
    overdue_department: str | None = None,
) -> CockpitFilter:
    """The cockpit's filters from what a page or a caller sent; a bad value is refused naming the field."""
    region = (region or "").strip() or None
    if region is not None and not _REGION.match(region):
        raise Invalid(f"地区“{region}”无效：应为 6 位行政区划代码", field="region", rule="region_code")
    status = (status or "").strip() or None
    if status is not None and status not in CaseStatus.values():
        raise Invalid(f"办件状态“{status}”不存在", field="status", rule="case_status")
    paid_month = (paid_month or "").strip() or None
    if paid_month is not None and not _MONTH.match(paid_month):
        raise Invalid(f"支付月份“{paid_month}”无效：应为如 2026-09 的年月", field="paid_month", rule="year_month")
    return CockpitFilter(
        fund_item_id=fund_item_id,
        department_id=department_id,
        region=region,
        source=(source or "").strip() or None,
        status=CaseStatus(status) if status else None,
        budget_line_id=budget_line_id,
        paid_month=paid_month,
        overdue_department=(overdue_department or "").strip() or None,
    )


def _query(scope: Scope, filters: CockpitFilter, now: datetime | None) -> Query:
    prefix = scopes.region_prefix(filters.region) if filters.region else None
    return Query(scopes.case_filter(scope), filters, prefix, now or datetime.now(UTC), scopes.item_filter(scope))


@dataclass(frozen=True)
class Row:
    """A breakdown row with the name users read and the filter that lists its cases."""

    key: Any
    name: str
    cases: int
    amount_fen: int
    paid_fen: int
    drill: str  # query string of the drill-down list


@dataclass(frozen=True)
class BudgetRow:
    line: LineExecution
    fund_item_name: str
    available_fen: int
    rate_bp: int  # paid ÷ total, in basis points (1/100 of a percent), rounded down
    drill: str


@dataclass(frozen=True)
class Timeliness:
    fund_item_id: int
    fund_item_name: str
    cases: int
    median_days: float | None
    p90_days: int | None
    drill: str
    counts: tuple[tuple[int, int], ...] = ()  # (working days, paid cases): the histogram behind the figures


@dataclass(frozen=True)
class Overdue:
    department_code: str
    department_name: str
    stages: int
    cases: int
    drill: str


@dataclass
class Cockpit:
    """Everything the cockpit page shows, for one scope and one set of filters."""

    filters: CockpitFilter
    region_name: str
    totals: dict[str, int]
    groups: dict[str, list[Row]]
    budget: list[BudgetRow]
    months: list[tuple[str, int, int, str]]  # (month, payments, fen, drill)
    timeliness: list[Timeliness]
    overdue: list[Overdue]
    returns: list[CaseRow]
    alerts: list[Any]
    campaigns: list[Any] = field(default_factory=list)
    stages: list[Pending] = field(default_factory=list)  # review cases at the finance stage (财政审核)
    budget_due: list[Pending] = field(default_factory=list)  # cross-year returns waiting for a budget decision
    options: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)

    @property
    def charts(self) -> dict[str, list]:
        """The series the page's charts draw (fen; the page shows yuan)."""
        departments = self.groups.get("department", [])
        return {
            "months": [m for m, _, _, _ in self.months],
            "months_paid": [fen for _, _, fen, _ in self.months],
            "departments": [r.name for r in departments],
            "departments_paid": [r.paid_fen for r in departments],
        }


def rate_bp(part: int, whole: int) -> int:
    """part ÷ whole in basis points, rounded down; 0 for an empty whole."""
    return part * 10_000 // whole if whole > 0 else 0


def _names(session: Session, by: str, buckets: list[Bucket]) -> dict[Any, str]:
    keys = [b.key for b in buckets if b.key is not None]
    if by == "fund_item":
        return repo.item_names(session=session, ids=keys)
    if by == "department":
        return {d.id: d.name for d in repo.departments(session=session, ids=keys)}
    if by == "region":
        return {k: region_name(k) for k in keys}
    if by == "status":
        return {k: CaseStatus.label_of(k) for k in keys}
    return {k: k for k in keys}


_DRILL_KEY = {"fund_item": "fund_item_id", "department": "department_id", "region": "region", "source": "source",
              "status": "status"}  # fmt: skip


def breakdown(
    *, session: Session, scope: Scope, filters: CockpitFilter, by: str, now: datetime | None = None
) -> list[Row]:
    """One breakdown of the cases in scope: by fund item, department, region, funding source or status."""
    _finance(scope)
    if by not in GROUPS:
        raise Invalid(f"分组“{by}”不存在", field="by", rule="cockpit_group")
    buckets = repo.breakdown(session=session, query=_query(scope, filters, now), by=by)
    names = _names(session, by, buckets)
    empty = "未预留额度" if by == "source" else "—"
    return [
        Row(
            b.key,
            names.get(b.key, empty),
            b.cases,
            b.amount_fen,
            b.paid_fen,
            filters.query(**{_DRILL_KEY[by]: b.key}) if b.key is not None else filters.query(),
        )
        for b in buckets
    ]


def budget(*, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None) -> list[BudgetRow]:
    """Budget execution per budget line: reserved, committed, paid, returned, and paid against the total."""
    _finance(scope)
    lines = repo.budget_lines(session=session, item_scope=scopes.item_filter(scope), query=_query(scope, filters, now))
    names = repo.item_names(session=session, ids=[x.fund_item_id for x in lines])
    return [
        BudgetRow(
            line,
            names.get(line.fund_item_id, "—"),
            line.total_fen - line.reserved_fen - line.committed_fen,
            rate_bp(line.paid_fen, line.total_fen),
            filters.query(budget_line_id=line.line_id),
        )
        for line in lines
    ]


def months(*, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None) -> list[tuple]:
    """Paid amount by month (Beijing time): (month, payments, fen, drill-down query)."""
    _finance(scope)
    rows = repo.paid_by_month(session=session, query=_query(scope, filters, now))
    return [(m, n, fen, filters.query(paid_month=m)) for m, n, fen in rows]


def _days_between(calendar: Any) -> Callable[[date, date], int]:
    """Working days from one local day to another (at least 0), remembered: many cases share a pair of days and the
    calendar walk is the expensive part."""
    counted: dict[tuple[date, date], int] = {}

    def days(began: date, paid: date) -> int:
        if (began, paid) not in counted:
            counted[(began, paid)] = max(0, calendar.working_days_between(began, paid))
        return counted[(began, paid)]

    return days


def rebuild_summaries(*, session: Session) -> None:
    """Recount every cockpit summary from the cases (after a bulk load with the triggers off, or a restore)."""
    calendar_repo.seed_from_chinese_calendar(session=session)
    summaries.rebuild_all(session=session, working_days=_days_between(calendar_repo.load_calendar(session=session)))


def timeliness(
    *, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None
) -> list[Timeliness]:
    """Working days from application (or match) to paid, per fund item: median and 90th percentile.

    Days are counted on the working-day calendar (holidays and make-up days included), from the local day the case
    began to the local day it was paid: a case paid on the day it began took 0 working days."""
    _finance(scope)
    calendar_repo.seed_from_chinese_calendar(session=session)
    calendar = calendar_repo.load_calendar(session=session)
    days_between = _days_between(calendar)

    def working_days(began: datetime, paid: datetime) -> int:
        return days_between(local_date(began), local_date(paid))

    if summaries.stale(session=session, name=summaries.DAYS):  # the calendar changed under the histogram
        summaries.rebuild_paid_days(session=session, working_days=days_between)
    query = _query(scope, filters, now)
    histogram: dict[int, list[tuple[int, int]]] = defaultdict(list)
    found = repo.paid_days(session=session, query=query)
    if found is None:  # a drill-down key the histogram is not keyed by: count from the cases
        found = []
        spans: dict[tuple[int, int], int] = defaultdict(int)
        for item_id, began, paid in repo.paid_spans(session=session, query=query):
            spans[(item_id, working_days(began, paid))] += 1
        found = [(i, d, n) for (i, d), n in spans.items()]
    for item_id, days, n in found:
        histogram[item_id].append((days, n))
    names = repo.item_names(session=session, ids=list(histogram))
    return [
        Timeliness(
            item_id,
            names.get(item_id, "—"),
            sum(n for _, n in counts),
            median_of_counts(counts),
            percentile_of_counts(counts, 90),
            filters.query(fund_item_id=item_id, status=CaseStatus.PAID),
            tuple(sorted(counts)),
        )
        for item_id, counts in sorted(histogram.items())
    ]


def overdue(*, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None) -> list[Overdue]:
    """Stages past their working-day deadline, by the department that holds them."""
    _finance(scope)
    rows = repo.overdue_by_department(session=session, query=_query(scope, filters, now))
    names = {d.code: d.name for d in repo.departments(session=session, codes=[code for code, _, _ in rows])}
    return [
        Overdue(code, names.get(code, "未登记部门"), stages, cases, filters.query(overdue_department=code))
        for code, stages, cases in rows
    ]


def ledger(*, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None) -> list[tuple]:
    """The real-name ledger of direct funds (直达资金实名台账, 财预〔2020〕56号): per recipient, fund item, funding
    source and month (Beijing time) — filter by `paid_month` for one month's ledger."""
    _finance(scope)
    return repo.ledger(session=session, query=_query(scope, filters, now))


def returns(*, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None) -> list[CaseRow]:
    """Returned payments (退票) waiting for the enterprise to correct its account."""
    _finance(scope)
    return repo.awaiting_correction(session=session, query=_query(scope, filters, now))


@dataclass(frozen=True)
class CasePage:
    filters: CockpitFilter
    total: int
    page: int
    size: int
    rows: list[CaseRow]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def cases(
    *,
    session: Session,
    scope: Scope,
    filters: CockpitFilter,
    page: int = 1,
    size: int = 50,
    now: datetime | None = None,
) -> CasePage:
    """One page of the cases behind a figure (newest first)."""
    _finance(scope)
    if page < 1:
        raise Invalid("页码应为正整数", field="page", rule="positive")
    if size not in PAGE_SIZES:
        raise Invalid(f"每页条数应为 {'、'.join(map(str, PAGE_SIZES))} 之一", field="size", rule="page_size")
    total, rows = repo.case_list(
        session=session, query=_query(scope, filters, now), offset=(page - 1) * size, limit=size
    )
    return CasePage(filters, total, page, size, rows)


def all_cases(*, session: Session, scope: Scope, filters: CockpitFilter, limit: int, now: datetime | None = None):
    """Every case behind a figure up to `limit`, for an export."""
    _finance(scope)
    return repo.case_list(session=session, query=_query(scope, filters, now), offset=0, limit=limit)[1]


def iter_cases(*, session: Session, scope: Scope, filters: CockpitFilter, limit: int, now: datetime | None = None):
    """Every case behind a figure up to `limit`, read in chunks as an export writes them."""
    _finance(scope)
    return repo.iter_cases(session=session, query=_query(scope, filters, now), limit=limit)


def options(*, session: Session, scope: Scope) -> dict[str, list[tuple[Any, str]]]:
    """The choices of the filter form: the departments, fund items, regions and sources in scope, by name."""
    _finance(scope)
    items = scopes.item_filter(scope)
    return {
        "department_id": repo.policy_departments_of(session=session, item_scope=items),
        "fund_item_id": repo.items_of(session=session, item_scope=items),
        "region": [
            (code, region_name(code)) for code in repo.regions_of(session=session, scope=scopes.case_filter(scope))
        ],
        "source": [(s, s) for s in repo.sources_of(session=session, item_scope=items)],
        "status": [(s.value, s.label) for s in CaseStatus],
    }


def alerts(*, session: Session, principal: Principal, treasury_division: str) -> list[Any]:
    """Open reconciliation alerts the caller sees (services/reconciliation.py decides)."""
    return reconciliation.list_alerts(session=session, principal=principal, treasury_division=treasury_division)


def cockpit(
    *,
    session: Session,
    scope: Scope,
    filters: CockpitFilter,
    treasury_division: str,
    now: datetime | None = None,
) -> Cockpit:
    """The whole cockpit for the caller and the filters."""
    _finance(scope)
    groups = {by: breakdown(session=session, scope=scope, filters=filters, by=by, now=now) for by in GROUPS}
    statuses = groups["status"]
    totals = {
        "cases": sum(r.cases for r in statuses),
        "amount_fen": sum(r.amount_fen for r in statuses),
        "paid_fen": sum(r.paid_fen for r in statuses),
        "paid_cases": sum(r.cases for r in statuses if r.key == CaseStatus.PAID),
    }
    lines = budget(session=session, scope=scope, filters=filters, now=now)
    totals["budget_total_fen"] = sum(b.line.total_fen for b in lines)
    totals["budget_paid_fen"] = sum(b.line.paid_fen for b in lines)
    totals["rate_bp"] = rate_bp(totals["budget_paid_fen"], totals["budget_total_fen"])
    # Payouts made outside Zhida (奖补汇聚) stand beside its own; they have no fund item, so no filter narrows them.
    (totals["external_count"], totals["external_fen"]), _ = payouts.external(session=session, scope=scope, limit=0)
    own = scope.principal.subject if scope.role == Role.FINANCE else ""
    return Cockpit(
        filters=filters,
        region_name=_region_of(session, own),
        totals=totals,
        groups=groups,
        budget=lines,
        months=months(session=session, scope=scope, filters=filters, now=now),
        timeliness=timeliness(session=session, scope=scope, filters=filters, now=now),
        overdue=overdue(session=session, scope=scope, filters=filters, now=now),
        returns=returns(session=session, scope=scope, filters=filters, now=now),
        alerts=alerts(session=session, principal=scope.principal, treasury_division=treasury_division),
        campaigns=_campaigns(session, scope, filters),
        stages=finance_stages(session=session, scope=scope, filters=filters, now=now),
        budget_due=budget_decisions_due(session=session, scope=scope, filters=filters, now=now),
        options=options(session=session, scope=scope),
    )


def finance_stages(
    *, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None
) -> list[Pending]:
    """Review cases waiting at the caller's finance stage (财政审核), the most urgent first."""
    _finance(scope)
    code = scope.principal.subject if scope.role == Role.FINANCE else None
    return repo.finance_stages(session=session, query=_query(scope, filters, now), department_code=code)


def budget_decisions_due(
    *, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None
) -> list[Pending]:
    """Cross-year returns whose money went back to finance, each waiting for a new-budget decision."""
    _finance(scope)
    return repo.budget_decisions_due(session=session, query=_query(scope, filters, now))


def _campaigns(session: Session, scope: Scope, filters: CockpitFilter, limit: int = 20) -> list[Any]:
    """The campaigns of the fund items in the filter, newest first, with their finance decision if one is awaited."""
    items = {i for i, _ in repo.items_of(session=session, item_scope=scopes.item_filter(scope))}
    if filters.fund_item_id is not None:
        items &= {filters.fund_item_id}
    if filters.department_id is not None:
        items &= set(repo.item_ids_of_department(session=session, department_id=filters.department_id))
    found = [c.id for item in sorted(items) for c in campaign_repo.for_item(session=session, fund_item_id=item)]
    return [campaigns.counted_progress(session=session, campaign_id=i) for i in sorted(found, reverse=True)[:limit]]


def _region_of(session: Session, department_code: str) -> str:
    if not department_code:
        return "全部地区"
    found = repo.departments(session=session, codes=[department_code])
    return region_name(found[0].region_code) if found else "—"


def close_alert(*, session: Session, scope: Scope, treasury_division: str, alert_id: int, note: str) -> Any:
    """Close a reconciliation alert from the cockpit with a note; the closer and the moment are recorded."""
    _finance(scope)
    note = note.strip()
    if not note:
        raise Invalid("请填写处理说明", field="note", rule="required")
    if len(note) > 500:
        raise Invalid("处理说明不能超过 500 字", field="note", rule="max_length")
    return reconciliation.close_alert(
        session=session, principal=scope.principal, treasury_division=treasury_division, alert_id=alert_id, note=note
    )
