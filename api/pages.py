"""The Jinja2 environment of the Chinese pages, with one filter per vocabulary so labels never depend on the page,
and the block every page router repeats, once: sign-in, the service call, a refusal as an error page, the render
(`page`, `page_async`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from api.deps import page_scope
from api.security import csrf_field, request_csrf_token
from rules.money import format_yuan
from schemas.localtime import format_deadline, format_local, last_local_day
from schemas.vocabulary import (
    AlertKind,
    AlertStatus,
    CampaignKind,
    CaseStatus,
    ConsentStatus,
    FinanceStatus,
    FundItemMode,
    FundItemStatus,
    NoticeCategory,
    NoticeStatus,
    PaymentStatus,
    PushKind,
    ReconLineType,
    ReconOutcome,
    ReconTrigger,
    Role,
    event_label,
    render_actor,
)
from services.errors import DomainError
from services.scope import Scope

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
FILTERS = {
    "yuan": lambda fen: "—" if fen is None else format_yuan(fen),
    "bj": format_local,  # stored in UTC, read in Beijing time
    "deadline": format_deadline,  # a due moment as its last day (and time unless it is midnight)
    "last_day": last_local_day,  # the last local day a due moment leaves (a date)
    "case_status": CaseStatus.label_of,
    "payment_status": PaymentStatus.label_of,
    "notice_status": NoticeStatus.label_of,
    "notice_category": NoticeCategory.label_of,
    "push_kind": PushKind.label_of,
    "item_status": FundItemStatus.label_of,
    "mode": FundItemMode.label_of,
    "recon_outcome": ReconOutcome.label_of,
    "alert_status": AlertStatus.label_of,
    "event_kind": event_label,
    "campaign_kind": CampaignKind.label_of,
    "consent_status": ConsentStatus.label_of,
    "finance_status": FinanceStatus.label_of,
    "recon_line_type": ReconLineType.label_of,
    "recon_trigger": ReconTrigger.label_of,
    "alert_kind": AlertKind.label_of,
    "role": Role.label_of,
    # Basis points as a percent with two decimals (1234 → 12.34%); working days (None → —).
    "percent": lambda bp: "—" if bp is None else f"{bp // 100}.{bp % 100:02d}%",
    "days": lambda d: "—" if d is None else f"{d:g} 个工作日",
    # {{ e.actor|actor(names) }}: names maps department codes and USCCs to names, looked up by the page's service.
    "actor": lambda value, names=None: render_actor(value, names=names),
    "filesize": lambda n: f"{n / 1048576:.1f} MB" if n >= 104858 else f"{max(1, round(n / 1024))} KB",
}
templates.env.filters.update(FILTERS)
# Templates compare with the vocabulary, never with literals: {% if r.mode == FundItemMode.INSTANT %}.
templates.env.globals.update(FundItemMode=FundItemMode, CaseStatus=CaseStatus)
templates.env.tests["matched"] = lambda outcome: outcome == ReconOutcome.MATCHED  # {% if l.outcome is matched %}
# {{ csrf_field() }} inside every form that posts: the token api/security.py checks.
templates.env.globals["csrf_field"] = pass_context(csrf_field)
# {{ csrf_token() }}: the same token for htmx, sent as X-CSRF-Token from <body hx-headers> in base.html.
templates.env.globals["csrf_token"] = pass_context(lambda context: request_csrf_token(context["request"]))


Context = Mapping[str, Any]


def error_page(request: Request, exc: DomainError) -> Response:
    """A refusal as a page, with the status the API would answer."""
    return templates.TemplateResponse(request, "error.html", {"message": exc.message}, status_code=exc.status_code)


def signed_in(request: Request) -> Scope | Response:
    """The caller's scope, or the page to show instead: the login form when nobody is signed in, 401 when the token
    names a department or enterprise that does not exist."""
    try:
        scope = page_scope(request)
    except DomainError as exc:
        return error_page(request, exc)
    return RedirectResponse("/web/login", status_code=303) if scope is None else scope


def render(request: Request, template: str, scope: Scope, context: Context, status_code: int = 200) -> Response:
    """`template` with the signed-in `principal` and `context` (a `status_code` key in it sets the answer's status:
    a page shown again with the refusal of its form)."""
    values = {"principal": scope.principal, **context}
    status = int(values.pop("status_code", status_code))
    return templates.TemplateResponse(request, template, values, status_code=status)


def page(
    request: Request,
    template: str,
    build: Callable[[Scope], Context | Response],
    *,
    guard: Callable[[Request], Scope | Response] = signed_in,
    scope: Scope | None = None,
    on_error: Callable[[Request, DomainError], Response] = error_page,
) -> Response:
    """The page routers' one block: the caller from `guard` (or the page it shows instead: the login form, a
    refusal; `scope` when the route has it already) → `build(scope)`, the service call that gives the template's
    context (or a response of its own) → a `DomainError` shown as the error page with the API's status (or by
    `on_error`) → the page."""
    scope = scope if scope is not None else guard(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        context = build(scope)
    except DomainError as exc:
        return on_error(request, exc)
    return context if isinstance(context, Response) else render(request, template, scope, context)


async def page_async(
    request: Request,
    template: str,
    build: Callable[[Scope], Awaitable[Context | Response]],
    *,
    guard: Callable[[Request], Scope | Response] = signed_in,
    scope: Scope | None = None,
    on_error: Callable[[Request, DomainError], Response] = error_page,
) -> Response:
    """`page` for a page whose service call is awaited (a unit of work's `read`, a Temporal call)."""
    scope = scope if scope is not None else guard(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        context = await build(scope)
    except DomainError as exc:
        return on_error(request, exc)
    return context if isinstance(context, Response) else render(request, template, scope, context)
