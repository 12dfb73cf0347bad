"""SMS delivery receipts and notice statistics per fund item in the caller's scope (services/notices.py).

Receipts come in each provider's push format and must carry the configured receipt secret: `?token=…` in the
callback URL given to the provider, or the `X-Zhida-Receipt-Token` header. With no secret configured every receipt
is refused (anyone could otherwise forge a delivery)."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import SessionDep, allow, get_uow
from api.errors import Unauthorized
from gateways.sms.aliyun import AliyunProvider
from gateways.sms.aliyun import parse_uplinks as aliyun_uplinks
from gateways.sms.base import ReceiptFormatError
from gateways.sms.http import HttpProvider
from gateways.sms.tencent import TencentProvider
from gateways.sms.tencent import parse_uplinks as tencent_uplinks
from schemas.notices import AliyunAck, HttpReceiptAck, SmsFailuresOut, SmsStatsOut, TencentAck
from schemas.text import Id
from schemas.vocabulary import Role
from services import notices
from services.scope import Scope

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



def _answers(model: type[BaseModel]) -> dict[str, Any]:
    """The provider's own answer format, declared for the acknowledgement (200) and a malformed push (400)."""
    return {"response_model": model, "responses": {400: {"model": model, "description": "推送格式错误"}}}


def _require_provider_secret(request: Request) -> None:
    """Receipts and replies carry the configured secret (`?token=` in the callback URL or a header); without one
    configured anyone could forge a delivery or an opt-out, so everything is refused."""
    settings = request.app.state.settings
    secret = settings.sms_receipt_token.get_secret_value() if settings.sms_receipt_token else ""
    if not secret:
        raise Unauthorized(
            "未配置短信回执令牌（ZHIDA_SMS_RECEIPT_TOKEN），回执一律拒收", field="token", rule="configured"
        )
    given = request.headers.get("x-zhida-receipt-token") or request.query_params.get("token", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthorized("短信回执令牌不正确", field="token", rule="receipt_token")


async def _receipts(request: Request, provider: str) -> JSONResponse:
    _require_provider_secret(request)
    try:
        receipts = _PARSERS[provider](json.loads(await request.body()))
    except (ValueError, ReceiptFormatError) as exc:
        # A malformed push is answered in the provider's format so it is visible in their console.
        return JSONResponse(_BAD[provider](f"回执格式错误：{exc}"[:200]), status_code=400)
    report = await get_uow(request).write(notices.apply_receipts, provider=provider, receipts=receipts)
    return JSONResponse(
        _OK[provider] | ({"applied": report.applied, "duplicate": report.duplicate} if provider == "http" else {})
    )


@router.post("/receipts/aliyun", summary="阿里云短信状态报告（SmsReport）推送", **_answers(AliyunAck))
async def aliyun_receipts(request: Request) -> JSONResponse:
    return await _receipts(request, "aliyun")


@router.post("/receipts/tencent", summary="腾讯云短信下发状态回调", **_answers(TencentAck))
async def tencent_receipts(request: Request) -> JSONResponse:
    return await _receipts(request, "tencent")


@router.post("/receipts/http", summary="通用短信网关回执", **_answers(HttpReceiptAck))
async def http_receipts(request: Request) -> JSONResponse:
    return await _receipts(request, "http")


# -- replies from phones (上行短信): the same receipt token; R / TD / 退订 opt the number out of pushes ---------------

_UPLINK_PARSERS = {"aliyun": aliyun_uplinks, "tencent": tencent_uplinks}


async def _uplinks(request: Request, provider: str) -> JSONResponse:
    _require_provider_secret(request)
    settings = request.app.state.settings
    try:
        replies = _UPLINK_PARSERS[provider](json.loads(await request.body()))
    except (ValueError, ReceiptFormatError) as exc:
        return JSONResponse(_BAD[provider](f"上行短信格式错误：{exc}"[:200]), status_code=400)
    await get_uow(request).write(
        notices.apply_replies, provider=provider, replies=replies, hash_key=settings.fernet_key()
    )
    return JSONResponse(_OK[provider])


@router.post("/uplink/aliyun", summary="阿里云上行短信（SmsUp）推送：回复 R / TD / 退订 即退订政策推送",
             **_answers(AliyunAck))  # fmt: skip
async def aliyun_uplink(request: Request) -> JSONResponse:
    return await _uplinks(request, "aliyun")


@router.post("/uplink/tencent", summary="腾讯云短信回复回调：回复 R / TD / 退订 即退订政策推送",
             **_answers(TencentAck))  # fmt: skip
async def tencent_uplink(request: Request) -> JSONResponse:
    return await _uplinks(request, "tencent")


Staff = Annotated[Scope, Depends(allow(Role.DEPARTMENT, Role.FINANCE))]


@router.get("/stats", response_model=SmsStatsOut, summary="各资金事项短信统计（已发送、已送达、失败；办件通知与政策推送分列）")
def stats(session: SessionDep, scope: Staff, category: Literal["case", "push"] | None = None) -> dict:
    return {"items": notices.sms_stats(session=session, scope=scope, category=category)}


@router.get("/stats/{fund_item_id}/failures", response_model=SmsFailuresOut, summary="资金事项的短信失败清单（待跟进）")
def failures(fund_item_id: Id, session: SessionDep, scope: Staff) -> dict:
    return notices.failures_out(notices.sms_failures(session=session, scope=scope, fund_item_id=fund_item_id))
