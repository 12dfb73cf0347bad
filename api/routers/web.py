"""Chinese web pages (Jinja2, server-rendered): sign-in, the staff home, cases with their timelines, enterprises.

Pages sign in with the token in a cookie; the caller's scope is resolved like the API's (services/scope.py), so a page
shows only what the API would return, and a token for a department or enterprise that does not exist is refused.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import Principal, mint
from api.deps import COOKIE, SessionDep, page_principal, resolve_scope, verify
from api.pages import error_page, page, signed_in, templates
from db.session import reading, transaction
from schemas.text import Id
from schemas.vocabulary import Role
from services import cases, enterprises, sessions
from services.errors import Forbidden, Unauthorized
from services.scope import Scope

# Pages not yet on api.pages import these from here; new code imports api.pages and schemas.localtime.
__all__ = ["error_page", "router", "signed_in", "templates"]
router = APIRouter(prefix="/web", include_in_schema=False)


def _login_page(request: Request, error: str | None, status_code: int = 200) -> Response:
    settings = request.app.state.settings
    choices = None
    if settings.dev_sign_in:
        with reading(settings.db_url) as session:
            choices = sessions.sign_in_choices(session=session)
    context = {"error": error, "choices": choices}
    return templates.TemplateResponse(request, "login.html", context, status_code=status_code)


def _refused(request: Request, claimed: str, method: str, exc: Unauthorized, message: str) -> Response:
    """A refused sign-in is an audit record too (who the token claimed to be, the rule, the client address); beyond
    the limit per address and minute it is only counted, and the answer is 429."""
    settings = request.app.state.settings
    with transaction(settings.db_url) as session:
        refusal = sessions.sign_in_refused(session=session, actor=claimed, method=method, rule=exc.rule,
                                           client=request.client.host if request.client else None,
                                           limit=settings.sign_in_refused_per_minute)  # fmt: skip
    if not refusal.recorded:
        response = _login_page(request, refusal.message, 429)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    return _login_page(request, message, 401)


def _start_session(request: Request, token: str, principal: Principal, method: str = "token") -> Response:
    """Check the caller exists, then hand out our own session token (with a jti, so logout can revoke it); the
    sign-in is recorded in the audit chain."""
    settings = request.app.state.settings
    try:
        resolve_scope(settings.db_url, principal, note_use=False)  # the sign-in record below is its first use
    except Unauthorized as exc:
        return _refused(request, principal.actor, method, exc, exc.message)
    if principal.token_id == "" or principal.expires_at - int(time.time()) > settings.jwt_ttl_seconds:
        # An identity-service token: exchange it for ours, which logout can revoke.
        token = mint(settings.jwt_key(), role=principal.role, subject=principal.subject, name=principal.name,
                     ttl_seconds=settings.jwt_ttl_seconds, ceiling=settings.jwt_max_ttl_seconds)  # fmt: skip
        principal = verify(settings, token)
        method = "identity_service" if method == "token" else method
    with transaction(settings.db_url) as session:
        sessions.sign_in(session=session, principal=principal, method=method)
    sessions.remember_first_use(principal)
    response = RedirectResponse("/web/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=settings.cookie_secure,
                        max_age=settings.jwt_max_ttl_seconds)  # fmt: skip
    return response


@router.get("/login", response_class=HTMLResponse)
def login(request: Request) -> Response:
    """The sign-in form. A token is never taken from the URL (links would log people in as someone else, and
    URLs end up in logs and histories)."""
    return _login_page(request, None)


@router.post("/login", response_class=HTMLResponse)
def login_form(request: Request, token: str = Form("")) -> Response:
    """Sign in with a token (ours, or the unified identity service's) typed or posted into the form."""
    try:
        principal = verify(request.app.state.settings, token.strip())
    except Unauthorized as exc:
        return _refused(request, "anonymous", "token", exc, exc.message.replace("访问令牌无效", "令牌无效"))
    return _start_session(request, token.strip(), principal)


@router.post("/dev-login", response_class=HTMLResponse)
def dev_login(request: Request, identity: str = Form("", max_length=200)) -> Response:
    """The development sign-in (`zhida run`): pick a role and subject from the list; refused unless enabled."""
    settings = request.app.state.settings
    if not settings.dev_sign_in:
        return error_page(request, Forbidden("开发登录未启用（ZHIDA_DEV_SIGN_IN）", rule="dev_sign_in"))
    role, _, subject = identity.partition("|")
    with reading(settings.db_url) as session:
        choice = next(
            (c for c in sessions.sign_in_choices(session=session) if (c["role"], c["subject"]) == (role, subject)),
            None,
        )
    if choice is None:
        return _login_page(request, "请从列表中选择身份", 422)
    token = mint(settings.jwt_key(), role=role, subject=subject, name=choice["name"],
                 ttl_seconds=settings.jwt_ttl_seconds, ceiling=settings.jwt_max_ttl_seconds)  # fmt: skip
    return _start_session(request, token, verify(settings, token), "development")


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request) -> Response:
    """Sign out: the session token goes on the denylist and the cookie is cleared."""
    settings = request.app.state.settings
    principal = page_principal(request)
    if principal is not None:
        with transaction(settings.db_url) as session:
            sessions.sign_out(session=session, principal=principal)
    response = RedirectResponse("/web/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="lax", secure=settings.cookie_secure)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict | Response:
        if scope.role == Role.ENTERPRISE:
            return RedirectResponse("/web/me", status_code=303)  # the enterprise's own pages
        home = cases.home(session=session, scope=scope)
        return {"items": home.items, "cases": home.cases, "counts": home.counts}

    return page(request, "home.html", build)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: Id, request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict:
        found = cases.page(session=session, scope=scope, case_id=case_id)
        return {"case": found.case, "names": found.names}

    return page(request, "case.html", build)


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
def enterprise_page(uscc: str, request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict:
        found = enterprises.page(session=session, scope=scope, uscc=uscc)
        return {"enterprise": found.enterprise, "cases": found.cases, "notices": found.notices}

    return page(request, "enterprise.html", build)
