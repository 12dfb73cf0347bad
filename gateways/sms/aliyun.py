"""Alibaba Cloud SMS (Dysmsapi 2017-05-25) through the official SDK: named JSON parameters, OutId = notice id."""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from gateways.sms.base import (
    BEIJING,
    Receipt,
    ReceiptFormatError,
    ReceiptQuery,
    SendResult,
    SmsMessage,
    SmsProvider,
    Uplink,
    beijing_report_time,
    notice_id_of,
)
from logs import get_logger

log = get_logger("zhida.sms")
# QuerySendDetails SendStatus: 1 waiting for the carrier's report, 2 failed, 3 delivered.
SEND_STATUS_FAILED, SEND_STATUS_DELIVERED = 2, 3

# Documented SendSms codes: (retryable, rate_limited). Anything not listed is treated as permanent.
CODES: dict[str, tuple[bool, bool]] = {
    "isv.BUSINESS_LIMIT_CONTROL": (True, True),  # per-number minute/hour/day flow control
    "isv.DAY_LIMIT_CONTROL": (True, True),
    "isv.OUT_OF_SERVICE": (True, False),  # arrears: retry after top-up
    "isv.AMOUNT_NOT_ENOUGH": (True, False),
    "isp.SYSTEM_ERROR": (True, False),
    "isp.RAM_PERMISSION_DENY": (False, False),
    "Throttling.User": (True, True),
    "SignatureNonceUsed": (True, False),
    "ServiceUnavailable": (True, False),
    "InternalError": (True, False),
    "isv.MOBILE_NUMBER_ILLEGAL": (False, False),
    "isv.MOBILE_COUNT_OVER_LIMIT": (False, False),
    "isv.TEMPLATE_MISSING_PARAMETERS": (False, False),
    "isv.INVALID_PARAMETERS": (False, False),
    "isv.INVALID_JSON_PARAM": (False, False),
    "isv.PARAM_LENGTH_LIMIT": (False, False),
    "isv.SMS_TEMPLATE_ILLEGAL": (False, False),
    "isv.SMS_SIGNATURE_ILLEGAL": (False, False),
    "isv.BLACK_KEY_CONTROL_LIMIT": (False, False),
    "isv.DENY_IP_RANGE": (False, False),
}


def classify(code: str, message: str | None) -> SendResult:
    retryable, limited = CODES.get(code, (False, False))
    return SendResult(ok=False, code=code, message=message, retryable=retryable, rate_limited=limited)


