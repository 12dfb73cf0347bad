"""免申即享 campaigns: progress for finance and departments, consent (意愿确认) for enterprises, objections,
finance decisions on a wave, archive updates that re-evaluate, and the Chinese pages.

Listing a no-application item (or an archive change) registers a campaign row in the same transaction; the
starter loop of this router's lifespan starts its workflow once the API has a Temporal client, so a start is
never lost when Temporal is briefly away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.campaign import db_progress
from api.auth import Principal
from api.deps import SessionDep, SettingsDep, TemporalDep, require
from api.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from db import crypto
from db.models import Campaign, Case
from db.repositories import campaigns as repo
from db.repositories import cases as cases_repo
from db.repositories import enterprises, fund_items
from db.session import transaction
from rules.conditions import evaluate
from schemas.campaigns import (
    CampaignInput,
    CampaignProgress,
    ConsentIn,
    ConsentOut,
    FinanceDecision,
    ObjectionIn,
    ObjectionRuling,
)
from settings import Settings
from workflows.campaign import CampaignObjectionWorkflow, CampaignWorkflow, objection_workflow_id

log = logging.getLogger("zhida.campaigns")
STARTER_EVERY_SECONDS = 1.0


# ---------------------------------------------------------------------------------------------- starting


async def start_campaign(
    client: Client, settings: Settings, campaign_id: int, workflow_id: str, **options: Any
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


async def start_pending(client: Client, settings: Settings, **options: Any) -> int:
    """Start the workflow of every registered campaign not yet started; returns how many."""

    def _pending() -> list[tuple[int, str]]:
        with transaction(settings.db_url) as session:
            return [(c.id, c.workflow_id) for c in repo.pending(session=session)]

    started = 0
    for campaign_id, workflow_id in await run_in_threadpool(_pending):
        with contextlib.suppress(WorkflowAlreadyStartedError):  # finished before: never started again
            await start_campaign(client, settings, campaign_id, workflow_id, **options)
        await run_in_threadpool(_mark_started, settings.db_url, campaign_id)
        started += 1
    return started


def _mark_started(db_url: str, campaign_id: int) -> None:
    with transaction(db_url) as session:
        repo.mark_started(session=session, campaign_id=campaign_id)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The starter loop: registered campaigns get their workflow as soon as Temporal is reachable."""

    async def _loop() -> None:
        while True:
            client = getattr(app.state, "temporal", None)
            if client is not None:
                try:
                    await start_pending(client, app.state.settings, **getattr(app.state, "campaign_options", {}))
                except Exception:  # the next round tries again
                    log.exception("starting campaigns failed")
            await asyncio.sleep(STARTER_EVERY_SECONDS)

    task = asyncio.create_task(_loop())
    yield
    task.cancel()


router = APIRouter(tags=["campaigns 免申即享"], lifespan=lifespan)
Staff = Annotated[Principal, Depends(require("department", "finance"))]
Finance = Annotated[Principal, Depends(require("finance"))]
Department = Annotated[Principal, Depends(require("department"))]
Enterprise = Annotated[Principal, Depends(require("enterprise"))]
Anyone = Annotated[Principal, Depends(require("enterprise", "department", "finance"))]


def _campaign(session, campaign_id: int) -> Campaign:
    campaign = repo.get(session=session, campaign_id=campaign_id)
    if campaign is None:
        raise NotFound(f"批量兑付 {campaign_id} 不存在", field="campaign_id")
    return campaign


# ---------------------------------------------------------------------------------------------- progress, finance


@router.get("/api/v1/campaigns", response_model=list[CampaignProgress])
def list_campaigns(
    session: SessionDep,
    principal: Staff,
    fund_item_code: Annotated[str | None, Query(description="资金事项编码")] = None,
) -> list[CampaignProgress]:
    """Campaigns (newest first) with their progress counted in the database."""
    query_items = fund_items.list_all(session=session)
    if fund_item_code:
        query_items = [i for i in query_items if i.code == fund_item_code]
    out = []
    for item in query_items:
        out += [db_progress(session, c.id) for c in repo.for_item(session=session, fund_item_id=item.id)]
    return sorted(out, key=lambda p: -p.campaign_id)


@router.get("/api/v1/campaigns/{campaign_id}", response_model=CampaignProgress)
async def campaign_progress(
    campaign_id: int,
    request: Request,
    settings: SettingsDep,
    principal: Staff,
    source: Annotated[str, Query(pattern="^(db|workflow)$", description="db：数据库计数；workflow：工作流查询")] = "db",
) -> CampaignProgress:
    """Progress: matched, reserved, instructed, paid, failed, amount paid, budget left."""

    def _db() -> tuple[CampaignProgress, str]:
        with transaction(settings.db_url) as session:
            return db_progress(session, _campaign(session, campaign_id).id), _campaign(session, campaign_id).workflow_id

    progress, workflow_id = await run_in_threadpool(_db)
    if source == "db":
        return progress
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    live = await client.get_workflow_handle(workflow_id).query(CampaignWorkflow.progress)
    return live.model_copy(
        update={
            "fund_item_name": progress.fund_item_name,
            "budget_total_fen": progress.budget_total_fen,
            "budget_left_fen": progress.budget_left_fen,
            "tranches": progress.tranches,
        }
    )


