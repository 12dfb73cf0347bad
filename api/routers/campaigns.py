"""免申即享 campaigns over HTTP: progress for finance and departments, consent (意愿确认) for enterprises, objections,
finance decisions on a wave, archive updates that re-evaluate, and the Chinese pages. The use cases are in
services/campaigns.py.

Listing a no-application item (or an archive change) registers a campaign row in the same transaction; the
starter loop of this router's lifespan starts its workflow once the API has a Temporal client, so a start is
never lost when Temporal is briefly away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import pages
from api.deps import SessionDep, SettingsDep, TemporalDep, require
from api.errors import DomainError, Unavailable
from api.pages import templates
from api.routers.web import signed_in
from db.session import transaction
from logs import get_logger
from schemas.campaigns import (
    CampaignProgress,
    CaseEvidenceOut,
    CollectAccepted,
    ConsentIn,
    ConsentOut,
    FinanceDecisionAccepted,
    ObjectionFiled,
    ObjectionIn,
    ObjectionRuled,
    ObjectionRuling,
)
from schemas.principal import Principal
from schemas.text import Id
from schemas.vocabulary import Role
from services import campaigns as service
from services.scope import Scope
from settings import Settings

log = get_logger("zhida.campaigns")
STARTER_EVERY_SECONDS = 1.0
T = TypeVar("T")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The starter loop: registered campaigns get their workflow as soon as Temporal is reachable."""

    async def _loop() -> None:
        while True:
            client = getattr(app.state, "temporal", None)
            if client is not None:
                settings = app.state.settings
                try:
                    await service.start_pending(
                        client=client,
                        settings=settings,
                        unit_of_work=functools.partial(transaction, settings.db_url),
                        **getattr(app.state, "campaign_options", {}),
                    )
                except Exception:  # the next round tries again
                    log.exception("campaign_start_failed")
            await asyncio.sleep(STARTER_EVERY_SECONDS)

    task = asyncio.create_task(_loop())
    yield
    task.cancel()


