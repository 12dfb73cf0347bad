"""The SMS dispatcher: sends queued notices through the configured provider, and applies delivery receipts.

A case only enqueues a notice (one per case stage by its dedupe key); this dispatcher sends it later, so a
provider failure never blocks or fails a case. One round (`dispatch_due`):
1. claim (one transaction): due notices are checked (phone, template parameters), deferred for quiet
   hours (urgent stages excepted) and per-phone rate limits, else marked `sending` with attempts + 1 and a
   lease; a notice is only ever sent by the round that holds its lease;
2. send each outside any transaction, with the notice id as the provider's idempotency key;
3. record (one transaction): sent/delivered with the provider's message id, a retry with exponential
   backoff for retryable errors, failed with the reason otherwise. An ambiguous answer (a timeout after the
   request went out) is not resent: the notice stays `sent` and awaits its receipt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import activity

from db import crypto
from db.models import Notice
from db.repositories import sms as repo
from db.session import transaction
from gateways.sms import SendResult, SmsMessage, SmsProvider, provider_for
from gateways.sms.base import Receipt
from rules import sms_templates
from rules.sms import (
    PhoneError,
    QuietHours,
    RateLimits,
    TemplateParamError,
    backoff,
    next_allowed,
    parse_phone,
    provider_params,
    quiet_until,
)

log = logging.getLogger("zhida.sms")


@dataclass
class DispatchConfig:
    sign_name: str = sms_templates.SIGN_NAME
    template_ids: dict[str, str] = field(default_factory=dict)
    limits: RateLimits = field(default_factory=RateLimits)
    quiet: QuietHours | None = field(default_factory=QuietHours)
    max_attempts: int = 6
    retry_base_seconds: float = 30.0
    lease_seconds: float = 300.0
    batch_size: int = 500

    @classmethod
    def from_settings(cls, settings) -> DispatchConfig:
        return cls(
            sign_name=settings.sms_sign_name,
            template_ids=dict(settings.sms_template_ids),
            limits=RateLimits(settings.sms_rate_per_minute, settings.sms_rate_per_hour, settings.sms_rate_per_day),
            quiet=QuietHours.parse(settings.sms_quiet_start, settings.sms_quiet_end, settings.sms_timezone),
            max_attempts=settings.sms_max_attempts,
            retry_base_seconds=settings.sms_retry_base_seconds,
            lease_seconds=settings.sms_lease_seconds,
            batch_size=settings.sms_batch_size,
        )


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    delivered: int = 0
    deferred: int = 0
    retrying: int = 0
    failed: int = 0
    uncertain: int = 0
    errors: list[str] = field(default_factory=list)


def phone_hash(key: str, e164: str) -> str:
    """A keyed hash of the number: rate limits count per phone without storing it in the clear."""
    return hmac.new(key.encode(), e164.encode(), hashlib.sha256).hexdigest()


class Dispatcher:
    def __init__(
        self,
        *,
        db_url: str,
        fernet_key: str,
        provider: SmsProvider,
        config: DispatchConfig | None = None,
        clock=None,
    ) -> None:
        self.db_url = db_url
        self.fernet_key = fernet_key
        self.provider = provider
        self.config = config or DispatchConfig()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._ids = sms_templates.template_ids(provider.name, self.config.template_ids)

    @classmethod
    def from_settings(cls, settings, provider: SmsProvider | None = None) -> Dispatcher:
        return cls(
            db_url=settings.db_url,
            fernet_key=settings.fernet_key(),
            provider=provider or provider_for(settings),
            config=DispatchConfig.from_settings(settings),
        )

    # -- one round -----------------------------------------------------------------------------------------

    def dispatch_due(self, limit: int | None = None) -> DispatchReport:
        """Send what is due; never raises (errors are logged and counted in the report)."""
        report = DispatchReport()
        try:
            claimed = self._claim(limit or self.config.batch_size, report)
        except Exception as exc:  # a database hiccup: the next round tries again
            log.exception("sms claim failed")
            report.errors.append(f"claim: {exc}")
            return report
        results: list[tuple[SmsMessage, int, SendResult]] = []
        for message, attempt in claimed:
            try:
                result = self.provider.send(message)
            except Exception as exc:  # providers should not raise; a bug here must not lose the notice
                result = SendResult(ok=False, code=type(exc).__name__, message=str(exc)[:300], retryable=True)
            results.append((message, attempt, result))
        try:
            self._record(results, report)
        except Exception as exc:  # the lease runs out and the notices are taken up again
            log.exception("sms record failed")
            report.errors.append(f"record: {exc}")
        return report

    def _claim(self, limit: int, report: DispatchReport) -> list[tuple[SmsMessage, int]]:
        now = self.clock()
        bypass = self.provider.name == "outbox"  # nothing leaves the database: no quiet hours, no carrier limits
        out: list[tuple[SmsMessage, int]] = []
        with transaction(self.db_url) as session:
            for notice in repo.claim_due(session=session, now=now, limit=limit):
                report.claimed += 1
                if notice.status == "sending" and notice.attempts >= self.config.max_attempts:
                    self._fail(notice, "发送结果未知且已达最大尝试次数", report)
                    continue
                try:
                    template = sms_templates.get(notice.template_key)
                    if not notice.phone_enc:
                        raise PhoneError("企业未登记手机号")
                    phone = parse_phone(crypto.decrypt(self.fernet_key, notice.phone_enc))
                    params = provider_params(
                        template.key, template.params, notice.params or {}, free_text=template.free_text
                    )
                except (KeyError, PhoneError, TemplateParamError) as exc:
                    self._fail(notice, str(exc).strip("'\""), report)
                    continue
                except Exception as exc:  # undecryptable phone, bad params shape
                    self._fail(notice, f"无法发送：{type(exc).__name__}", report)
                    continue
                notice.phone_hash = notice.phone_hash or phone_hash(self.fernet_key, phone.e164)
                notice.phone_masked = phone.masked
                if notice.fund_item_id is None and notice.case_id is not None:
                    notice.fund_item_id = _fund_item_of(session, notice.case_id)
                if not bypass:
                    later = None if template.urgent else quiet_until(now, self.config.quiet)
                    if later is None:
                        recent = repo.recent_sends(
                            session=session,
                            phone_hash=notice.phone_hash,
                            template_key=notice.template_key,
                            since=now - timedelta(days=1),
                        )
                        later = next_allowed(recent, now, self.config.limits)
                    if later is not None:
                        notice.status = "queued"
                        notice.next_attempt_at = later.astimezone(UTC)  # SQLite keeps no offset: store UTC
                        report.deferred += 1
                        continue
                notice.status = "sending"
                notice.attempts = (notice.attempts or 0) + 1
                notice.next_attempt_at = now + timedelta(seconds=self.config.lease_seconds)
                notice.sent_at = now
                notice.provider = self.provider.name
                session.flush()  # the next notice's rate-limit count sees this one
                out.append(
                    (
                        SmsMessage(
                            notice_id=notice.id,
                            phone_e164=phone.e164,
                            template_key=template.key,
                            params=params,
                            content=notice.content,
                            sign_name=self.config.sign_name,
                            template_id=self._ids[template.key],
                            param_order=template.params,
                        ),
                        notice.attempts,
                    )
                )
        return out

    def _record(self, results: list[tuple[SmsMessage, int, SendResult]], report: DispatchReport) -> None:
        if not results:
            return
        now = self.clock()
        with transaction(self.db_url) as session:
            for message, attempt, result in results:
                notice = repo.get(session=session, notice_id=message.notice_id, lock=True)
                if notice is None or notice.status != "sending" or notice.attempts != attempt:
                    continue  # a receipt or another round got there first
                masked = notice.phone_masked
                if result.ok:
                    notice.provider_msg_id = result.provider_msg_id
                    notice.fail_reason = None
                    notice.next_attempt_at = None
                    if result.delivered:
                        notice.status, notice.delivered_at = "delivered", now
                        report.delivered += 1
                    else:
                        notice.status = "sent"
                        report.sent += 1
                elif result.ambiguous:
                    notice.status = "sent"
                    notice.next_attempt_at = None
                    notice.fail_reason = f"发送结果未知（{result.reason}），等待回执确认"
                    report.uncertain += 1
                elif result.retryable and attempt < self.config.max_attempts:
                    delay = backoff(attempt, base_seconds=self.config.retry_base_seconds)
                    if result.rate_limited:
                        delay = max(delay, timedelta(minutes=1))
                    notice.status = "queued"
                    notice.sent_at = None
                    notice.next_attempt_at = now + delay
                    notice.fail_reason = f"第{attempt}次发送失败（{result.reason}），将重试"
                    report.retrying += 1
                else:
                    self._fail(notice, result.reason, report)
                log.info("sms notice=%s phone=%s attempt=%s result=%s", notice.id, masked, attempt, notice.status)

    @staticmethod
    def _fail(notice: Notice, reason: str, report: DispatchReport) -> None:
        notice.status = "failed"
        notice.next_attempt_at = None
        notice.fail_reason = reason[:500]
        report.failed += 1


def _fund_item_of(session, case_id: int) -> int | None:
    from db.models import Case

    return session.scalar(Case.__table__.select().with_only_columns(Case.fund_item_id).where(Case.id == case_id))


# -- receipts ------------------------------------------------------------------------------------------------------


@dataclass
class ReceiptReport:
    applied: int = 0
    duplicate: int = 0
    unknown: int = 0


def apply_receipts(session, provider: str, receipts: list[Receipt]) -> ReceiptReport:
    """Set delivered/failed from delivery reports; a resent or stale report changes nothing."""
    report = ReceiptReport()
    for receipt in receipts:
        notice = repo.get(session=session, notice_id=receipt.notice_id, lock=True) if receipt.notice_id else None
        if (
            notice is not None
            and receipt.provider_msg_id
            and notice.provider_msg_id
            not in (
                None,
                receipt.provider_msg_id,
            )
        ):
            notice = None  # an OutId that is not ours (another system on the same account)
        if notice is None and receipt.provider_msg_id:
            notice = repo.by_provider_msg_id(
                session=session, provider=provider, provider_msg_id=receipt.provider_msg_id
            )
        if notice is None:
            report.unknown += 1
            continue
        if notice.status in ("delivered", "failed") and notice.receipt_code is not None:
            report.duplicate += 1  # providers resend: the first final report wins
            continue
        notice.receipt_code = (receipt.code or "")[:64]
        notice.provider_msg_id = notice.provider_msg_id or receipt.provider_msg_id
        notice.next_attempt_at = None
        if receipt.delivered:
            notice.status = "delivered"
            notice.delivered_at = receipt.reported_at.replace(tzinfo=UTC) if receipt.reported_at else datetime.now(UTC)
            notice.fail_reason = None
        else:
            notice.status = "failed"
            notice.fail_reason = f"运营商回执：{receipt.code}{'（' + receipt.message + '）' if receipt.message else ''}"
        report.applied += 1
    return report


# -- Temporal activity ----------------------------------------------------------------------------------------------


class NoticeActivities:
    """For a worker: `dispatch_notices` runs one round; schedule it every few seconds."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @activity.defn
    def dispatch_notices(self, limit: int = 500) -> dict:
        report = self.dispatcher.dispatch_due(limit)
        return report.__dict__