class FinanceDecisionIn(BaseModel):
    """The finance bureau's decision on one wave (批次), after seeing its totals."""

    tranche: int = Field(ge=1, title="批次")
    approve: bool = Field(title="是否同意拨付")
    note: str = Field("", max_length=500, title="审核意见")


async def _decide(client: Client, settings: Settings, campaign_id: int, body: FinanceDecisionIn, actor: str) -> None:
    def _wid() -> str:
        with transaction(settings.db_url) as session:
            return _campaign(session, campaign_id).workflow_id

    decision = FinanceDecision(tranche=body.tranche, approve=body.approve, actor=actor, note=body.note)
    try:
        await client.get_workflow_handle(await run_in_threadpool(_wid)).execute_update(
            CampaignWorkflow.finance_decision, decision
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise Conflict(str(getattr(cause, "message", cause) or exc), field="tranche") from exc


@router.post("/api/v1/campaigns/{campaign_id}/finance-decisions", status_code=202)
async def decide(
    campaign_id: int, body: FinanceDecisionIn, principal: Finance, client: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    """One finance decision on a whole wave: approve (the wave is paid) or refuse (budget released)."""
    await _decide(client, settings, campaign_id, body, principal.actor)
    return {"campaign_id": campaign_id, "tranche": body.tranche, "approve": body.approve}


@router.post("/api/v1/campaigns/{campaign_id}/collect", status_code=202)
async def collect_now(
    campaign_id: int,
    principal: Annotated[Principal, Depends(require("department"))],
    client: TemporalDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Collect the consent answers received so far now, without waiting for the next hourly wave."""

    def _wid() -> str:
        with transaction(settings.db_url) as session:
            return _campaign(session, campaign_id).workflow_id

    await client.get_workflow_handle(await run_in_threadpool(_wid)).signal(CampaignWorkflow.collect)
    return {"campaign_id": campaign_id}


# ---------------------------------------------------------------------------------------------- consent, objections


def _campaign_case(session, principal: Principal, case_id: int) -> Case:
    case = cases_repo.get(session=session, case_id=case_id)
    if case is None or case.campaign_id is None:
        raise NotFound(f"免申即享办件 {case_id} 不存在", field="case_id")
    if principal.role == "enterprise":
        enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
        if enterprise is None or enterprise.uscc != principal.subject:
            raise NotFound(f"免申即享办件 {case_id} 不存在", field="case_id")
    return case


def consent(*, session, settings: Settings, principal: Principal, case_id: int, body: ConsentIn) -> ConsentOut:
    """Record an enterprise's consent in the database; the campaign's next wave collects it."""
    case = _campaign_case(session, principal, case_id)
    campaign = _campaign(session, case.campaign_id or 0)
    if case.status != "consent_pending":
        raise Conflict(f"办件 {case_id} 当前不在意愿确认阶段（状态：{case.status}）", field="case_id")
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


@router.post("/api/v1/cases/{case_id}/consent", response_model=ConsentOut)
def post_consent(
    case_id: int, body: ConsentIn, session: SessionDep, settings: SettingsDep, principal: Enterprise
) -> ConsentOut:
    """意愿确认: accept the payout (to the account on file, or to the account given) or decline it."""
    return consent(session=session, settings=settings, principal=principal, case_id=case_id, body=body)


@router.post("/api/v1/cases/{case_id}/objections", status_code=201)
def post_objection(case_id: int, body: ObjectionIn, session: SessionDep, principal: Anyone) -> dict[str, Any]:
    """A real-name objection during publicity: the case leaves its wave until the department rules."""
    case = cases_repo.get(session=session, case_id=case_id)
    if case is None or case.campaign_id is None:
        raise NotFound(f"免申即享办件 {case_id} 不存在", field="case_id")
    if case.status != "publicity":
        raise Conflict(f"办件 {case_id} 不在公示期内，不能提出异议", field="case_id")
    repo.file_objection(
        session=session, case=case, objector_name=body.objector_name, reason=body.reason, actor=principal.actor
    )
    return {"case_id": case_id, "status": case.status}


@router.post("/api/v1/cases/{case_id}/objection-ruling", status_code=202)
async def rule_objection(
    case_id: int, body: ObjectionRuling, principal: Department, client: TemporalDep
) -> dict[str, Any]:
    """The department rules on an objection: upheld (not paid) or dismissed (paid with its wave)."""
    ruling = body.model_copy(update={"actor": principal.actor})
    try:
        result = await client.get_workflow_handle(objection_workflow_id(case_id)).execute_update(
            CampaignObjectionWorkflow.rule, ruling
        )
    except WorkflowUpdateFailedError as exc:
        raise Conflict(str(getattr(exc.cause, "message", exc.cause)), field="case_id") from exc
    except RPCError as exc:
        raise NotFound(f"办件 {case_id} 没有待处理的异议（公示期结束后开始处理）", field="case_id") from exc
    return {"case_id": case_id, "ruling": result}


@router.get("/api/v1/cases/{case_id}/evidence")
def case_evidence(case_id: int, session: SessionDep, principal: Anyone) -> dict[str, Any]:
    """The frozen evidence of a campaign case and its condition-by-condition explanation on those values."""
    case = _campaign_case(session, principal, case_id)
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    assert item is not None
    config = repo.item_config(session=session, item=item, version=case.fund_item_version)
    evidence = case.evidence or {}
    evaluation = evaluate(config.conditions, evidence.get("values") or {})
    return {"case_id": case.id, "evidence": evidence, "evaluation": evaluation.model_dump(mode="json")}


# ---------------------------------------------------------------------------------------------- pages


def _templates():
    from api.pages import templates

    return templates


def _page_principal(request: Request) -> Principal | None:
    from api.routers.web import _principal

    return _principal(request)


@router.get("/web/campaigns", response_class=HTMLResponse, include_in_schema=False)
def campaigns_page(request: Request, session: SessionDep) -> Response:
    """财政局 / 主管部门: every campaign with its progress."""
    principal = _page_principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    if principal.role == "enterprise":
        return _templates().TemplateResponse(request, "error.html", {"message": "无权查看"}, status_code=403)
    rows = list_campaigns(session=session, principal=principal)
    return _templates().TemplateResponse(request, "campaign_list.html", {"principal": principal, "rows": rows})


@router.get("/web/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
def campaign_page(campaign_id: int, request: Request, session: SessionDep) -> Response:
    """财政局 / 主管部门: the campaign's progress, its waves and the decision form."""
    principal = _page_principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    if principal.role == "enterprise":
        return _templates().TemplateResponse(request, "error.html", {"message": "无权查看"}, status_code=403)
    try:
        progress = db_progress(session, _campaign(session, campaign_id).id)
    except DomainError as exc:
        return _templates().TemplateResponse(request, "error.html", {"message": exc.message}, status_code=404)
    return _templates().TemplateResponse(
        request,
        "campaign.html",
        {
            "principal": principal,
            "p": progress,
            "cases": repo.cases_page(session=session, campaign_id=campaign_id),
            "percent": round(100 * progress.paid / progress.matched) if progress.matched else 0,
        },
    )


@router.post("/web/campaigns/{campaign_id}/decision", include_in_schema=False)
async def campaign_decision_form(
    campaign_id: int,
    request: Request,
    tranche: int = Form(...),
    approve: str = Form(...),
    note: str = Form(""),
) -> Response:
    principal = _page_principal(request)
    if principal is None or principal.role not in ("finance", "admin"):
        raise Forbidden("只有财政部门可以审核")
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    body = FinanceDecisionIn(tranche=tranche, approve=approve == "yes", note=note)
    await _decide(client, request.app.state.settings, campaign_id, body, principal.actor)
    return RedirectResponse(f"/web/campaigns/{campaign_id}", status_code=303)


@router.get("/web/cases/{case_id}/consent", response_class=HTMLResponse, include_in_schema=False)
def consent_page(case_id: int, request: Request, session: SessionDep) -> Response:
    """企业: confirm the payout and the account."""
    principal = _page_principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    try:
        case = _campaign_case(session, principal, case_id)
    except DomainError as exc:
        return _templates().TemplateResponse(request, "error.html", {"message": exc.message}, status_code=404)
    campaign = _campaign(session, case.campaign_id or 0)
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    return _templates().TemplateResponse(
        request,
        "campaign_consent.html",
        {
            "principal": principal,
            "case": case,
            "campaign": campaign,
            "item": item,
            "enterprise": enterprise,
            "message": request.query_params.get("message"),
        },
    )


@router.post("/web/cases/{case_id}/consent", include_in_schema=False)
def consent_form(
    case_id: int,
    request: Request,
    session: SessionDep,
    accept: str = Form("yes"),
    acct_no: str = Form(""),
    acct_name: str = Form(""),
    bank_name: str = Form(""),
    bank_code: str = Form(""),
) -> Response:
    principal = _page_principal(request)
    if principal is None or principal.role != "enterprise":
        return RedirectResponse("/web/login", status_code=303)
    try:
        body = ConsentIn(
            accept=accept == "yes",
            acct_no=acct_no or None,
            acct_name=acct_name or None,
            bank_name=bank_name or None,
            bank_code=bank_code or None,
        )
    except ValueError:
        return RedirectResponse(f"/web/cases/{case_id}/consent?message=账户信息格式有误", status_code=303)
    try:
        consent(session=session, settings=request.app.state.settings, principal=principal, case_id=case_id, body=body)
    except DomainError as exc:
        return RedirectResponse(f"/web/cases/{case_id}/consent?message={exc.message}", status_code=303)
    return RedirectResponse(f"/web/cases/{case_id}/consent?message=已提交", status_code=303)