router = APIRouter(tags=["campaigns 免申即享"], lifespan=lifespan)
Staff = Annotated[Principal, Depends(require(Role.DEPARTMENT, Role.FINANCE))]
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]
Department = Annotated[Principal, Depends(require(Role.DEPARTMENT))]
Enterprise = Annotated[Principal, Depends(require(Role.ENTERPRISE))]
Anyone = Annotated[Principal, Depends(require(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]


async def in_session(settings: Settings, use_case: Callable[[Session], T]) -> T:
    """Run a database use case in its own unit of work off the event loop (for the routes that await Temporal)."""

    def _run() -> T:
        with transaction(settings.db_url) as session:
            return use_case(session)

    return await run_in_threadpool(_run)


# ---------------------------------------------------------------------------------------------- progress, finance


@router.get("/api/v1/campaigns", response_model=list[CampaignProgress])
def list_campaigns(
    session: SessionDep,
    principal: Staff,
    fund_item_code: Annotated[str | None, Query(description="资金事项编码")] = None,
) -> list[CampaignProgress]:
    """Campaigns the caller may see (newest first) with their progress counted in the database."""
    return service.list_campaigns(session=session, principal=principal, fund_item_code=fund_item_code)


@router.get("/api/v1/campaigns/{campaign_id}", response_model=CampaignProgress)
async def campaign_progress(
    campaign_id: Id,
    request: Request,
    settings: SettingsDep,
    principal: Staff,
    source: Annotated[str, Query(pattern="^(db|workflow)$", description="db：数据库计数；workflow：工作流查询")] = "db",
) -> CampaignProgress:
    """Progress: matched, reserved, instructed, paid, failed, amount paid, budget left."""
    counted, workflow_id = await in_session(
        settings, lambda s: service.progress(session=s, principal=principal, campaign_id=campaign_id)
    )
    if source == "db":
        return counted
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    return await service.live_progress(client=client, workflow_id=workflow_id, counted=counted)


class FinanceDecisionIn(BaseModel):
    """The finance bureau's decision on one wave (批次), after seeing its totals."""

    tranche: int = Field(ge=1, title="批次")
    approve: bool = Field(title="是否同意拨付")
    note: str = Field("", max_length=500, title="审核意见")


async def _decide(
    client: Client, settings: Settings, principal: Principal, campaign_id: Id, body: FinanceDecisionIn
) -> None:
    workflow_id = await in_session(
        settings, lambda s: service.finance_target(session=s, principal=principal, campaign_id=campaign_id)
    )
    await service.decide(
        client=client,
        workflow_id=workflow_id,
        principal=principal,
        tranche=body.tranche,
        approve=body.approve,
        note=body.note,
    )


@router.post(
    "/api/v1/campaigns/{campaign_id}/finance-decisions", status_code=202, response_model=FinanceDecisionAccepted
)
async def decide(
    campaign_id: Id, body: FinanceDecisionIn, principal: Finance, client: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    """One finance decision on a whole wave: approve (the wave is paid) or refuse (budget released)."""
    await _decide(client, settings, principal, campaign_id, body)
    return {"campaign_id": campaign_id, "tranche": body.tranche, "approve": body.approve}


@router.post("/api/v1/campaigns/{campaign_id}/collect", status_code=202, response_model=CollectAccepted)
async def collect_now(
    campaign_id: Id, principal: Department, client: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    """Collect the consent answers received so far now, without waiting for the next hourly wave."""
    workflow_id = await in_session(
        settings, lambda s: service.collect_target(session=s, principal=principal, campaign_id=campaign_id)
    )
    await service.collect(client=client, workflow_id=workflow_id, principal=principal, campaign_id=campaign_id)
    return {"campaign_id": campaign_id}


# ---------------------------------------------------------------------------------------------- consent, objections


@router.post("/api/v1/cases/{case_id}/consent", response_model=ConsentOut)
def post_consent(
    case_id: Id, body: ConsentIn, session: SessionDep, settings: SettingsDep, principal: Enterprise
) -> ConsentOut:
    """意愿确认: accept the payout (to the account on file, or to the account given) or decline it."""
    return service.consent(session=session, settings=settings, principal=principal, case_id=case_id, body=body)


@router.post("/api/v1/cases/{case_id}/objections", status_code=201, response_model=ObjectionFiled)
def post_objection(case_id: Id, body: ObjectionIn, session: SessionDep, principal: Anyone) -> dict[str, Any]:
    """A real-name objection during publicity: the case leaves its wave until the department rules."""
    return service.file_objection(session=session, principal=principal, case_id=case_id, body=body)


@router.post("/api/v1/cases/{case_id}/objection-ruling", status_code=202, response_model=ObjectionRuled)
async def rule_objection(
    case_id: Id, body: ObjectionRuling, principal: Department, client: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    """The department rules on an objection: upheld (not paid) or dismissed (paid with its wave)."""
    await in_session(settings, lambda s: service.ruling_target(session=s, principal=principal, case_id=case_id))
    result = await service.rule_objection(client=client, principal=principal, case_id=case_id, body=body)
    return {"case_id": case_id, "ruling": result}


@router.get("/api/v1/cases/{case_id}/evidence", response_model=CaseEvidenceOut)
def case_evidence(case_id: Id, session: SessionDep, principal: Anyone) -> dict[str, Any]:
    """The frozen evidence of a campaign case and its condition-by-condition explanation on those values."""
    return service.evidence(session=session, principal=principal, case_id=case_id)


# ---------------------------------------------------------------------------------------------- pages


def _page_principal(request: Request) -> Principal | Response:
    """The signed-in caller, or the page to show instead (the login form; 401 for an unknown department)."""
    scope = signed_in(request)
    return scope if isinstance(scope, Response) else scope.principal


def _error(request: Request, exc: DomainError) -> Response:
    return templates.TemplateResponse(request, "error.html", {"message": exc.message}, status_code=exc.status_code)


@router.get("/web/campaigns", response_class=HTMLResponse, include_in_schema=False)
def campaigns_page(request: Request, session: SessionDep) -> Response:
    """财政局 / 主管部门: every campaign they may see, with its progress."""
    def build(scope: Scope) -> dict:
        return {"rows": service.list_campaigns(session=session, principal=scope.principal)}

    return pages.page(request, "campaign_list.html", build)


@router.get("/web/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
def campaign_page(campaign_id: Id, request: Request, session: SessionDep) -> Response:
    """财政局 / 主管部门: the campaign's progress, its waves and the decision form."""
    def build(scope: Scope) -> dict:
        return service.page(session=session, principal=scope.principal, campaign_id=campaign_id)

    return pages.page(request, "campaign.html", build)


@router.post("/web/campaigns/{campaign_id}/decision", include_in_schema=False)
async def campaign_decision_form(
    campaign_id: Id,
    request: Request,
    tranche: int = Form(...),
    approve: str = Form(...),
    note: str = Form(""),
) -> Response:
    principal = _page_principal(request)
    if isinstance(principal, Response):
        return principal
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    body = FinanceDecisionIn(tranche=tranche, approve=approve == "yes", note=note)
    await _decide(client, request.app.state.settings, principal, campaign_id, body)
    return RedirectResponse(f"/web/campaigns/{campaign_id}", status_code=303)


@router.get("/web/cases/{case_id}/consent", response_class=HTMLResponse, include_in_schema=False)
def consent_page(case_id: Id, request: Request, session: SessionDep) -> Response:
    """企业: confirm the payout and the account."""

    def build(scope: Scope) -> dict:
        shown = service.consent_page(session=session, principal=scope.principal, case_id=case_id)
        return {"message": request.query_params.get("message"), **shown}

    return pages.page(request, "campaign_consent.html", build)


@router.post("/web/cases/{case_id}/consent", include_in_schema=False)
def consent_form(
    case_id: Id,
    request: Request,
    session: SessionDep,
    accept: str = Form("yes"),
    acct_no: str = Form(""),
    acct_name: str = Form(""),
    bank_name: str = Form(""),
    bank_code: str = Form(""),
) -> Response:
    principal = _page_principal(request)
    if isinstance(principal, Response):
        return principal
    if principal.role != Role.ENTERPRISE:
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
        service.consent(
            session=session, settings=request.app.state.settings, principal=principal, case_id=case_id, body=body
        )
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):  # not the caller's case: refused as a page, nothing to correct
            return _error(request, exc)
        return RedirectResponse(f"/web/cases/{case_id}/consent?message={exc.message}", status_code=303)
    return RedirectResponse(f"/web/cases/{case_id}/consent?message=已提交", status_code=303)
