"""SMS delivery receipts (each provider's push format) and notice statistics per fund item."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from activities.notices import apply_receipts
from api.auth import Principal
from api.deps import SessionDep, require
from api.errors import Forbidden, NotFound, Unauthorized
from db.models import Department, FundItem
from db.repositories import sms as repo
from db.session import transaction
from gateways.sms.aliyun import AliyunProvider
from gateways.sms.base import ReceiptFormatError
from gateways.sms.http import HttpProvider
from gateways.sms.tencent import TencentProvider

router = APIRouter(prefix="/api/v1/sms", tags=["sms 短信通知"])

_PARSERS = {
    "aliyun": AliyunProvider.parse_receipts,
    "tencent": TencentProvider.parse_receipts,
    "http": HttpProvider.parse_receipts,
}
_OK = {
    "aliyun": {"code": 0, "msg": "成功"},
    "tencent": {"result": 0, "errmsg": "OK"},
    "http": {"ok": True},
}
_BAD = {
    "aliyun": lambda m: {"code": 1, "msg": m},
    "tencent": lambda m: {"result": 1, "errmsg": m},
    "http": lambda m: {"ok": False, "error": m},
}


async def _receipts(request: Request, provider: str) -> JSONResponse:
    settings = request.app.state.settings
    token = settings.sms_receipt_token.get_secret_value() if settings.sms_receipt_token else ""
    if token and not hmac.compare_digest(request.query_params.get("token", ""), token):
        raise Unauthorized("短信回执令牌不正确")
    try:
        receipts = _PARSERS[provider](json.loads(await request.body()))
    except (ValueError, ReceiptFormatError) as exc:
        # A malformed push is answered in the provider's format so it is visible in their console.
        return JSONResponse(_BAD[provider](f"回执格式错误：{exc}"[:200]), status_code=400)
    report = await run_in_threadpool(_apply, settings.db_url, provider, receipts)
    return JSONResponse(
        _OK[provider] | ({"applied": report.applied, "duplicate": report.duplicate} if provider == "http" else {})
    )


def _apply(db_url: str, provider: str, receipts: list):
    with transaction(db_url) as session:
        return apply_receipts(session, provider, receipts)


@router.post("/receipts/aliyun", summary="阿里云短信状态报告（SmsReport）推送")
async def aliyun_receipts(request: Request) -> JSONResponse:
    return await _receipts(request, "aliyun")


@router.post("/receipts/tencent", summary="腾讯云短信下发状态回调")
async def tencent_receipts(request: Request) -> JSONResponse:
    return await _receipts(request, "tencent")


@router.post("/receipts/http", summary="通用短信网关回执")
async def http_receipts(request: Request) -> JSONResponse:
    return await _receipts(request, "http")


Staff = Annotated[Principal, Depends(require("department", "finance"))]


def _department_scope(session, principal: Principal) -> int | None:
    """A policy department sees its own fund items; finance and admin see all."""
    if principal.role != "department":
        return None
    department_id = session.scalar(select(Department.id).where(Department.code == principal.subject))
    if department_id is None:
        raise Forbidden(f"未知的部门 {principal.subject}")
    return department_id


@router.get("/stats", summary="各资金事项短信统计（已发送、已送达、失败；办件通知与政策推送分列）")
def stats(session: SessionDep, principal: Staff, category: Literal["case", "push"] | None = None) -> dict:
    scope = _department_scope(session, principal)
    return {"items": repo.stats(session=session, department_id=scope, category=category)}


@router.get("/stats/{fund_item_id}/failures", summary="资金事项的短信失败清单（待跟进）")
def failures(fund_item_id: int, session: SessionDep, principal: Staff) -> dict:
    scope = _department_scope(session, principal)
    item = session.get(FundItem, fund_item_id)
    if item is None or (scope is not None and item.department_id != scope):
        raise NotFound(f"资金事项 {fund_item_id} 不存在", field="fund_item_id")
    rows = repo.failures(session=session, fund_item_id=fund_item_id)
    return {
        "fund_item_id": fund_item_id,
        "failures": [
            {
                "notice_id": n.id,
                "case_id": n.case_id,
                "enterprise_id": n.enterprise_id,
                "stage": n.template_key,
                "category": n.category,
                "phone": n.phone_masked,
                "provider": n.provider,
                "attempts": n.attempts,
                "reason": n.fail_reason,
                "created_at": n.created_at.isoformat() if n.created_at else None,
            }
            for n in rows
        ],
    }
