"""An enterprise's own view: its cases and the SMS notices it received."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api import services
from api.auth import Principal
from api.deps import SessionDep, require
from api.errors import NotFound
from db.models import Enterprise
from db.repositories import cases, enterprises, notices
from schemas.cases import CaseOut, NoticeOut

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises 企业"])
Viewer = Annotated[Principal, Depends(require("enterprise", "department", "finance"))]


def _enterprise(session, principal: Principal, uscc: str) -> Enterprise:
    enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
    if enterprise is None or (principal.role == "enterprise" and principal.subject != uscc):
        raise NotFound(f"uscc：企业 {uscc} 不存在", field="uscc")
    return enterprise


@router.get("/{uscc}/notices", response_model=list[NoticeOut])
def list_notices(uscc: str, session: SessionDep, principal: Viewer) -> list[NoticeOut]:
    """Notices of one enterprise, newest first (phone numbers masked)."""
    enterprise = _enterprise(session, principal, uscc)
    return [
        NoticeOut.model_validate(n, from_attributes=True)
        for n in notices.for_enterprise(session=session, enterprise_id=enterprise.id)
    ]


@router.get("/{uscc}/cases", response_model=list[CaseOut])
def list_cases(uscc: str, session: SessionDep, principal: Viewer) -> list[CaseOut]:
    enterprise = _enterprise(session, principal, uscc)
    return [
        services.case_view(session=session, case=c, detail=False)
        for c in cases.list_for_enterprise(session=session, enterprise_id=enterprise.id)
    ]
