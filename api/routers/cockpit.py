"""The finance cockpit (财政看板): the page, the drill-down list of cases, exports of every table, and closing a
reconciliation alert from the page. The use cases are in services/cockpit.py and services/cockpit_export.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from api.deps import SessionDep, SettingsDep, UowDep, allow
from api.openapi import file_answer
from api.pages import templates
from api.routers.web import error_page, signed_in
from schemas.cockpit import CockpitFilter
from schemas.regions import region_name
from schemas.reviews import DecisionBody
from schemas.vocabulary import DecisionKind, Role, StageKind
from services import cockpit as service
from services import cockpit_export, cockpit_performance, payouts, reviews
from services.errors import DomainError, Invalid, Unavailable
from services.scope import Scope

router = APIRouter(tags=["cockpit 财政看板"])
FinanceScope = Annotated[Scope, Depends(allow(Role.FINANCE))]


def _int(value: str | None, field: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise Invalid(f"{field}应为正整数：“{value}”", field=field, rule="integer")
    return int(value)


def cockpit_filter(
    fund_item_id: Annotated[str | None, Query(description="资金事项编号")] = None,
    department_id: Annotated[str | None, Query(description="主管部门编号")] = None,
    region: Annotated[str | None, Query(description="企业所在地区（6 位行政区划代码）")] = None,
    source: Annotated[str | None, Query(description="资金来源")] = None,
    status: Annotated[str | None, Query(description="办件状态")] = None,
    budget_line_id: Annotated[str | None, Query(description="预算额度编号")] = None,
    paid_month: Annotated[str | None, Query(description="支付月份 YYYY-MM（北京时间）")] = None,
    overdue_department: Annotated[str | None, Query(description="有逾期环节的部门代码")] = None,
) -> CockpitFilter | DomainError:
    """The cockpit's filters from the query string; a bad value is handed on so a page can show it in Chinese."""
    try:
        return service.make_filter(
            fund_item_id=_int(fund_item_id, "fund_item_id"),
            department_id=_int(department_id, "department_id"),
            region=region,
            source=source,
            status=status,
            budget_line_id=_int(budget_line_id, "budget_line_id"),
            paid_month=paid_month,
            overdue_department=overdue_department,
        )
    except DomainError as exc:
        return exc


FilterDep = Annotated[CockpitFilter | DomainError, Depends(cockpit_filter)]


@router.get("/api/v1/cockpit/exports/{table}", response_class=Response,
            responses={200: file_answer(cockpit_export.XLSX, "text/csv")})  # fmt: skip
def export_table(
    table: str,
    session: SessionDep,
    settings: SettingsDep,
    scope: FinanceScope,
    filters: FilterDep,
    format: Annotated[str, Query(description="xlsx 或 csv")] = "xlsx",
) -> Response:
    """One cockpit table (or the drill-down list of cases, `cases`) as Excel or CSV, with the page's filters."""
    if isinstance(filters, DomainError):
        raise filters
    return _export(session, settings, scope, table, format, filters)


def _export(session, settings, scope: Scope, table: str, fmt: str, filters: CockpitFilter) -> Response:
    if table == "cases":  # the one table of up to 200,000 rows: streamed as it is read
        name, media, chunks = cockpit_export.stream_cases(
            db_url=settings.db_url, scope=scope, fmt=fmt, filters=filters, session=session
        )
        return StreamingResponse(chunks, media_type=media, headers={"Content-Disposition": _disposition(name)})
    name, media, data = cockpit_export.export(
        session=session, scope=scope, name=table, fmt=fmt, filters=filters, treasury_division=settings.adm_div_code
    )
    return Response(data, media_type=media, headers={"Content-Disposition": _disposition(name)})


def _disposition(name: str) -> str:
    return f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"


# Pages ---------------------------------------------------------------------------------------------------


def _page_scope(request: Request) -> Scope | Response:
    scope = signed_in(request)
    if isinstance(scope, Scope) and scope.role not in (Role.FINANCE, Role.ADMIN):
        return templates.TemplateResponse(
            request, "error.html", {"message": "财政看板仅限财政部门查看"}, status_code=403
        )
    return scope


def _context(scope: Scope, filters: CockpitFilter, **more: object) -> dict:
    return {"principal": scope.principal, "filters": filters, "region_name": region_name, **more}


@router.get("/web/cockpit", response_class=HTMLResponse, include_in_schema=False)
def cockpit_page(request: Request, session: SessionDep, settings: SettingsDep, filters: FilterDep) -> Response:
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    if isinstance(filters, DomainError):
        return error_page(request, filters)
    try:
        view = service.cockpit(session=session, scope=scope, filters=filters, treasury_division=settings.adm_div_code)
    except DomainError as exc:
        return error_page(request, exc)
    shown = {"closed": request.query_params.get("closed"), "decided": request.query_params.get("decided")}
    return templates.TemplateResponse(
        request, "cockpit_index.html", _context(scope, filters, view=view, groups=service.GROUPS, **shown)
    )


@router.get("/web/cockpit/exports/{table}", include_in_schema=False)
def export_table_page(
    table: str, request: Request, session: SessionDep, settings: SettingsDep, filters: FilterDep, format: str = "xlsx"
) -> Response:
    """The export link on the pages: the signed-in cookie, where the JSON API takes only a bearer token."""
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    if isinstance(filters, DomainError):
        return error_page(request, filters)
    try:
        return _export(session, settings, scope, table, format, filters)
    except DomainError as exc:
        return error_page(request, exc)


