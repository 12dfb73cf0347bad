"""Enterprises: registration (with the registration push) and an enterprise's own view: its cases and notices."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from activities.notices import push_on_registered
from api import services
from api.auth import Principal
from api.deps import SessionDep, SettingsDep, require
from api.errors import Conflict, Forbidden, NotFound
from db import crypto
from db.models import Enterprise
from db.repositories import cases, enterprises, notices
from schemas.cases import CaseOut, NoticeOut
from schemas.notices import EnterpriseRegister, EnterpriseRegistered, PushCountsOut

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises 企业"])
Viewer = Annotated[Principal, Depends(require("enterprise", "department", "finance"))]


def _enterprise(session, principal: Principal, uscc: str) -> Enterprise:
    enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
    if enterprise is None or (principal.role == "enterprise" and principal.subject != uscc):
        raise NotFound(f"uscc：企业 {uscc} 不存在", field="uscc")
    return enterprise


Registrar = Annotated[Principal, Depends(require("enterprise", "admin"))]


@router.post("", response_model=EnterpriseRegistered, status_code=201, summary="企业注册登记（推送匹配的政策）")
def register(body: EnterpriseRegister, session: SessionDep, principal: Registrar, settings: SettingsDep):
    """A new enterprise (by itself, or by the platform from registration data); Yichang rules art. 26: the listed
    fund items it matches are pushed to it by SMS at once (unless it refuses pushes)."""
    if principal.role == "enterprise" and principal.subject != body.uscc:
        raise Forbidden("企业只能登记本企业（令牌的统一社会信用代码与 uscc 不符）")
    if enterprises.get_by_uscc(session=session, uscc=body.uscc) is not None:
        raise Conflict(f"uscc：企业 {body.uscc} 已登记", field="uscc")
    key = settings.fernet_key()
    phone = body.contact_phone
    enterprise = enterprises.add(
        session=session,
        enterprise=Enterprise(
            **body.model_dump(exclude={"contact_phone", "push_opt_out"}),
            contact_phone_enc=crypto.encrypt(key, phone) if phone else None,
            contact_phone_masked=crypto.mask_phone(phone) if phone else None,
            push_opt_out=body.push_opt_out,
            push_opted_out_at=datetime.now(UTC) if body.push_opt_out else None,
        ),
    )
    pushed = push_on_registered(session, enterprise, actor=principal.actor)  # issue 6: the registration push
    return EnterpriseRegistered(
        id=enterprise.id,
        uscc=enterprise.uscc,
        name=enterprise.name,
        contact_phone_masked=enterprise.contact_phone_masked,
        push_opt_out=enterprise.push_opt_out,
        push=PushCountsOut(**{k: getattr(pushed, k) for k in ("matched", "queued", "opted_out", "no_phone")}),
    )


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
