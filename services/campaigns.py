"""免申即享 campaign use cases: starting registered campaigns, progress, the finance decision on a wave, collecting
consent now, an enterprise's consent, objections and their rulings, and a case's frozen evidence.

Scoping (services/scope.py): a department sees the campaigns of its own fund items and acts on them; a finance bureau
sees the campaigns of its region and alone (with administrators) decides a wave; an enterprise sees its own cases.
Anything outside the caller's scope reads as unknown (404). The functions that talk to Temporal are async and take
the client; the ones that read or write the database take the caller's unit of work and never commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from db import crypto
from db.models import Campaign, Case, FundItem
from db.repositories import campaigns as repo
from db.repositories import cases as cases_repo
from db.repositories import enterprises, fund_items
from rules.conditions import evaluate
from schemas.audit import AuditNote
from schemas.campaigns import (
    CampaignInput,
    CampaignProgress,
    ConsentIn,
    ConsentOut,
    FinanceDecision,
    ObjectionIn,
    ObjectionRuling,
)
from schemas.principal import Principal
from schemas.vocabulary import AuditKind, CaseStatus, ConsentStatus, Role
from services import scope
from services.campaign_progress import counted_progress
from services.errors import Conflict, Forbidden, Invalid, NotFound
from settings import Settings
from workflows.campaign import CampaignObjectionWorkflow, CampaignWorkflow, objection_workflow_id

UnitOfWork = Callable[[], AbstractContextManager[Session]]


# ---------------------------------------------------------------------------------------------- starting


async def start_campaign(
    *, client: Client, settings: Settings, campaign_id: int, workflow_id: str, **options: Any
) -> None:
    """Start a campaign's workflow once; a running or finished one is never started again."""
    await client.start_workflow(
        CampaignWorkflow.run,
        CampaignInput(campaign_id=campaign_id, **options),
        id=workflow_id,
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def start_pending(*, client: Client, settings: Settings, unit_of_work: UnitOfWork, **options: Any) -> int:
    """Start the workflow of every registered campaign not yet started; returns how many.

    Each database step runs in its own unit of work from `unit_of_work` (the caller's transaction factory), so a
    campaign is marked started only after its workflow exists.
    """

    def _pending() -> list[tuple[int, str]]:
        with unit_of_work() as session:
            return [(c.id, c.workflow_id) for c in repo.pending(session=session)]

    def _mark_started(campaign_id: int) -> None:
        with unit_of_work() as session:
            repo.mark_started(session=session, campaign_id=campaign_id)

    started = 0
    for campaign_id, workflow_id in await asyncio.to_thread(_pending):
        with contextlib.suppress(WorkflowAlreadyStartedError):  # finished before: never started again
            await start_campaign(
                client=client, settings=settings, campaign_id=campaign_id, workflow_id=workflow_id, **options
            )
        await asyncio.to_thread(_mark_started, campaign_id)
        started += 1
    return started


# ---------------------------------------------------------------------------------------------- progress


def _item_of(session: Session, campaign: Campaign) -> FundItem:
    item = fund_items.get(session=session, fund_item_id=campaign.fund_item_id)
    assert item is not None
    return item


def _campaign(session: Session, caller: scope.Scope, campaign_id: int) -> Campaign:
    """A campaign of a fund item the caller may see; any other reads as unknown."""
    campaign = repo.get(session=session, campaign_id=campaign_id)
    if campaign is None:
        raise NotFound(f"批量兑付 {campaign_id} 不存在", field="campaign_id")
    try:
        scope.require_item(session=session, scope=caller, fund_item_id=campaign.fund_item_id)
    except NotFound as exc:
        raise NotFound(f"批量兑付 {campaign_id} 不存在", field="campaign_id", rule="in_scope") from exc
    return campaign


def _staff(session: Session, principal: Principal) -> scope.Scope:
    caller = scope.resolve(session=session, principal=principal)
    if caller.role == Role.ENTERPRISE:
        raise Forbidden("企业无权查看批量兑付")
    return caller


def list_campaigns(
    *, session: Session, principal: Principal, fund_item_code: str | None = None
) -> list[CampaignProgress]:
    """The campaigns the caller may see (newest first) with their progress counted in the database."""
    caller = _staff(session, principal)
    items = fund_items.search_scoped(session=session, condition=scope.item_filter(caller))
    if fund_item_code:
        items = [i for i in items if i.code == fund_item_code]
    out = [
        counted_progress(session=session, campaign_id=c.id)
        for item in items
        for c in repo.for_item(session=session, fund_item_id=item.id)
    ]
    return sorted(out, key=lambda p: -p.campaign_id)


def progress(*, session: Session, principal: Principal, campaign_id: int) -> tuple[CampaignProgress, str]:
    """A campaign's progress counted in the database, and its workflow id (for the live query)."""
    campaign = _campaign(session, _staff(session, principal), campaign_id)
    return counted_progress(session=session, campaign_id=campaign.id), campaign.workflow_id


async def live_progress(*, client: Client, workflow_id: str, counted: CampaignProgress) -> CampaignProgress:
    """The workflow's own progress, with the figures only the database knows taken from `counted`."""
    live = await client.get_workflow_handle(workflow_id).query(CampaignWorkflow.progress)
    return live.model_copy(
        update={
            "fund_item_name": counted.fund_item_name,
            "budget_total_fen": counted.budget_total_fen,
            "budget_left_fen": counted.budget_left_fen,
            "tranches": counted.tranches,
        }
    )


def page(*, session: Session, principal: Principal, campaign_id: int) -> dict[str, Any]:
    """What the campaign page shows: progress, waves, the first cases, and whether the caller may decide."""
    caller = _staff(session, principal)
    campaign = _campaign(session, caller, campaign_id)
    counted = counted_progress(session=session, campaign_id=campaign.id)
    return {
        "p": counted,
        "cases": repo.cases_page(session=session, campaign_id=campaign.id),
        "percent": round(100 * counted.paid / counted.matched) if counted.matched else 0,
        "may_decide": caller.role in (Role.FINANCE, Role.ADMIN),
    }


# ---------------------------------------------------------------------------------------------- finance, collect


def finance_target(*, session: Session, principal: Principal, campaign_id: int) -> str:
    """The workflow id of a campaign the caller may decide on: finance of its region, or an administrator."""
    caller = scope.resolve(session=session, principal=principal)
    if caller.role not in (Role.FINANCE, Role.ADMIN):
        raise Forbidden("只有财政部门可以审核批量兑付", field="campaign_id", rule="finance_only")
    return _campaign(session, caller, campaign_id).workflow_id


async def decide(
    *, client: Client, workflow_id: str, principal: Principal, tranche: int, approve: bool, note: str
) -> None:
    """One finance decision on a whole wave: approve (the wave is paid) or refuse (budget released). Its audit
    record is written with the wave's decision by the workflow's activity (CampaignActivities.campaign_finance)."""
    decision = FinanceDecision(tranche=tranche, approve=approve, actor=principal.actor, note=note)
    try:
        await client.get_workflow_handle(workflow_id).execute_update(CampaignWorkflow.finance_decision, decision)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise Conflict(str(getattr(cause, "message", cause) or exc), field="tranche") from exc


def collect_target(*, session: Session, principal: Principal, campaign_id: int) -> str:
    """The workflow id of a campaign whose consent answers the caller (its department) may collect now."""
    caller = scope.resolve(session=session, principal=principal)
    campaign = _campaign(session, caller, campaign_id)
    scope.require_owner(scope=caller, fund_item=_item_of(session, campaign))
    return campaign.workflow_id


async def collect(*, client: Client, workflow_id: str, principal: Principal, campaign_id: int) -> None:
    """Collect the consent answers received so far now, without waiting for the next wave. The request's audit
    record travels with the signal and is written by the collection it brings forward, in that collection's
    transaction and once (its `once` key), as decisions' records are."""
    requested = datetime.now(UTC)
    note = AuditNote(kind=AuditKind.CAMPAIGN_COLLECT_NOW, actor=principal.actor, subject=f"campaign:{campaign_id}",
                     data={"campaign_id": campaign_id, "workflow_id": workflow_id,
                           "requested_at": requested.isoformat()},
                     once=f"collect:{workflow_id}:{uuid.uuid4().hex}")  # fmt: skip
    await client.get_workflow_handle(workflow_id).signal(CampaignWorkflow.collect, note)


# ---------------------------------------------------------------------------------------------- cases


def _campaign_case(session: Session, caller: scope.Scope, case_id: int) -> Case:
    """A campaign case the caller may see (an enterprise its own, staff their items' or region's)."""
    case = cases_repo.get(session=session, case_id=case_id)
    if case is None or case.campaign_id is None:
        raise NotFound(f"免申即享办件 {case_id} 不存在", field="case_id")
    try:
        scope.require_case(session=session, scope=caller, case_id=case_id)
    except NotFound as exc:
        raise NotFound(f"免申即享办件 {case_id} 不存在", field="case_id", rule="in_scope") from exc
    return case


def consent(*, session: Session, settings: Settings, principal: Principal, case_id: int, body: ConsentIn) -> ConsentOut:
    """Record an enterprise's consent in the database; the campaign's next wave collects it."""
    caller = scope.resolve(session=session, principal=principal)
    if caller.role != Role.ENTERPRISE:
        raise Forbidden("只有企业本身可以确认兑付意愿", field="case_id")
    case = _campaign_case(session, caller, case_id)
    campaign = repo.get(session=session, campaign_id=case.campaign_id or 0)
    assert campaign is not None
    if case.status != CaseStatus.CONSENT_PENDING:
        raise Conflict(
            f"办件 {case_id} 当前不在意愿确认阶段（状态：{CaseStatus.label_of(case.status)}）", field="case_id"
        )
    due = campaign.consent_due_at
    if due is not None and datetime.now(UTC) >= (due if due.tzinfo else due.replace(tzinfo=UTC)):
        raise Conflict(f"意愿确认已于 {campaign.consent_deadline} 截止", field="case_id")
    enc = masked = None
    if body.accept and body.acct_no:
        if not (body.bank_name and body.bank_code):
            raise Invalid("填写收款账号 acct_no 时须同时填写开户银行 bank_name 和联行号 bank_code", field="bank_code")
        enc, masked = crypto.encrypt(settings.fernet_key(), body.acct_no), crypto.mask_account(body.acct_no)
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    assert enterprise is not None
    if body.accept and enc is None and not enterprise.bank_account_enc:
        raise Invalid("企业档案未登记收款账户，请填写收款账号 acct_no", field="acct_no")
    repo.record_consent(
        session=session,
        case=case,
        accept=body.accept,
        actor=principal.actor,
        acct_enc=enc,
        acct_masked=masked,
        acct_name=(body.acct_name or enterprise.name) if enc else None,
        bank_name=body.bank_name if enc else None,
        bank_code=body.bank_code if enc else None,
    )
    return ConsentOut(
        case_id=case.id,
        consent_status=case.consent_status or "",
        acct_masked=case.consent_acct_masked or enterprise.bank_account_masked,
        deadline=campaign.consent_deadline,
    )


def consent_page(*, session: Session, principal: Principal, case_id: int) -> dict[str, Any]:
    """What the consent page shows: the case, its campaign, fund item and enterprise, and whether it may answer."""
    caller = scope.resolve(session=session, principal=principal)
    case = _campaign_case(session, caller, case_id)
    return {
        "case": case,
        # Once answered the form and its deadline go away (the status moves only when the next wave collects it).
        "may_answer": caller.role == Role.ENTERPRISE
        and case.status == CaseStatus.CONSENT_PENDING
        and not (case.consent_status and ConsentStatus(case.consent_status).is_final),
        "campaign": repo.get(session=session, campaign_id=case.campaign_id or 0),
        "item": fund_items.get(session=session, fund_item_id=case.fund_item_id),
        "enterprise": enterprises.get(session=session, enterprise_id=case.enterprise_id),
    }


def file_objection(*, session: Session, principal: Principal, case_id: int, body: ObjectionIn) -> dict[str, Any]:
    """A real-name objection during publicity: the case leaves its wave until the department rules.

    The publicity list is public, so any enterprise may object to a case on it; staff object within their scope.
    """
    caller = scope.resolve(session=session, principal=principal)
    case = cases_repo.get(session=session, case_id=case_id)
    if case is None or case.campaign_id is None:
        raise NotFound(f"免申即享办件 {case_id} 不存在", field="case_id")
    if caller.role != Role.ENTERPRISE:
        _campaign_case(session, caller, case_id)
    if case.status != CaseStatus.PUBLICITY:
        raise Conflict(f"办件 {case_id} 不在公示期内，不能提出异议", field="case_id")
    repo.file_objection(
        session=session, case=case, objector_name=body.objector_name, reason=body.reason, actor=principal.actor
    )
    return {"case_id": case_id, "status": case.status}


def ruling_target(*, session: Session, principal: Principal, case_id: int) -> None:
    """Refuse a ruling by anyone but the item's department, its objection department, or an administrator."""
    caller = scope.resolve(session=session, principal=principal)
    case = _campaign_case(session, caller, case_id)
    if caller.role == Role.ADMIN:
        return
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    assert item is not None
    publicity = repo.item_config(session=session, item=item, version=case.fund_item_version).approval.publicity
    if publicity is not None and publicity.objection_department == caller.department_code:
        return
    scope.require_owner(scope=caller, fund_item=item)


async def rule_objection(*, client: Client, principal: Principal, case_id: int, body: ObjectionRuling) -> Any:
    """The department rules on an objection: upheld (not paid) or dismissed (paid with its wave)."""
    ruling = body.model_copy(update={"actor": principal.actor})
    try:
        return await client.get_workflow_handle(objection_workflow_id(case_id)).execute_update(
            CampaignObjectionWorkflow.rule, ruling
        )
    except WorkflowUpdateFailedError as exc:
        raise Conflict(str(getattr(exc.cause, "message", exc.cause)), field="case_id") from exc
    except RPCError as exc:
        raise NotFound(f"办件 {case_id} 没有待处理的异议（公示期结束后开始处理）", field="case_id") from exc


def evidence(*, session: Session, principal: Principal, case_id: int) -> dict[str, Any]:
    """The frozen evidence of a campaign case and its condition-by-condition explanation on those values."""
    case = _campaign_case(session, scope.resolve(session=session, principal=principal), case_id)
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    assert item is not None
    config = repo.item_config(session=session, item=item, version=case.fund_item_version)
    frozen = case.evidence or {}
    evaluation = evaluate(config.conditions, frozen.get("values") or {})
    return {"case_id": case.id, "evidence": frozen, "evaluation": evaluation.model_dump(mode="json")}