@router.get("/web/cockpit/performance", response_class=HTMLResponse, include_in_schema=False)
def performance_page(request: Request, session: SessionDep, filters: FilterDep) -> Response:
    """Policy performance (政策执行绩效, art. 39) per fund item and department, narrowed by department and item."""
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    if isinstance(filters, DomainError):
        return error_page(request, filters)
    narrowed = CockpitFilter(fund_item_id=filters.fund_item_id, department_id=filters.department_id)
    try:
        view = cockpit_performance.performance(session=session, scope=scope, filters=narrowed)
        options = service.options(session=session, scope=scope)
    except DomainError as exc:
        return error_page(request, exc)
    return templates.TemplateResponse(
        request,
        "cockpit_performance.html",
        _context(scope, narrowed, view=view, options=options, reasons=cockpit_performance.reason_totals(view)),
    )


@router.get("/web/cockpit/cases", response_class=HTMLResponse, include_in_schema=False)
def cockpit_cases_page(
    request: Request, session: SessionDep, filters: FilterDep, page: str = "1", size: str = "50"
) -> Response:
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    if isinstance(filters, DomainError):
        return error_page(request, filters)
    try:
        listing = service.cases(
            session=session,
            scope=scope,
            filters=filters,
            page=_int(page, "page") or 0,
            size=_int(size, "size") or 0,
        )
        options = service.options(session=session, scope=scope)
    except DomainError as exc:
        return error_page(request, exc)
    return templates.TemplateResponse(
        request, "cockpit_cases.html", _context(scope, filters, listing=listing, options=options)
    )


@router.post("/web/cockpit/alerts/{alert_id}/close", response_class=HTMLResponse, include_in_schema=False)
def close_alert_page(
    alert_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    note: str = Form(""),
    back: str = Form("cockpit"),
) -> Response:
    """Close a reconciliation alert with the note typed on the page; back to the cockpit, which says so."""
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        service.close_alert(
            session=session, scope=scope, treasury_division=settings.adm_div_code, alert_id=alert_id, note=note
        )
    except DomainError as exc:
        return error_page(request, exc)
    target = "/web/reconciliation" if back == "reconciliation" else "/web/cockpit"  # never a URL from the form
    return RedirectResponse(f"{target}?closed={alert_id}#alerts", status_code=303)


def _temporal(request: Request):
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    return client


@router.post("/web/cockpit/cases/{case_id}/finance-decision", response_class=HTMLResponse, include_in_schema=False)
async def finance_decision_page(
    case_id: int,
    request: Request,
    uow: UowDep,
    stage_key: str = Form(StageKind.FINANCE.value),
    decision: str = Form(...),
    comment: str = Form(""),
) -> Response:
    """The finance stage of a review case decided on the page (同意 / 不同意), recorded in the case's timeline with
    the officer; back to the cockpit, which says so."""
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        if decision not in (DecisionKind.APPROVE, DecisionKind.REJECT):
            raise Invalid("财政审核意见应为同意或不同意", field="decision", rule="finance_decision")
        body = DecisionBody(stage_key=stage_key, decision=decision, comment=comment.strip()[:2000])
        if scope.role == Role.ADMIN:
            raise Invalid("财政审核须由财政部门办理", field="department", rule="finance_only")
        await reviews.decide(uow=uow, client=_temporal(request), scope=scope, case_id=case_id, body=body)
    except DomainError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/web/cockpit?decided={case_id}#finance-stages", status_code=303)


@router.post("/web/cockpit/cases/{case_id}/budget-decision", response_class=HTMLResponse, include_in_schema=False)
async def budget_decision_page(
    case_id: int, request: Request, uow: UowDep, approve: str = Form(...), comment: str = Form("")
) -> Response:
    """A cross-year return: arrange new budget (the case pays again) or not (it fails finally), on the page."""
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        await reviews.budget_decision(uow=uow, client=_temporal(request), scope=scope, case_id=case_id,
                                      approve=approve == "yes", comment=comment.strip()[:2000])  # fmt: skip
    except DomainError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/web/cockpit?decided={case_id}#budget-decisions", status_code=303)


# Payout aggregation (奖补汇聚) and the duplicate-benefit check --------------------------------------------------


def _payouts_page(request: Request, session, scope: Scope, **more: object) -> Response:
    (count, fen), rows = payouts.external(session=session, scope=scope, limit=200)
    context = {
        "principal": scope.principal,
        "external_count": count,
        "external_fen": fen,
        "external": rows,
        "duplicates": payouts.duplicates(session=session, scope=scope),
        "headers": payouts.HEADERS,
        "result": None,
        "refused": None,
        **more,
    }
    status = 422 if more.get("refused") else 200
    return templates.TemplateResponse(request, "cockpit_payouts.html", context, status_code=status)


@router.get("/web/cockpit/payouts", response_class=HTMLResponse, include_in_schema=False)
def payouts_page(request: Request, session: SessionDep) -> Response:
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        return _payouts_page(request, session, scope)
    except DomainError as exc:
        return error_page(request, exc)


@router.post("/web/cockpit/payouts", response_class=HTMLResponse, include_in_schema=False)
async def payouts_upload(request: Request, session: SessionDep, file: UploadFile | None = File(None)) -> Response:
    """Import one file of external payouts; a refused file shows every bad row and stores nothing."""
    scope = _page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    if file is None:
        return error_page(request, Invalid("请选择要导入的文件", field="file", rule="required"))
    raw = await file.read(payouts.MAX_BYTES + 1)
    try:
        result = payouts.import_file(
            session=session, scope=scope, raw=raw, filename=file.filename or "", now=datetime.now(UTC)
        )
    except payouts.ImportRefused as exc:  # refused before anything was written
        return _payouts_page(request, session, scope, refused=exc)
    except DomainError as exc:
        return error_page(request, exc)
    return _payouts_page(request, session, scope, result=result)
