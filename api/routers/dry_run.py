"""Dry run (政策预匹配): the HTTP face of services/matching.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, require
from schemas.principal import Principal
from schemas.vocabulary import Role
from services import matching
from services.matching import DryRunIn, DryRunOut

router = APIRouter(prefix="/api/v1", tags=["dry-runs 政策预匹配"])
Department = Annotated[Principal, Depends(require(Role.DEPARTMENT))]


@router.post(
    "/dry-runs",
    response_model=DryRunOut,
    responses={404: {"description": "资金事项不存在"}, 422: {"description": "请求有误，错误写明字段"}},
)
def create_dry_run(body: DryRunIn, session: SessionDep, principal: Department) -> DryRunOut:
    """Match the conditions against the whole enterprise archive and size the result against the budget."""
    return matching.run(session=session, principal=principal, body=body)
