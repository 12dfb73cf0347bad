"""Chinese web pages (Jinja2, server-rendered): sign-in, the staff home, cases with their timelines, enterprises.

Pages sign in with the token in a cookie; the caller's scope is resolved like the API's (services/scope.py), so a page
shows only what the API would return, and a token for a department or enterprise that does not exist is refused.
"""

from __future__ import annotations

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import decode
from api.deps import SessionDep, page_scope, resolve_scope
from api.pages import templates
from schemas.vocabulary import Role
from services import cases, enterprises
from services.errors import DomainError, Unauthorized
from services.scope import Scope

# Pages not yet on api.pages import these from here; new code imports api.pages and schemas.localtime.
__all__ = ["router", "signed_in", "templates"]
router = APIRouter(prefix="/web", include_in_schema=False)


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


def token_error_zh(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "令牌无效：已过期，请重新生成"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "令牌无效：签名不符（不是本平台签发的令牌）"
    return "令牌无效：格式错误"


def _sign_in(request: Request, token: str) -> Response:
    settings = request.app.state.settings
    try:
        principal = decode(settings.jwt_key(), token.strip())
    except jwt.InvalidTokenError as exc:
        return templates.TemplateResponse(request, "login.html", {"error": token_error_zh(exc)}, status_code=401)
    try:
        resolve_scope(settings.db_url, principal)
    except Unauthorized as exc:
        return templates.TemplateResponse(request, "login.html", {"error": exc.message}, status_code=401)
    response = RedirectResponse("/web/", status_code=303)
    response.set_cookie("zhida_token", token.strip(), httponly=True, samesite="lax")
    return response


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, token: str = "") -> Response:
    """The sign-in form; `?token=` is the one-click link `zhida run` prints for development."""
    if token:
        return _sign_in(request, token)
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login_form(request: Request, token: str = Form("")) -> Response:
    """Sign in with a token typed into the form (POST keeps it out of URLs and logs)."""
    return _sign_in(request, token)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    if scope.role == Role.ENTERPRISE:
        return RedirectResponse("/web/me", status_code=303)  # the enterprise's own pages
    home = cases.home(session=session, scope=scope)
    context = {"principal": scope.principal, "items": home.items, "cases": home.cases, "counts": home.counts}
    return templates.TemplateResponse(request, "home.html", context)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: int, request: Request, session: SessionDep) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        page = cases.page(session=session, scope=scope, case_id=case_id)
    except DomainError as exc:
        return error_page(request, exc)
    context = {"principal": scope.principal, "case": page.case, "names": page.names}
    return templates.TemplateResponse(request, "case.html", context)


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
def enterprise_page(uscc: str, request: Request, session: SessionDep) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        page = enterprises.page(session=session, scope=scope, uscc=uscc)
    except DomainError as exc:
        return error_page(request, exc)
    context = {
        "principal": scope.principal,
        "enterprise": page.enterprise,
        "cases": page.cases,
        "notices": page.notices,
    }
    return templates.TemplateResponse(request, "enterprise.html", context)
