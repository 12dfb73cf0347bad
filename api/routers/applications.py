"""Enterprises apply (申报); the case's workflow starts at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from api import services
from api.auth import Principal
from api.deps import SessionDep, SettingsDep, TemporalDep, require
from db.models import Case
from db.session import reading, transaction
from schemas.cases import ApplicationIn, CaseOut

router = APIRouter(prefix="/api/v1", tags=["applications 申报"])


@router.post(
    "/applications",
    response_model=CaseOut,
    status_code=201,
    responses={200: {"description": "已有办件：重复申报返回原办件，不会二次兑付"}},
)
async def apply(
    body: ApplicationIn,
    response: Response,
    settings: SettingsDep,
    client: TemporalDep,
    principal: Annotated[Principal, Depends(require("enterprise"))],
) -> CaseOut:
    """Apply for an instant fund item; a duplicate returns the existing case (200)."""
    # The case commits before the workflow starts, so the workflow always finds it.
    case, created = await run_in_threadpool(_create, settings.db_url, principal, body)
    await services.start_case_workflow(client=client, settings=settings, case=case)
    if not created:
        response.status_code = 200
    return await run_in_threadpool(_view, settings.db_url, case)


def _create(db_url: str, principal: Principal, body: ApplicationIn) -> tuple[Case, bool]:
    with transaction(db_url) as session:
        return services.create_application(session=session, principal=principal, body=body)


def _view(db_url: str, case: Case) -> CaseOut:
    with reading(db_url) as session:
        return services.case_view(session=session, case=case)


@router.get("/cases/{case_id}", response_model=CaseOut, tags=["cases 办件"])
def get_case(
    case_id: int,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("enterprise", "department", "finance"))],
) -> CaseOut:
    """Status, amount, timeline, notices and payments of one case."""
    case = services.visible_case(session=session, principal=principal, case_id=case_id)
    return services.case_view(session=session, case=case)