class AliyunProvider(SmsProvider):
    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str = "dysmsapi.aliyuncs.com",
        protocol: str = "https",
        timeout_seconds: float = 10.0,
    ) -> None:
        self.client = Client(
            open_api_models.Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
            )
        )
        ms = int(timeout_seconds * 1000)
        # The SDK's own retries are off: the dispatcher retries with backoff and the same OutId.
        self.runtime = util_models.RuntimeOptions(connect_timeout=ms, read_timeout=ms, autoretry=False, max_attempts=0)

    def send(self, message: SmsMessage) -> SendResult:
        request = sms_models.SendSmsRequest(
            phone_numbers=message.national_number,
            sign_name=message.sign_name,
            template_code=message.template_id,
            template_param=json.dumps(message.params, ensure_ascii=False),
            out_id=str(message.notice_id),
        )
        try:
            body = self.client.send_sms_with_options(request, self.runtime).body
        except Exception as exc:  # SDK raises on transport errors and non-2xx answers
            return _from_exception(exc)
        if body.code == "OK":
            return SendResult(ok=True, provider_msg_id=body.biz_id)
        return classify(body.code or "Unknown", body.message)

    def query_receipts(self, queries: list[ReceiptQuery]) -> list[Receipt]:
        """QuerySendDetails per notice (phone + send date in Beijing time, BizId when known), matched by OutId."""
        receipts: list[Receipt] = []
        for query in queries:
            request = sms_models.QuerySendDetailsRequest(
                phone_number=query.national_number,
                biz_id=query.provider_msg_id or None,
                send_date=query.sent_at.astimezone(BEIJING).strftime("%Y%m%d"),
                page_size=50,
                current_page=1,
            )
            try:
                body = self.client.query_send_details_with_options(request, self.runtime).body
            except Exception as exc:  # a failed query changes nothing; the next poll tries again
                log.warning("aliyun_query_failed", notice_id=query.notice_id, error=str(exc))
                continue
            if body.code != "OK":
                log.warning("aliyun_query_refused", notice_id=query.notice_id, code=body.code, message=body.message)
                continue
            details = (body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else None) or []
            for detail in details:
                if notice_id_of(detail.out_id) != query.notice_id or detail.send_status not in (
                    SEND_STATUS_FAILED,
                    SEND_STATUS_DELIVERED,
                ):
                    continue  # another send to the same phone that day, or no report yet
                delivered = detail.send_status == SEND_STATUS_DELIVERED
                receipts.append(
                    Receipt(
                        provider="aliyun",
                        delivered=delivered,
                        notice_id=query.notice_id,
                        provider_msg_id=query.provider_msg_id,
                        phone=detail.phone_num,
                        code=detail.err_code or ("DELIVERED" if delivered else "UNKNOWN"),
                        reported_at=beijing_report_time(detail.receive_date),
                        raw=detail.to_map(),
                    )
                )
                break
        return receipts

    @staticmethod
    def parse_receipts(body: Any) -> list[Receipt]:  # type: ignore[override]
        """Alibaba's SmsReport push: a JSON array of {phone_number, success, err_code, err_msg, biz_id, out_id, …}."""
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise ReceiptFormatError("阿里云回执应为 JSON 数组")
        receipts = []
        for item in body:
            if not isinstance(item, dict) or "success" not in item or not (item.get("biz_id") or item.get("out_id")):
                raise ReceiptFormatError(f"阿里云回执缺少字段：{item!r}"[:200])
            success = item["success"] in (True, "true", "True", 1)
            receipts.append(
                Receipt(
                    provider="aliyun",
                    delivered=success,
                    notice_id=notice_id_of(item.get("out_id")),
                    provider_msg_id=item.get("biz_id"),
                    phone=item.get("phone_number"),
                    code=item.get("err_code") or ("DELIVERED" if success else "UNKNOWN"),
                    message=item.get("err_msg"),
                    reported_at=beijing_report_time(item.get("report_time")),
                    raw=item,
                )
            )
        return receipts


def parse_uplinks(body: Any) -> list[Uplink]:
    """Alibaba's SmsUp push (上行短信消息): a JSON array of {phone_number, send_time, content, sign_name, dest_code,
    sequence_id}; send_time is Beijing time."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise ReceiptFormatError("阿里云上行短信应为 JSON 数组")
    out = []
    for item in body:
        if not isinstance(item, dict) or not item.get("phone_number") or "content" not in item:
            raise ReceiptFormatError(f"阿里云上行短信缺少字段：{item!r}"[:200])
        out.append(
            Uplink(
                provider="aliyun",
                phone=str(item["phone_number"]),
                content=str(item["content"] or ""),
                received_at=beijing_report_time(item.get("send_time")),
                sign_name=item.get("sign_name"),
                raw=item,
            )
        )
    return out


def _from_exception(exc: Exception) -> SendResult:
    code = getattr(exc, "code", None)
    message = str(getattr(exc, "message", None) or exc)[:300]
    status = getattr(exc, "status_code", None) or (getattr(exc, "data", None) or {}).get("statusCode")
    if code and code in CODES:
        return classify(code, message)
    name = type(exc).__name__
    if "timeout" in message.lower() or "Timeout" in name:
        # The request may have reached Alibaba: do not resend blindly, wait for the receipt or a query.
        return SendResult(ok=False, code="Timeout", message=message, ambiguous=True)
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return SendResult(ok=False, code=str(code or status), message=message)
    return SendResult(ok=False, code=str(code or name), message=message, retryable=True)
