"""A generic JSON-over-HTTP SMS provider (a provincial SMS platform or an operator gateway), with httpx.

Request: `POST {url}` with `Authorization: Bearer …`, `Idempotency-Key: notice-{id}` and
`{"id", "phone", "sign", "template", "params", "content"}`; answer 2xx `{"message_id"}`, 429/5xx retry,
other 4xx `{"code", "message"}` permanent. Receipts: `[{"id", "message_id", "status": "delivered|failed",
"code", "message"}]`.
"""

from __future__ import annotations

from typing import Any

import httpx

from gateways.sms.base import Receipt, ReceiptFormatError, SendResult, SmsMessage, SmsProvider, notice_id_of
from schemas.vocabulary import NoticeStatus


class HttpProvider(SmsProvider):
    name = "http"

    def __init__(self, *, url: str, token: str = "", timeout_seconds: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.timeout = httpx.Timeout(timeout_seconds)

    def send(self, message: SmsMessage) -> SendResult:
        headers = {"Idempotency-Key": f"notice-{message.notice_id}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = {
            "id": message.notice_id,
            "phone": message.phone_e164,
            "sign": message.sign_name,
            "template": message.template_id or message.template_key,
            "params": message.params,
            "content": message.content,
        }
        try:
            response = httpx.post(self.url, json=payload, headers=headers, timeout=self.timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return SendResult(ok=False, code="ConnectError", message=str(exc)[:300], retryable=True)
        except httpx.TimeoutException as exc:
            return SendResult(ok=False, code="Timeout", message=str(exc)[:300], ambiguous=True)
        except httpx.HTTPError as exc:
            return SendResult(ok=False, code=type(exc).__name__, message=str(exc)[:300], retryable=True)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.is_success and data.get("message_id"):
            return SendResult(ok=True, provider_msg_id=str(data["message_id"]))
        code = str(data.get("code") or response.status_code)
        retryable = response.status_code == 429 or response.status_code >= 500
        return SendResult(
            ok=False,
            code=code,
            message=str(data.get("message") or response.text)[:300],
            retryable=retryable,
            rate_limited=response.status_code == 429,
        )

    @staticmethod
    def parse_receipts(body: Any) -> list[Receipt]:  # type: ignore[override]
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise ReceiptFormatError("回执应为 JSON 数组")
        out = []
        for item in body:
            if not isinstance(item, dict) or item.get("status") not in (NoticeStatus.DELIVERED, NoticeStatus.FAILED):
                raise ReceiptFormatError(f"回执缺少 status：{item!r}"[:200])
            out.append(
                Receipt(
                    provider="http",
                    delivered=item["status"] == NoticeStatus.DELIVERED,
                    notice_id=notice_id_of(item.get("id")),
                    provider_msg_id=item.get("message_id"),
                    code=item.get("code"),
                    message=item.get("message"),
                    raw=item,
                )
            )
        return out
