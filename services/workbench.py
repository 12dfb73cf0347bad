"""The department workbench (部门工作台): the work list (待办) and the case review screen, scoped to the caller.

Working days left come from the working-day calendar (statutory holidays and make-up workdays), never from date
arithmetic; decisions themselves go through services/reviews.py as workflow updates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import CaseTask
from db.repositories import budget, enterprises, fund_items, reviews
from db.repositories import workbench as repo
from rules.amounts import compute_amount
from rules.calendar import WorkCalendar
from rules.conditions import evaluate, facts_of, shortfalls, truth
from schemas.cases import CaseOut
from schemas.conditions import ConditionResult, parse_condition
from schemas.fund_items import FundItemOut, FundItemSummary, ListingCheck, VersionSummary
from schemas.localtime import aware, last_local_day, local_date
from schemas.regions import region_name
from schemas.vocabulary import CaseStatus, ObjectionStatus, Role, TaskStatus
from schemas.workbench import TaskRow
from services import cases, matching
from services import fund_items as fund_item_service
from services.errors import Forbidden, Invalid
from services.fund_items import parse_config, working_calendar
from services.matching import DryRunIn, DryRunOut
from services.scope import Scope

MAX_PAGE = 200


def _department(scope: Scope, department: str | None) -> str:
    """The department whose work list is read: the caller's own; an administrator names one."""
    if scope.role == Role.ADMIN:
        return department or scope.principal.subject
    if scope.role not in (Role.DEPARTMENT, Role.FINANCE):
        raise Forbidden(f"{Role.label_of(scope.role)}无权查看待办", rule="role")
    return scope.principal.subject


def _row(task: CaseTask, case: Any, item: Any, enterprise: Any, cal: WorkCalendar, now: datetime) -> TaskRow:
    left = overdue = None
    due_on = last_local_day(task.due_at)  # the last local day the task may be done on
    if task.due_at is not None and due_on is not None:
        # working days after today up to the last day: 0 means today is the last day
        left = cal.working_days_between(local_date(now), due_on)
        overdue = task.status == TaskStatus.OPEN and aware(task.due_at) < now
    return TaskRow.model_validate(
        {
            **{k: getattr(task, k) for k in TaskRow.model_fields if hasattr(task, k)},
            "fund_item_code": item.code,
            "fund_item_name": item.name,
            "enterprise_name": enterprise.name,
            "uscc": enterprise.uscc,
            "case_status": case.status,
            "due_on": due_on,
            "working_days_left": left,
            "overdue": bool(overdue),
        }
    )


@dataclass(frozen=True)
class TaskPage:
    """One page of the work list, how many tasks match in all, and the header's counts."""

    items: list[TaskRow]
    total: int
    counts: dict[str, int]
    overdue: int
    items_filter: list[tuple[str, str]] = field(default_factory=list)


