"""Signing out through the API: the bearer token goes on the denylist (services/sessions.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.auth import Principal
from api.deps import SessionDep, get_principal, get_scope
from services import sessions
from services.scope import Scope

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions 登录会话"])


@router.post("/logout", status_code=204, summary="退出登录：注销当前访问令牌")
def logout(
    session: SessionDep,
    principal: Annotated[Principal, Depends(get_principal)],
    _: Annotated[Scope, Depends(get_scope)],
) -> Response:
    sessions.sign_out(session=session, principal=principal)
    return Response(status_code=204)
