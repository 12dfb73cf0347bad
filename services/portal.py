"""The enterprise's own pages (企业端): what its home page, a case page and "my enterprise" show, assembled from the
services the API uses. An enterprise reaches only itself; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Enterprise
from db.repositories import archive as archive_repo
from db.repositories import enterprises as repo
from rules.conditions import facts_of
from schemas.cases import CaseOut
from schemas.fields import FIELDS
from schemas.materials import MaterialOut
from schemas.portal import CalculatorOut, CalculatorRow, PayoutAccountOut
from schemas.regions import industry_name, region_name
from schemas.vocabulary import ArchiveSource, CaseStatus, ConsentStatus, FundItemMode, Role
from services import calculator
from services import cases as case_service
from services import enterprises as enterprise_service
from services import materials as material_service
from services import notices as notice_service
from services.errors import Forbidden
from services.scope import Scope

# The stage line: each step of a mode and the statuses that sit on it (a final status other than paid ends the line).
STAGES: dict[FundItemMode, list[tuple[str, frozenset[CaseStatus]]]] = {
    FundItemMode.INSTANT: [
        ("已受理", frozenset({CaseStatus.RECEIVED})),
        ("系统核验", frozenset({CaseStatus.APPROVED})),
        ("预留额度", frozenset({CaseStatus.RESERVED})),
        ("国库拨付", frozenset({CaseStatus.PAYING, CaseStatus.AWAITING_CORRECTION})),
        ("已到账", frozenset({CaseStatus.PAID})),
    ],
    FundItemMode.REVIEW: [
        ("已受理", frozenset({CaseStatus.RECEIVED})),
        ("部门审核", frozenset({CaseStatus.COMPLETENESS, CaseStatus.REVIEWING, CaseStatus.SUPPLEMENT})),
        ("公示", frozenset({CaseStatus.APPROVED, CaseStatus.PUBLICITY, CaseStatus.OBJECTION, CaseStatus.OBJECTED})),
        ("财政审核", frozenset({CaseStatus.FINANCE_REVIEW, CaseStatus.RESERVED})),
        ("国库拨付", frozenset({CaseStatus.PAYING, CaseStatus.AWAITING_CORRECTION})),
        ("已到账", frozenset({CaseStatus.PAID})),
    ],
    FundItemMode.NO_APPLICATION: [
        ("数据比对匹配", frozenset({CaseStatus.MATCHED})),
        ("企业确认", frozenset({CaseStatus.CONSENT_PENDING, CaseStatus.READY, CaseStatus.NO_ACCOUNT})),
        ("公示", frozenset({CaseStatus.PUBLICITY, CaseStatus.OBJECTION, CaseStatus.OBJECTED})),
        ("财政审核", frozenset({CaseStatus.FINANCE_REVIEW, CaseStatus.RESERVED})),
        ("国库拨付", frozenset({CaseStatus.PAYING, CaseStatus.AWAITING_CORRECTION})),
        ("已到账", frozenset({CaseStatus.PAID})),
    ],
}

# Who acts next, in words an enterprise reads.
NEXT: dict[CaseStatus, str] = {
    CaseStatus.RECEIVED: "系统自动核验（通常几秒内完成）",
    CaseStatus.APPROVED: "系统预留资金额度",
    CaseStatus.RESERVED: "等待拨付",
    CaseStatus.COMPLETENESS: "主管部门形式审查",
    CaseStatus.REVIEWING: "主管部门审核",
    CaseStatus.SUPPLEMENT: "贵单位：按要求补正后重新提交",
    CaseStatus.PUBLICITY: "公示期内接受社会监督",
    CaseStatus.OBJECTION: "主管部门核查异议",
    CaseStatus.OBJECTED: "主管部门核查异议",
    CaseStatus.FINANCE_REVIEW: "财政部门审核",
    CaseStatus.PAYING: "国库集中支付系统拨付",
    CaseStatus.AWAITING_CORRECTION: "贵单位：更正收款账户",
    CaseStatus.MATCHED: "主管部门发起兑付",
    CaseStatus.CONSENT_PENDING: "贵单位：确认是否领取",
    CaseStatus.READY: "等待拨付",
    CaseStatus.NO_ACCOUNT: "贵单位：填写收款账户",
}

WITHDRAWABLE = frozenset(
    {CaseStatus.RECEIVED, CaseStatus.COMPLETENESS, CaseStatus.REVIEWING, CaseStatus.SUPPLEMENT, CaseStatus.APPROVED}
)


def own_enterprise(*, session: Session, scope: Scope) -> Enterprise:
    """The signed-in enterprise (these pages are the enterprise's own; staff use the workbench)."""
    if scope.role != Role.ENTERPRISE:
        raise Forbidden(f"{Role.label_of(scope.role)}请使用工作台；企业端仅供企业本身使用", rule="role")
    return notice_service.enterprise_in_scope(session=session, scope=scope, uscc=scope.principal.subject)


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # done / current / todo / stopped


@dataclass(frozen=True)
class Action:
    key: str  # withdraw / account / supplement / consent
    label: str


@dataclass
class CaseCard:
    case: CaseOut
    steps: list[Step]
    next_actor: str | None
    deadline: datetime | None
    actions: list[Action] = field(default_factory=list)
    materials: list[MaterialOut] = field(default_factory=list)


def _deadline(case: CaseOut) -> datetime | None:
    """The latest deadline the timeline recorded (a correction or 补正 due date), while the case is open."""
    if CaseStatus(case.status).is_final:
        return None
    for event in reversed(case.events):
        due = (event.data or {}).get("due_at")
        if due:
            return datetime.fromisoformat(due)
    return None


def actions_for(case: CaseOut) -> list[Action]:
    """What the enterprise can do on the case now."""
    status, mode = CaseStatus(case.status), FundItemMode(case.mode)
    found = []
    if status == CaseStatus.AWAITING_CORRECTION:
        found.append(Action("account", "更正收款账户"))
    if status == CaseStatus.SUPPLEMENT:
        found.append(Action("supplement", "提交补正"))
    if status == CaseStatus.CONSENT_PENDING and case.consent_status in (None, ConsentStatus.PENDING):
        found.append(Action("consent", "确认领取或放弃"))
    if mode == FundItemMode.REVIEW and status in WITHDRAWABLE:
        found.append(Action("withdraw", "撤回申报"))
    return found


def card(case: CaseOut) -> CaseCard:
    status, mode = CaseStatus(case.status), FundItemMode(case.mode)
    stages = STAGES[mode]
    at = next((i for i, (_, statuses) in enumerate(stages) if status in statuses), None)
    if status == CaseStatus.PAID:
        steps = [Step(label, "done") for label, _ in stages]
    elif at is None:  # ended before payment (rejected, withdrawn, declined, …): the steps reached, then where it stopped
        reached = max((i for i, (_, s) in enumerate(stages) for e in case.events if e.to_status in s), default=0)
        steps = [Step(label, "done") for label, _ in stages[: reached + 1]] + [Step(status.label, "stopped")]
    else:
        steps = [Step(label, "done" if i < at else "current" if i == at else "todo") for i, (label, _) in
                 enumerate(stages)]  # fmt: skip
    return CaseCard(case, steps, None if status.is_final else NEXT.get(status), _deadline(case), actions_for(case))


@dataclass(frozen=True)
class Pending:
    text: str
    href: str
    label: str


@dataclass(frozen=True)
class HomePage:
    enterprise: Enterprise
    calculator: CalculatorOut
    cases: list[CaseOut]
    pending: list[Pending]


def home(*, session: Session, scope: Scope) -> HomePage:
    """My policies (matched first), my cases, and what waits for me (consent, account, 补正)."""
    enterprise = own_enterprise(session=session, scope=scope)
    mine = case_service.for_enterprise(session=session, scope=scope, enterprise_id=enterprise.id)
    pending: list[Pending] = []
    if not enterprise.bank_account_enc:
        pending.append(Pending("尚未登记收款账户：申报和拨付前须填写", "/web/me/enterprise#account", "填写收款账户"))
    for c in mine:
        status = CaseStatus(c.status)
        if status == CaseStatus.CONSENT_PENDING and c.consent_status in (None, ConsentStatus.PENDING):
            pending.append(Pending(f"“{c.fund_item_name}”待确认是否领取", f"/web/cases/{c.id}/consent", "去确认"))
        elif status == CaseStatus.AWAITING_CORRECTION:
            pending.append(Pending(f"“{c.fund_item_name}”待更正收款账户", f"/web/me/cases/{c.id}#account", "去更正"))
        elif status == CaseStatus.SUPPLEMENT:
            pending.append(Pending(f"“{c.fund_item_name}”被退回补正", f"/web/me/cases/{c.id}#supplement", "去补正"))
    return HomePage(enterprise, calculator.calculate_for(session=session, enterprise=enterprise), mine, pending)


@dataclass(frozen=True)
class PolicyPage:
    enterprise: Enterprise
    row: CalculatorRow
    guide: dict
    officer: dict
    policy: dict
    case: CaseOut | None
    has_account: bool


def policy(*, session: Session, scope: Scope, code: str, today: date | None = None) -> PolicyPage | None:
    """One listed item for me: my result, its guide (宜昌规则第二十三条), its service officer and my case if any."""
    enterprise = own_enterprise(session=session, scope=scope)
    found = calculator.item_detail(session=session, code=code)
    if found is None:
        return None
    item, department, parsed = found
    row = calculator.row_for(item, department, parsed, facts_of(enterprise), today or calculator.today_local())
    mine = next(
        (c for c in case_service.for_enterprise(session=session, scope=scope, enterprise_id=enterprise.id)
         if c.fund_item_code == code),
        None,
    )  # fmt: skip
    return PolicyPage(
        enterprise, row, parsed.guide, parsed.officer, parsed.policy, mine, bool(enterprise.bank_account_enc)
    )


def case_card(*, session: Session, scope: Scope, case_id: int) -> CaseCard:
    own_enterprise(session=session, scope=scope)
    found = card(case_service.view(session=session, scope=scope, case_id=case_id))
    if found.case.mode == FundItemMode.REVIEW:
        found.materials = material_service.list_for_case(session=session, scope=scope, case_id=case_id)
    return found


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    source: str = ""  # the data source that gave the value, and the day it holds from
    as_of: date | None = None


def _shown(name: str, value: Any) -> str:
    """A fact as the enterprise reads it: regions and industries by name, never by code."""
    if value in (None, []):
        return "暂无数据"
    if name == "region_code":
        return region_name(value)
    if name == "industry_code":
        return industry_name(value)
    return FIELDS[name].format(value)


@dataclass(frozen=True)
class MinePage:
    enterprise: Enterprise
    facts: list[Fact]
    account: PayoutAccountOut | None
    changes: list


def mine(*, session: Session, scope: Scope) -> MinePage:
    """My enterprise: the archive facts (read-only, kept by the data owners), contacts, the payout account."""
    enterprise = own_enterprise(session=session, scope=scope)
    known = facts_of(enterprise)
    latest = archive_repo.latest(session=session, enterprise_id=enterprise.id)
    facts = []
    for name, spec in FIELDS.items():
        value = latest.get(name)
        source = ArchiveSource.label_of(value.source, "") if value is not None else ""
        facts.append(Fact(spec.label, _shown(name, known[name]), source, value.source_date if value else None))
    return MinePage(
        enterprise,
        facts,
        enterprise_service.account_of(enterprise),
        repo.changes_of(session=session, enterprise_id=enterprise.id),
    )
