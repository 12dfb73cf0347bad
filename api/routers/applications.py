"""Enterprises apply (申报); the case's workflow starts at once. Any caller reads the cases in its scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.deps import SessionDep, SettingsDep, TemporalDep, UowDep, allow
from schemas.cases import ApplicationIn, CaseOut
from schemas.text import Id
from schemas.vocabulary import Role
from services import cases
from services.scope import Scope

router = APIRouter(prefix="/api/v1", tags=["applications 申报"])


@router.post(
    "/applications",
    response_model=CaseOut,
    status_code=201,
    responses={200: {"model": CaseOut, "description": "已有办件：重复申报返回原办件，不会二次兑付"}},
)
async def apply(
    body: ApplicationIn,
    response: Response,
    settings: SettingsDep,
    client: TemporalDep,
    uow: UowDep,
    scope: Annotated[Scope, Depends(allow(Role.ENTERPRISE))],
) -> CaseOut:
    """Apply for an instant or review fund item; a duplicate returns the existing case (200)."""
    out, created = await cases.apply(uow=uow, client=client, settings=settings, scope=scope, body=body)
    if not created:
        response.status_code = 200
    return out


@router.get("/cases/{case_id}", response_model=CaseOut, tags=["cases 办件"])
def get_case(
    case_id: Id,
    session: SessionDep,
    scope: Annotated[Scope, Depends(allow(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))],
) -> CaseOut:
    """Status, amount, timeline, notices and payments of one case."""
    return cases.view(session=session, scope=scope, case_id=case_id)