def task_page(
    *,
    session: Session,
    scope: Scope,
    status: str | None = TaskStatus.OPEN,
    department: str | None = None,
    fund_item: str | None = None,
    stage_key: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> TaskPage:
    """The caller's department's tasks, the earliest deadline first, with names and working days left."""
    code = _department(scope, department)
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit：每页条数须在 1 到 {MAX_PAGE} 之间", field="limit", rule="range")
    if offset < 0:
        raise Invalid("offset：起始位置不能为负数", field="offset", rule="range")
    moment = now or datetime.now(UTC)
    cal = working_calendar(session=session)
    rows, total = repo.task_rows(
        session=session, department=code, status=status, fund_item_code=fund_item, stage_key=stage_key,
        limit=limit, offset=offset,
    )  # fmt: skip
    items = [_row(*row, cal=cal, now=moment) for row in rows]
    open_rows, _ = repo.task_rows(session=session, department=code, status=TaskStatus.OPEN, limit=10_000)
    overdue = sum(1 for t, *_ in open_rows if t.due_at is not None and aware(t.due_at) < moment)
    return TaskPage(
        items=items,
        total=total,
        counts=repo.task_counts(session=session, department=code),
        overdue=overdue,
        items_filter=repo.task_items(session=session, department=code),
    )


# -- the case review screen -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageTasks:
    """One stage round and each department's task on it (a 联审 stage has several)."""

    stage_key: str
    stage_name: str
    round: int
    tasks: list[CaseTask]


@dataclass(frozen=True)
class ReviewPage:
    case: CaseOut
    names: dict[str, str]
    conditions: list[ConditionResult]
    eligible: bool
    amount_text: str
    suggested_fen: int | None
    cap_fen: int | None
    quantified: bool
    stages: list[StageTasks]
    my_task: CaseTask | None
    objections: list[Any]
    my_department: str | None
    supplement_note: str = ""
    # field → {label, source_label, source_date, import_id, ...}: where each fact of the frozen evidence came from
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    at_application: ApplicationCheck | None = None


@dataclass(frozen=True)
class ApplicationCheck:
    """The quantified conditions as evaluated when the application arrived (kept with the case as evidence)."""

    checked_at: datetime | None
    conditions: list[ConditionResult]
    outcome: str  # true / false / unknown, as rules.conditions.evaluate says
    unmet: list[str]
    rejected_at_once: bool

    @property
    def verdict(self) -> str:
        if self.outcome == "true":
            return "申报时全部量化条件满足"
        if self.outcome == "false":
            return "申报时存在明确不满足的量化条件" + ("，已即时不予通过" if self.rejected_at_once else "")
        return "申报时部分条件缺少数据，无法自动判断，须人工核实"


def application_check(case: Any) -> ApplicationCheck | None:
    """The eligibility recorded at application (`case.evidence`), or None for a case checked before it was kept."""
    evidence = case.evidence or {}
    if not isinstance(evidence, dict) or "conditions" not in evidence:
        return None
    conditions = [ConditionResult.model_validate(c) for c in evidence.get("conditions") or []]
    outcome = evidence.get("outcome")
    if outcome is None:  # recorded before the outcome was kept: the eligibility flag alone
        outcome = "true" if evidence.get("eligible_by_rules") else "unknown"
    checked = evidence.get("checked_at")
    return ApplicationCheck(
        checked_at=datetime.fromisoformat(checked) if checked else None,
        conditions=conditions,
        outcome=outcome,
        unmet=list(evidence.get("unmet") or [c.text for c in conditions if c.blocking]),
        rejected_at_once=bool(evidence.get("rejected_at_once")),
    )


def _named(text: str | None, names: dict[str, str]) -> str | None:
    """A recorded text with the codes of known departments replaced by their names (longest code first)."""
    if not text:
        return text
    for code in sorted(names, key=len, reverse=True):
        text = text.replace(code, names[code])
    return text


def _stages(tasks: list[CaseTask]) -> list[StageTasks]:
    grouped: dict[tuple[str, int], StageTasks] = {}
    for t in tasks:
        key = (t.stage_key, t.round)
        if key not in grouped:
            grouped[key] = StageTasks(t.stage_key, t.stage_name, t.round, [])
        grouped[key].tasks.append(t)
    return list(grouped.values())


def _staff(scope: Scope) -> None:
    if scope.role not in (Role.DEPARTMENT, Role.FINANCE, Role.ADMIN):
        raise Forbidden(f"{Role.label_of(scope.role)}无权使用部门工作台", rule="role")


def review_page(*, session: Session, scope: Scope, case_id: int) -> ReviewPage:
    """A case as its reviewer decides it: archive facts against each condition, the amount the standard gives and
    its cap, the timeline, every department's progress per stage (联审), and the caller's open task."""
    _staff(scope)
    page = cases.page(session=session, scope=scope, case_id=case_id)
    case = cases.visible_case(session=session, scope=scope, case_id=case_id)
    version = fund_items.version(session=session, fund_item_id=case.fund_item_id, number=case.fund_item_version)
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    conditions: list[ConditionResult] = []
    supplement_note = "本事项未配置补正"
    eligible, amount_text, suggested, cap, quantified = False, "事项配置版本缺失，无法测算", None, None, False
    if version is not None:
        config = parse_config(version)
        evaluation = evaluate(config.conditions, enterprise)
        amount = compute_amount(config.standard, enterprise)
        conditions, eligible, amount_text, quantified = (
            evaluation.items,
            evaluation.eligible,
            amount.explanation,
            amount.quantified,
        )
        suggested = amount.amount_fen if amount.quantified else None
        cap = getattr(config.standard, "max_fen", None) or getattr(config.standard, "cap_fen", None)
        rule = config.approval.supplement
        if rule is not None and rule.max_times:
            supplement_note = (
                f"退回后企业须在 {rule.enterprise_deadline_working_days} 个工作日内补正，"
                f"本事项最多退回补正 {rule.max_times} 次"
            )
    tasks = reviews.tasks_for_case(session=session, case_id=case.id)
    mine = scope.principal.subject if scope.role != Role.ADMIN else None
    my_task = next((t for t in tasks if t.status == TaskStatus.OPEN and t.department_code == mine), None)
    names = page.names | cases.actor_names(session=session, actors=[f"department:{t.department_code}" for t in tasks])
    objections = reviews.objections_for_case(session=session, case_id=case.id)
    # the workflow's stage texts name departments by code ("初审：YC-JXJ办理"); the page names them
    events = [e.model_copy(update={"reason": _named(e.reason, names)}) for e in page.case.events]
    return ReviewPage(
        case=page.case.model_copy(update={"events": events}),
        names=names,
        conditions=conditions,
        eligible=eligible,
        amount_text=amount_text,
        suggested_fen=suggested,
        cap_fen=cap,
        quantified=quantified,
        stages=_stages(tasks),
        my_task=my_task,
        objections=[o for o in objections if o.status == ObjectionStatus.OPEN]
        + [o for o in objections if o.status != ObjectionStatus.OPEN],
        my_department=mine,
        supplement_note=supplement_note,
        provenance=_provenance(session, case),
        at_application=application_check(case),
    )


def _provenance(session: Session, case: Any) -> dict[str, dict[str, Any]]:
    from services.archive import case_provenance  # services.archive imports the case service this module uses

    return case_provenance(session=session, case=case)


# -- fund items: the list, the lifecycle and the version history ----------------------------------------------------


@dataclass(frozen=True)
class ItemRow:
    item: FundItemSummary
    budget: dict[str, int]
    cases: int
    open_cases: int


def items_page(
    *, session: Session, scope: Scope, status: str | None = None, mode: str | None = None, q: str = ""
) -> list[ItemRow]:
    """The caller's fund items (a department: its own) with window, budget use and case counts; `q` searches the
    name and the code."""
    _staff(scope)
    items = fund_item_service.list_items(session=session, principal=scope.principal, status=status, mode=mode)
    needle = q.strip()
    if needle:
        items = [i for i in items if needle in i.name or needle.upper() in i.code.upper()]
    ids = repo.item_ids(session=session, codes=[i.code for i in items])
    counts = repo.case_counts(session=session, fund_item_ids=list(ids.values()))
    rows = []
    for i in items:
        by_status = counts.get(ids[i.code], {})
        open_cases = sum(n for s, n in by_status.items() if not CaseStatus(s).is_final)
        rows.append(
            ItemRow(i, budget.totals(session=session, fund_item_id=ids[i.code]), sum(by_status.values()), open_cases)
        )
    return rows


@dataclass(frozen=True)
class VersionDiff:
    version: VersionSummary
    changes: list[tuple[str, str, str]]  # (path, before, after) against the version before it


@dataclass(frozen=True)
class ItemPage:
    item: FundItemOut
    listing: ListingCheck
    history: list[VersionDiff]
    budget: dict[str, int]


def _flat(value: Any, path: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out |= _flat(v, f"{path}.{k}" if path else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out |= _flat(v, f"{path}[{i}]")
        return out
    return {path: json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The configuration paths that differ between two versions, with both values (— where absent)."""
    a, b = _flat(before), _flat(after)
    return [(k, a.get(k, "—"), b.get(k, "—")) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def item_page(*, session: Session, scope: Scope, code: str, today: date) -> ItemPage:
    """A fund item with what the lifecycle buttons need: the 5-working-day listing check for today (with the earliest
    start day it allows) and every version with what changed from the one before."""
    _staff(scope)
    item = fund_item_service.get_item(session=session, principal=scope.principal, code=code)
    check = fund_item_service.listing_check(
        calendar=working_calendar(session=session),
        mode=item.mode,
        window=item.version.config.window,
        listing_date=today,
    )
    summaries = fund_item_service.versions(session=session, principal=scope.principal, code=code)
    configs = {
        s.version: fund_item_service.version(
            session=session, principal=scope.principal, code=code, number=s.version
        ).config.model_dump(mode="json")
        for s in summaries
    }
    history = [
        VersionDiff(s, _diff(configs[summaries[i - 1].version], configs[s.version]) if i else [])
        for i, s in enumerate(summaries)
    ]
    ids = repo.item_ids(session=session, codes=[code])
    return ItemPage(item, check, list(reversed(history)), budget.totals(session=session, fund_item_id=ids[code]))


# -- the dry run page (政策预匹配) ------------------------------------------------------------------------------------

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class SampleRow:
    name: str
    region: str
    unmet: list[str]


@dataclass(frozen=True)
class DryRunPage:
    item: FundItemSummary
    result: DryRunOut
    regions: list[tuple[str, int, int]]  # (name, matched, amount_fen)
    sizes: list[tuple[str, int, int]]
    matched: list[SampleRow]
    near_misses: list[SampleRow]
    sampled: int
    industries: list[tuple[str, int, int]] = field(default_factory=list)  # GB/T 4754 section names


def dry_run_sample(
    *, session: Session, conditions: Any, region_code: str
) -> tuple[list[SampleRow], list[SampleRow], int]:
    """Matched enterprises and near misses (one condition short, with what they lack) among the first enterprises of
    the item's region: the sample the dry run page shows."""
    prefix = region_code
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    tree = parse_condition(conditions) if isinstance(conditions, dict) else conditions
    matched: list[SampleRow] = []
    near: list[SampleRow] = []
    read = 0
    for enterprise in repo.iter_enterprise_sample(session=session, region_prefix=prefix):
        read += 1
        facts = facts_of(enterprise)
        value = truth(tree, facts)
        if value is True:
            if len(matched) < SAMPLE_SIZE:
                matched.append(SampleRow(enterprise.name, region_name(enterprise.region_code), []))
        elif len(near) < SAMPLE_SIZE:
            unmet = [r.text for r in shortfalls(tree, facts)]  # explained only when not matched (same logic)
            if len(unmet) == 1:
                near.append(SampleRow(enterprise.name, region_name(enterprise.region_code), unmet))
        if len(matched) >= SAMPLE_SIZE and len(near) >= SAMPLE_SIZE:
            break
    return matched, near, read


def dry_run_page(*, session: Session, scope: Scope, code: str) -> DryRunPage:
    """The dry run of a fund item's latest version over the whole archive, with names for the charts (districts,
    size classes, GB/T 4754 industry sections), and a sample of matched enterprises and of near misses (one condition
    short) with what they lack."""
    _staff(scope)
    summary = fund_item_service.get_item(session=session, principal=scope.principal, code=code)
    result = matching.run(session=session, principal=scope.principal, body=DryRunIn(fund_item_code=code))
    regions = [(region_name(g.key), g.matched, g.amount_fen) for g in result.by_region]
    sizes = [(g.label or g.key, g.matched, g.amount_fen) for g in result.by_size]
    industries = [(g.label or g.key, g.matched, g.amount_fen) for g in result.by_industry]
    config = summary.version.config
    matched, near, sampled = dry_run_sample(session=session, conditions=config.conditions, region_code=config.region.code)
    return DryRunPage(summary, result, regions, sizes, matched, near, sampled, industries)


def lifecycle(*, session: Session, scope: Scope, code: str, action: str, reason: str, today: date) -> FundItemOut:
    """Submit, list (上架), close (结束受理) or delist (下架) from the page, in a savepoint: a refusal shown on the
    page leaves nothing half-done in the request's transaction."""
    if action in ("close", "delist") and len(reason.strip()) < 2:
        raise Invalid("reason：结束受理或下架须写明原因（至少 2 个字）", field="reason", rule="required")
    principal = scope.principal
    with session.begin_nested():
        if action == "submit":
            return fund_item_service.submit(session=session, principal=principal, code=code, today=today)
        if action == "list":
            return fund_item_service.list_item(session=session, principal=principal, code=code, today=today)
        if action == "close":
            return fund_item_service.close(session=session, principal=principal, code=code, reason=reason.strip())
        return fund_item_service.delist(session=session, principal=principal, code=code, reason=reason.strip())
