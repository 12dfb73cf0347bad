"""Reconciliation (对账) for the finance bureau over HTTP: runs, lines, alerts, Excel export, and the Chinese pages.
The use cases are in services/reconciliation.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api import pages
from api.deps import SessionDep, SettingsDep, TemporalDep, require
from api.errors import DomainError
from api.openapi import file_answer
from api.pages import templates
from api.routers.web import signed_in
from db.session import transaction
from schemas.principal import Principal
from schemas.reconciliation import AlertCloseIn, AlertOut, ReconRunDetail, ReconRunOut, ReconStarted, ReconStartIn
from schemas.text import Id
from schemas.vocabulary import AlertStatus, Role
from services import reconciliation as service
from services.scope import Scope

router = APIRouter(tags=["reconciliation 对账"])
FinanceDep = Annotated[Principal, Depends(require(Role.FINANCE))]


@router.get("/api/v1/reconciliation/runs", response_model=list[ReconRunOut])
def list_runs(session: SessionDep, settings: SettingsDep, principal: FinanceDep) -> list[ReconRunOut]:
    """Recent reconciliation runs, newest statement day first."""
    return service.list_runs(session=session, principal=principal, treasury_division=settings.adm_div_code)


@router.post("/api/v1/reconciliation/runs", response_model=ReconStarted, status_code=202)
async def start_run(
    body: ReconStartIn, settings: SettingsDep, client: TemporalDep, principal: FinanceDep
) -> ReconStarted:
    """Reconcile one day now (the daily schedule does yesterday on its own)."""

    def _check() -> None:
        with transaction(settings.db_url) as session:
            service.may_start(session=session, principal=principal, treasury_division=settings.adm_div_code)

    await run_in_threadpool(_check)
    workflow_id = await service.start_run(
        client=client, task_queue=settings.temporal_task_queue, statement_date=body.statement_date
    )
    return ReconStarted(workflow_id=workflow_id)


@router.get("/api/v1/reconciliation/runs/{run_id}", response_model=ReconRunDetail)
def get_run(
    run_id: Id, session: SessionDep, settings: SettingsDep, principal: FinanceDep, mismatches_only: bool = False
) -> ReconRunDetail:
    """One run with its lines."""
    return service.get_run(
        session=session,
        principal=principal,
        treasury_division=settings.adm_div_code,
        run_id=run_id,
        mismatches_only=mismatches_only,
    )


@router.get("/api/v1/reconciliation/runs/{run_id}/export.xlsx", response_class=Response,
            responses={200: file_answer(service.XLSX)})  # fmt: skip
def export_run(run_id: Id, session: SessionDep, settings: SettingsDep, principal: FinanceDep) -> Response:
    """The run as an Excel workbook: a summary sheet and every line, Chinese headers, amounts in yuan."""
    name, data = service.export_run(
        session=session, principal=principal, treasury_division=settings.adm_div_code, run_id=run_id
    )
    return Response(data, media_type=service.XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/v1/alerts", response_model=list[AlertOut])
def list_alerts(
    session: SessionDep,
    settings: SettingsDep,
    principal: FinanceDep,
    status: Literal["open", "closed", "all"] = "open",
) -> list[AlertOut]:
    """Alerts for the finance bureau (reconciliation mismatches), open ones by default."""
    return service.list_alerts(
        session=session,
        principal=principal,
        treasury_division=settings.adm_div_code,
        status=None if status == "all" else AlertStatus(status),
    )


@router.post("/api/v1/alerts/{alert_id}/close", response_model=AlertOut)
def close_alert(
    alert_id: Id, body: AlertCloseIn, session: SessionDep, settings: SettingsDep, principal: FinanceDep
) -> AlertOut:
    """Close an alert with a note saying how it was resolved; who closed it is recorded."""
    return service.close_alert(
        session=session, principal=principal, treasury_division=settings.adm_div_code, alert_id=alert_id, note=body.note
    )


# Pages ---------------------------------------------------------------------------------------------------


def _page_principal(request: Request) -> Principal | Response:
    """The signed-in caller, or the page to show instead (the login form; 401 for an unknown department)."""
    scope = signed_in(request)
    return scope if isinstance(scope, Response) else scope.principal


def _error(request: Request, exc: DomainError) -> Response:
    message = "对账页面仅限财政局查看" if exc.status_code == 403 else exc.message
    return templates.TemplateResponse(request, "error.html", {"message": message}, status_code=exc.status_code)


@router.get("/web/reconciliation", response_class=HTMLResponse, include_in_schema=False)
def reconciliation_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    division = settings.adm_div_code

    def build(scope: Scope) -> dict:
        return {
            "runs": service.list_runs(session=session, principal=scope.principal, treasury_division=division),
            "alerts": service.list_alerts(session=session, principal=scope.principal, treasury_division=division),
        }

    return pages.page(request, "reconciliation.html", build, on_error=_error)


@router.get("/web/reconciliation/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def reconciliation_run_page(run_id: Id, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    def build(scope: Scope) -> dict:
        run = service.get_run(
            session=session, principal=scope.principal, treasury_division=settings.adm_div_code, run_id=run_id
        )
        return {"run": run, "lines": run.lines}

    return pages.page(request, "reconciliation_run.html", build, on_error=_error)


@router.get("/web/reconciliation/{run_id}/export.xlsx", include_in_schema=False)
def export_run_page(run_id: Id, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The export link on the pages: the signed-in cookie, where the JSON API takes only a bearer token."""
    principal = _page_principal(request)
    if isinstance(principal, Response):
        return principal
    try:
        name, data = service.export_run(
            session=session, principal=principal, treasury_division=settings.adm_div_code, run_id=run_id
        )
    except DomainError as exc:
        return _error(request, exc)
    return Response(data, media_type=service.XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})
