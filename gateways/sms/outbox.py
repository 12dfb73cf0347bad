"""The embedded default: the notice stays in the database and enterprises read it in the web pages."""

from __future__ import annotations

from gateways.sms.base import SendResult, SmsMessage, SmsProvider


class OutboxProvider(SmsProvider):
    name = "outbox"

    def send(self, message: SmsMessage) -> SendResult:
        return SendResult(ok=True, provider_msg_id=f"outbox-{message.notice_id}", delivered=True)
