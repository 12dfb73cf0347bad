"""The audit chain check for administrators (services/audit.py); `zhida audit verify` runs the same check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, allow
from schemas.ops import AuditVerifyOut
from schemas.vocabulary import Role
from services import audit
from services.scope import Scope

router = APIRouter(prefix="/api/v1/audit", tags=["audit 审计"])


@router.get("/verify", summary="校验全部审计链：办件事件与审计记录（带密钥的哈希链与链头锚点）", response_model=AuditVerifyOut)
def verify(session: SessionDep, scope: Annotated[Scope, Depends(allow(Role.ADMIN))]) -> AuditVerifyOut:
    report = audit.verify(session=session, scope=scope)
    return AuditVerifyOut.model_validate(
        {"ok": report.ok, "cases": report.cases, "records": report.records, "broken": report.broken}
    )
