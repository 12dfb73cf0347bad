"""Request dependencies: settings, the unit-of-work session, the caller, the Temporal client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import jwt
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.auth import Principal, decode
from api.errors import Forbidden, Unauthorized, Unavailable
from db.session import transaction
from settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """The request is the unit of work: it commits when the endpoint returns, or rolls back on error."""
    with transaction(request.app.state.settings.db_url) as session:
        yield session


def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get("zhida_token", "")
    if not token:
        raise Unauthorized("缺少访问令牌（Authorization: Bearer …）")
    try:
        return decode(request.app.state.settings.jwt_key(), token)
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"访问令牌无效：{exc}") from exc


def require(*roles: str):
    """A dependency that admits only the given roles (admin always)."""

    def _check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role != "admin" and principal.role not in roles:
            raise Forbidden(f"角色 {principal.role} 无权执行此操作")
        return principal

    return _check


def get_temporal(request: Request) -> Client:
    client = request.app.state.temporal
    if client is None:
        raise Unavailable("工作流服务暂不可用，请稍后重试")
    return client


# scope="function": commit before the response is sent, so a client that reads right after a write sees it
# (the default, request scope, runs the commit after the response has left).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
