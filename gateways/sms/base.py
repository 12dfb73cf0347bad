"""The SMS provider interface: send one message, parse delivery receipts. Providers never raise on send."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class SmsMessage:
    """One notice ready to send; `notice_id` is the idempotency key (Alibaba OutId, Tencent SessionContext)."""

    notice_id: int
    phone_e164: str  # +8613800138000
    template_key: str
    params: dict[str, str]  # validated provider parameters (see rules.sms.provider_params)
    content: str  # the full text as the enterprise reads it (outbox and generic HTTP)
    sign_name: str = "惠企直达"
    template_id: str = ""
    param_order: tuple[str, ...] = ()

    @property
    def national_number(self) -> str:
        return self.phone_e164.removeprefix("+86")


@dataclass(frozen=True)
class SendResult:
    """Accepted (provider_msg_id) or an error code; `retryable` errors are tried again with backoff.

    `ambiguous` means the request may have reached the provider (a read timeout): it is not resent blindly,
    the notice waits for a receipt. `delivered` is set by providers that deliver at once (the outbox).
    """

    ok: bool
    provider_msg_id: str | None = None
    code: str | None = None
    message: str | None = None
    retryable: bool = False
    rate_limited: bool = False
    ambiguous: bool = False
    delivered: bool = False

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}" if self.message and self.message != self.code else str(self.code)


@dataclass(frozen=True)
class Uplink:
    """A reply from a phone (上行短信) pushed by a provider: who wrote what, and when the carrier received it."""

    provider: str
    phone: str
    content: str
    received_at: datetime | None = None
    sign_name: str | None = None
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Receipt:
    """A delivery report (状态报告) from a provider callback or poll."""

    provider: str
    delivered: bool
    notice_id: int | None = None
    provider_msg_id: str | None = None
    phone: str | None = None
    code: str | None = None
    message: str | None = None
    reported_at: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ReceiptQuery:
    """A sent notice still without a delivery report, to look up at the provider (polling fallback)."""

    notice_id: int
    phone_e164: str
    provider_msg_id: str | None
    sent_at: datetime

    @property
    def national_number(self) -> str:
        return self.phone_e164.removeprefix("+86")


class ReceiptFormatError(ValueError):
    """A callback body that is not in the provider's format."""


class SmsProvider(abc.ABC):
    name: str = "abstract"

    @abc.abstractmethod
    def send(self, message: SmsMessage) -> SendResult:
        """Send one message; every failure comes back as a SendResult, never as an exception."""

    def parse_receipts(self, body: object) -> list[Receipt]:
        raise ReceiptFormatError(f"{self.name} does not push receipts")

    def query_receipts(self, queries: list[ReceiptQuery]) -> list[Receipt]:
        """Delivery reports for notices whose callback never came; [] when the provider has no query API.

        May return reports of other notices too (a pull API drains a queue); never raises.
        """
        return []


def notice_id_of(value: object) -> int | None:
    """The notice id from an OutId / SessionContext / ext field (digits only), else None."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


# Both carriers report times in Beijing time without an offset.
BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_report_time(text: object) -> datetime | None:
    """A carrier's 'YYYY-MM-DD HH:MM:SS' report time (Beijing time, no offset); None when absent or malformed."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None
