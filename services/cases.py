"""Cases (办件): applications (申报) that start their workflow, the case view with its timeline, and case lists, each
scoped by the caller."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.models import Case
from db.repositories import budget, cases, enterprises, fund_items, lookups, notices, payments
from schemas import uscc as uscc_rules
from schemas.cases import ApplicationIn, CaseEventOut, CaseInput, CaseOut, NoticeOut, PaymentOut
from schemas.localtime import local_date
from schemas.vocabulary import ActorKind, FundItemMode, FundItemStatus, Role, split_actor
from services import scope as scopes
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.scope import Scope
from services.uow import UnitOfWork
from settings import Settings
from workflows.client import case_workflow_id
from workflows.instant import InstantCaseWorkflow
from workflows.review import ReviewCaseWorkflow
from workflows.versions import CASE_CODE_VERSION

WORKFLOW_BY_MODE = {FundItemMode.INSTANT: InstantCaseWorkflow, FundItemMode.REVIEW: ReviewCaseWorkflow}


# -- applications ---------------------------------------------------------------------------------------------------


NO_ACCOUNT_MESSAGE = "请先填写收款账户：企业档案未登记收款账户（户名、账号、开户行、联行号），请在“我的企业”中填写后再申报"


def window_of(config: dict) -> tuple[date, date] | None:
    """The application window (申报期) of a stored configuration, both days included."""
    window = config.get("window") if isinstance(config, dict) else None
    if not window:
        return None
    return date.fromisoformat(str(window["start"])), date.fromisoformat(str(window["end"]))


def window_refusal(window: tuple[date, date] | None, today: date) -> str | None:
    """Why an application on `today` (a local date) is outside the window, or None when it is inside."""
    if window is None:
        return None
    start, end = window
    dates = f"申报期为 {start:%Y年%m月%d日} 至 {end:%Y年%m月%d日}"
    if today < start:
        return f"申报尚未开始：{dates}，请于 {start:%Y年%m月%d日} 起申报"
    if today > end:
        return f"申报已截止：{dates}"
    return None


def create_application(
    *, session: Session, scope: Scope, body: ApplicationIn, workflow_key: bytes, today: date | None = None
) -> tuple[Case, bool]:
    """The case for this enterprise and fund item, created once; a duplicate returns the first case.

    Refused before anything is created or reserved: outside the pinned version's window (compared in local dates),
    and while the enterprise has no payout account (the payment would have nowhere to go)."""
    try:
        code = uscc_rules.validate(body.uscc)
    except ValueError as exc:
        raise Invalid(f"uscc：{exc}", field="uscc") from exc
    if scope.role == Role.ENTERPRISE and scope.principal.subject != code:
        raise Forbidden("企业只能为本企业申报", field="uscc")
    item = fund_items.get_by_code(session=session, code=body.fund_item_code)
    if item is None:
        raise NotFound(f"fund_item_code：资金事项 {body.fund_item_code} 不存在", field="fund_item_code")
    if item.status != FundItemStatus.LISTED:
        raise Conflict(f"fund_item_code：资金事项“{item.name}”未上架，不接受申报", field="fund_item_code")
    if item.mode not in WORKFLOW_BY_MODE:
        raise Conflict(f"fund_item_code：资金事项“{item.name}”的兑付方式不接受在线申报", field="fund_item_code")
    enterprise = enterprises.get_by_uscc(session=session, uscc=code)
    if enterprise is None:
        raise NotFound(f"uscc：统一社会信用代码 {code} 不在企业档案中", field="uscc")
    existing = cases.get_by_item_and_enterprise(session=session, fund_item_id=item.id, enterprise_id=enterprise.id)
    if existing is not None:
        return existing, False
    number = item.listed_version or item.current_version
    pinned = fund_items.version(session=session, fund_item_id=item.id, number=number)
    refusal = window_refusal(
        window_of(pinned.config if pinned else {}), today or local_date(datetime.now(UTC))
    )
    if refusal:
        raise Conflict(f"fund_item_code：“{item.name}”{refusal}", field="fund_item_code", rule="window")
    if not enterprise.bank_account_enc:
        raise Conflict(NO_ACCOUNT_MESSAGE, field="payout_account", rule="payout_account_required")
    return cases.get_or_create(
        session=session,
        fund_item_id=item.id,
        fund_item_version=number,
        enterprise_id=enterprise.id,
        mode=item.mode,
        workflow_id=case_workflow_id(item.code, code, workflow_key),
    )


def case_input(*, case: Case, poll_seconds: float) -> CaseInput:
    """The input a case workflow starts with, stamped with the current workflow code version (workflows/versions)."""
    return CaseInput(
        case_id=case.id,
        fund_item_id=case.fund_item_id,
        fund_item_version=case.fund_item_version,
        payment_poll_seconds=poll_seconds,
        code_version=CASE_CODE_VERSION,
    )


async def start_case_workflow(*, client: Client, settings: Settings, case: Case) -> None:
    """Start the case's workflow once: a running one is reused and a finished one is never started again."""
    workflow = WORKFLOW_BY_MODE[FundItemMode(case.mode)]
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            workflow.run,
            case_input(case=case, poll_seconds=settings.payment_poll_seconds),
            id=case.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )


async def apply(
    *, uow: UnitOfWork, client: Client, settings: Settings, scope: Scope, body: ApplicationIn
) -> tuple[CaseOut, bool]:
    """Apply for an instant or review fund item and start its workflow; (the case, whether it is new)."""
    # The case commits before the workflow starts, so the workflow always finds it.
    case, created, out = await uow.write(
        _create_with_view, scope=scope, body=body, workflow_key=settings.workflow_id_key()
    )
    await start_case_workflow(client=client, settings=settings, case=case)
    if out is not None:
        return out, created
    return await uow.read(case_view, case=case), created


def _create_with_view(
    *, session: Session, scope: Scope, body: ApplicationIn, workflow_key: bytes
) -> tuple[Case, bool, CaseOut | None]:
    """create_application, and for a new case its view as created: it has no timeline, notices or payments yet, so
    the view is read in the same unit of work (its item and enterprise are already loaded) instead of in a second
    one on another thread after the workflow started. A duplicate's view is read afterwards, in full."""
    case, created = create_application(session=session, scope=scope, body=body, workflow_key=workflow_key)
    return case, created, (case_view(session=session, case=case, detail=False) if created else None)


# -- one case -------------------------------------------------------------------------------------------------------


def visible_case(*, session: Session, scope: Scope, case_id: int) -> Case:
    """A case the caller may see; one outside its scope is not found (no probing of other departments' cases)."""
    scopes.require_case(session=session, scope=scope, case_id=case_id)
    case = cases.get(session=session, case_id=case_id)
    if case is None:
        raise NotFound(f"办件 {case_id} 不存在", field="case_id")
    return case


def case_view(*, session: Session, case: Case, detail: bool = True) -> CaseOut:
    """The case with its fund item and enterprise; with `detail`, its timeline, notices and payments."""
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    assert item and enterprise
    out = CaseOut(
        id=case.id,
        workflow_id=case.workflow_id,
        fund_item_code=item.code,
        fund_item_name=item.name,
        fund_item_version=case.fund_item_version,
        uscc=enterprise.uscc,
        enterprise_name=enterprise.name,
        mode=case.mode,
        status=case.status,
        amount_fen=case.amount_fen,
        paid_fen=case.paid_fen,
        outcome_reason=case.outcome_reason,
        created_at=case.created_at,
        consent_status=case.consent_status,
    )
    if detail:
        out.events = [
            CaseEventOut.model_validate(e, from_attributes=True) for e in cases.events(session=session, case_id=case.id)
        ]
        out.notices = [
            NoticeOut.model_validate(n, from_attributes=True)
            for n in notices.for_case(session=session, case_id=case.id)
        ]
        out.payments = [
            PaymentOut.model_validate(p, from_attributes=True)
            for p in payments.for_case(session=session, case_id=case.id)
        ]
    return out


def view(*, session: Session, scope: Scope, case_id: int) -> CaseOut:
    """One case in the caller's scope, with its timeline, notices and payments."""
    return case_view(session=session, case=visible_case(session=session, scope=scope, case_id=case_id))


def actor_names(*, session: Session, actors: Iterable[str]) -> dict[str, str]:
    """Names of the departments and enterprises behind recorded actors, for the pages' `actor` filter."""
    subjects: dict[str, set[str]] = {}
    for value in actors:
        kind, subject = split_actor(value)
        subjects.setdefault(kind, set()).add(subject.partition(":")[0])
    codes = subjects.get(ActorKind.DEPARTMENT, set()) | subjects.get(ActorKind.FINANCE, set())
    usccs = subjects.get(ActorKind.ENTERPRISE, set())
    return lookups.department_names(session=session, codes=codes) | lookups.enterprise_names(
        session=session, usccs=usccs
    )


@dataclass(frozen=True)
class CasePage:
    case: CaseOut
    names: dict[str, str]


def page(*, session: Session, scope: Scope, case_id: int) -> CasePage:
    """The case page: the case and the names its timeline's actors are shown by."""
    out = view(session=session, scope=scope, case_id=case_id)
    return CasePage(out, actor_names(session=session, actors=[e.actor for e in out.events]))


# -- lists ----------------------------------------------------------------------------------------------------------


def for_enterprise(*, session: Session, scope: Scope, enterprise_id: int) -> list[CaseOut]:
    """An enterprise's cases that the caller may see, newest first."""
    rows = cases.list_for_enterprise(session=session, enterprise_id=enterprise_id, where=scopes.case_filter(scope))
    return [case_view(session=session, case=c, detail=False) for c in rows]


@dataclass(frozen=True)
class Home:
    items: list
    cases: list[CaseOut]
    counts: dict[str, int]


def home(*, session: Session, scope: Scope) -> Home:
    """The staff home page: the fund items in scope with their budget, recent cases and counts by status."""
    condition = scopes.case_filter(scope)
    items = [
        (item, budget.totals(session=session, fund_item_id=item.id))
        for item in lookups.fund_items_where(session=session, condition=scopes.item_filter(scope))
    ]
    recent = [
        case_view(session=session, case=c, detail=False) for c in cases.list_recent(session=session, where=condition)
    ]
    return Home(items, recent, cases.count_by_status(session=session, where=condition))
