"""Enterprises: registration (with the registration push), an enterprise's cases and notices, and the archive edit
(administrators only; recorded with actor and source, and shown in the timeline of the cases it touches)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import SessionDep, SettingsDep, allow, registrant
from schemas.campaigns import ArchiveUpdated, EnterpriseUpdate
from schemas.cases import CaseOut, NoticeOut
from schemas.notices import EnterpriseRegister, EnterpriseRegistered
from schemas.vocabulary import Role
from services import enterprises
from services.scope import Scope

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises 企业"])
Viewer = Annotated[Scope, Depends(allow(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]
Registrar = Annotated[Scope, Depends(registrant)]
Admin = Annotated[Scope, Depends(allow())]


@router.post("", response_model=EnterpriseRegistered, status_code=201, summary="企业注册登记（推送匹配的政策）")
def register(body: EnterpriseRegister, session: SessionDep, scope: Registrar, settings: SettingsDep):
    """A new enterprise (by itself, or by the platform from registration data); Yichang rules art. 26: the listed
    fund items it matches are pushed to it by SMS at once (unless it refuses pushes)."""
    return enterprises.register(session=session, scope=scope, body=body, fernet_key=settings.fernet_key())


@router.get("/{uscc}/notices", response_model=list[NoticeOut])
def list_notices(uscc: str, session: SessionDep, scope: Viewer) -> list[NoticeOut]:
    """Notices of one enterprise that the caller may see, newest first (phone numbers masked)."""
    return enterprises.notices_of(session=session, scope=scope, uscc=uscc)


@router.get("/{uscc}/cases", response_model=list[CaseOut])
def list_cases(uscc: str, session: SessionDep, scope: Viewer) -> list[CaseOut]:
    """Cases of one enterprise that the caller may see, newest first."""
    return enterprises.cases_of(session=session, scope=scope, uscc=uscc)


@router.patch("/{uscc}/archive", response_model=ArchiveUpdated)
def update_archive(
    uscc: str,
    body: EnterpriseUpdate,
    session: SessionDep,
    scope: Admin,
    source: Annotated[str, Query(description="the data source the edit is made for: it must own every field")] = "manual",
) -> dict[str, Any]:
    """Update archive data (new qualification, tax data) for the source that owns the fields; open no-application
    items are re-checked for it."""
    return enterprises.update_archive(session=session, scope=scope, uscc=uscc, body=body, source=source)
