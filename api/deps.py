"""Request dependencies: settings, the unit-of-work session, the caller and its scope, the Temporal client.

Every protected route depends on the caller's Scope (services/scope.py), resolved once per request from the verified
token in a short read of its own: a valid token for a department or enterprise that does not exist is refused (401).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.auth import AuthError, Oidc, Principal, decode
from api.errors import Forbidden, Unauthorized, Unavailable
from db.session import reading, transaction
from schemas.vocabulary import Role
from services import scope as scopes
from services import sessions
from services.scope import Scope
from services.uow import UnitOfWork
from settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """The request is the unit of work: it commits when the endpoint returns, or rolls back on error."""
    with transaction(request.app.state.settings.db_url) as session:
        yield session


def get_uow(request: Request) -> UnitOfWork:
    """Units of work for async routes, which open short transactions around their Temporal calls."""
    return UnitOfWork(request.app.state.settings.db_url)


COOKIE = "zhida_token"


def bearer_of(request: Request) -> str:
    """The bearer token. The JSON API reads only the Authorization header, never the pages' cookie: a request a
    foreign site makes the browser send carries the cookie, never the header."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def verify(settings: Settings, token: str) -> Principal:
    """Our token or (when configured) the identity service's; raises Unauthorized with a Chinese message."""
    oidc = (
        Oidc(settings.oidc_issuer, settings.oidc_audience, settings.oidc_role_claim, settings.oidc_jwks_url)
        if settings.oidc_issuer
        else None
    )
    try:
        return decode(settings.jwt_key(), token, ceiling=settings.jwt_max_ttl_seconds, oidc=oidc)
    except AuthError as exc:
        raise Unauthorized(exc.message, rule="token") from exc


def get_principal(request: Request) -> Principal:
    token = bearer_of(request)
    if not token:
        raise Unauthorized("缺少访问令牌（Authorization: Bearer …）", rule="token")
    return verify(request.app.state.settings, token)


def resolve_scope(db_url: str, principal: Principal, *, note_use: bool = True) -> Scope:
    """The caller's scope, read in its own short transaction (the request's writer is not held open by it); a
    signed-out token is refused here too. A token's first accepted use is recorded (once per jti) unless the caller
    records it itself (`note_use=False`: a sign-in, whose record is the first use)."""
    with reading(db_url) as session:
        sessions.check_active(session=session, principal=principal)
        scope = scopes.resolve(session=session, principal=principal)
    if note_use:
        note_first_use(db_url, principal)
    return scope


def note_first_use(db_url: str, principal: Principal) -> None:
    """The audit record of a token's first use, in a short transaction of its own — only when this process has not
    seen the token recorded (the common request finds it in memory and writes nothing)."""
    if sessions.first_use_recorded(principal):
        return
    with transaction(db_url) as session:
        sessions.record_first_use(session=session, principal=principal)
    sessions.remember_first_use(principal)


def get_scope(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Scope:
    return resolve_scope(request.app.state.settings.db_url, principal)


def allow(*roles: str):
    """A dependency that admits only the given roles (admin always) and yields the caller's Scope."""

    # async: a check this cheap must not cost a thread-pool round trip per request (FastAPI runs sync dependencies
    # on its threads).
    async def _check(scope: Annotated[Scope, Depends(get_scope)]) -> Scope:
        if scope.role != Role.ADMIN and scope.role not in roles:
            raise Forbidden(f"{Role.label_of(scope.role)}无权执行此操作", rule="role")
        return scope

    return _check


def require(*roles: str):
    """Like `allow`, for routes that still take the Principal: the scope is resolved (and refused) all the same."""

    admitted = allow(*roles)

    async def _check(scope: Scope = Depends(admitted)) -> Principal:
        return scope.principal

    return _check


def registrant(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Scope:
    """An enterprise registering itself is not in the archive yet: its token is checked, not resolved; anyone else
    is resolved (and refused when unknown) as on every other route."""
    if principal.role == Role.ENTERPRISE:
        note_first_use(request.app.state.settings.db_url, principal)
        return Scope(principal=principal)
    scope = resolve_scope(request.app.state.settings.db_url, principal)
    if scope.role != Role.ADMIN:
        raise Forbidden(f"{Role.label_of(scope.role)}无权登记企业", rule="role")
    return scope


def get_temporal(request: Request) -> Client:
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    return client


def page_principal(request: Request) -> Principal | None:
    """The principal of the pages' sign-in cookie, or None when there is none or it is not valid."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return verify(request.app.state.settings, token)
    except Unauthorized:
        return None


def page_scope(request: Request) -> Scope | None:
    """The signed-in caller of a web page (the cookie), or None when nobody is signed in or the token is not valid.

    Raises Unauthorized for a valid token whose department or enterprise does not exist, or that was signed out."""
    principal = page_principal(request)
    return None if principal is None else resolve_scope(request.app.state.settings.db_url, principal)


# scope="function": commit before the response is sent, so a client that reads right after a write sees it
# (the default, request scope, runs the commit after the response has left).
async def _settings_dep(request: Request) -> Settings:
    return get_settings(request)


async def _temporal_dep(request: Request) -> Client:
    return get_temporal(request)


async def _uow_dep(request: Request) -> UnitOfWork:
    return get_uow(request)


# The cheap dependencies as coroutines: FastAPI runs a sync dependency on its thread pool, a round trip through
# the event loop each (an application took six of them before its one database write).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings_dep)]
TemporalDep = Annotated[Client, Depends(_temporal_dep)]
UowDep = Annotated[UnitOfWork, Depends(_uow_dep)]
ScopeDep = Annotated[Scope, Depends(get_scope)]
