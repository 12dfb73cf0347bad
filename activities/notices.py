"""The SMS dispatcher: sends queued notices through the configured provider, and applies delivery receipts.

A case only enqueues a notice (one per case stage by its dedupe key); this dispatcher sends it later, so a
provider failure never blocks or fails a case. One round (`dispatch_due`):
1. claim (one transaction): due notices are checked (phone, template parameters); pushes to a number that
   replied R / TD / 退订 are cancelled; pushes wait for the daytime window (08:00–21:00 by default), case
   notices for quiet hours only when configured (urgent stages never); all wait for the per-number caps;
   else marked `sending` with attempts + 1 and a lease; a notice is only ever sent by the round that holds
   its lease;
2. send each outside any transaction, with the notice id as the provider's idempotency key; while it sends,
   the round renews its leases every `lease_renew_seconds`, so the lease can be short (a dispatcher killed
   mid-round holds its notices for at most `lease_seconds`) and still never lapse under a live, slow round;
3. record (one transaction): sent/delivered with the provider's message id, a retry with exponential
   backoff for retryable errors, failed with the reason otherwise. An ambiguous answer (a timeout after the
   request went out) is not resent: the notice stays `sent` and awaits its receipt.

Receipts arrive by callback (api/routers/sms.py) or, when none came after `receipt_wait_seconds`, by polling the
provider (`poll_receipts`: Alibaba QuerySendDetails, Tencent PullSmsSendStatus); both go through
services.notices.apply_receipts, so a report seen twice changes nothing. A `sent` notice's next_attempt_at is its
next poll.

Each round also does the deferred parts of the policy pushes (services.notices): it expands the listing pushes that
listing recorded as due (every matched enterprise, one INSERT … SELECT, in this round's own transaction), and every
few seconds it queues the payout pushes of cases paid a while ago.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from db import crypto
from db.models import Notice
from db.repositories import cases as cases_repo
from db.repositories import pushes
from db.repositories import sms as repo
from db.session import reading, transaction
from gateways.metrics import sms_failed
from gateways.sms import SendResult, SmsMessage, SmsProvider, provider_for
from gateways.sms.base import ReceiptQuery
from logs import get_logger
from rules import sms_templates
from rules.sms import (
    PhoneError,
    QuietHours,
    RateLimits,
    TemplateParamError,
    backoff,
    next_allowed,
    parse_phone,
    phone_hash,
    provider_params,
    quiet_until,
)
from schemas.vocabulary import NoticeStatus
from services import notices
from services.notices import PushReport

log = get_logger("zhida.sms")


@dataclass
class DispatchConfig:
    sign_name: str = sms_templates.SIGN_NAME
    template_ids: dict[str, str] = field(default_factory=dict)
    limits: RateLimits = field(default_factory=RateLimits)
    quiet: QuietHours | None = None  # case notices: any time unless configured (urgent ones always)
    push_quiet: QuietHours | None = field(default_factory=lambda: QuietHours.parse("21:00", "08:00"))
    max_attempts: int = 6
    retry_base_seconds: float = 30.0
    lease_seconds: float = 60.0
    lease_renew_seconds: float = 20.0  # well inside the lease: a renewal late by a busy machine still holds it
    record_every: int = 50
    batch_size: int = 500
    receipt_wait_seconds: float = 600.0  # poll the provider when no receipt came this long after sending
    receipt_max_polls: int = 6  # then the notice stays "sent" (delivery unknown)

    @classmethod
    def from_settings(cls, settings) -> DispatchConfig:
        return cls(
            sign_name=settings.sms_sign_name,
            template_ids=dict(settings.sms_template_ids),
            limits=RateLimits(settings.sms_rate_per_minute, settings.sms_rate_per_hour, settings.sms_rate_per_day),
            quiet=QuietHours.parse(settings.sms_quiet_start, settings.sms_quiet_end, settings.sms_timezone),
            push_quiet=QuietHours.parse(
                settings.sms_push_quiet_start, settings.sms_push_quiet_end, settings.sms_timezone
            ),
            max_attempts=settings.sms_max_attempts,
            retry_base_seconds=settings.sms_retry_base_seconds,
            lease_seconds=settings.sms_lease_seconds,
            lease_renew_seconds=settings.sms_lease_renew_seconds,
            batch_size=settings.sms_batch_size,
            receipt_wait_seconds=settings.sms_receipt_wait_seconds,
            receipt_max_polls=settings.sms_receipt_max_polls,
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
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


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
        dispatcher = cls(
            db_url=settings.db_url,
            fernet_key=settings.fernet_key(),
            provider=provider or provider_for(settings),
            config=DispatchConfig.from_settings(settings),
        )
        dispatcher.push_paid_delay_seconds = settings.sms_push_paid_delay_seconds
        return dispatcher

    push_paid_delay_seconds: float = 300.0
    side_every_seconds: float = 5.0  # receipt polls and payout pushes need not run every round
    _side_last: datetime | None = None

    def run_round(self) -> dict:
        """What runs beside the worker: expand due listing pushes and send what is due; every few seconds also poll
        receipts and queue the payout pushes. Never raises."""
        now = self.clock()
        out: dict = {}
        try:
            pushed = expand_listing_pushes(self.db_url, now=now)
            if pushed.pushes:
                out["listing_pushes"] = pushed.__dict__
        except Exception as exc:  # the next round tries again; the listing itself is done
            log.exception("listing push failed")
            out["listing_pushes"] = {"error": str(exc)}
        out["dispatch"] = self.dispatch_due().__dict__
        if self._side_last is None or (now - self._side_last).total_seconds() >= self.side_every_seconds:
            self._side_last = now
            out["poll"] = self.poll_receipts().__dict__
            try:
                pushed = push_paid_due(self.db_url, now=now, delay_seconds=self.push_paid_delay_seconds)
                out["paid_pushes"] = pushed.__dict__
            except Exception as exc:  # the next round tries again; a push never blocks anything
                log.exception("payout_push_failed")
                out["paid_pushes"] = {"error": str(exc)}
        return out

    # -- one round -----------------------------------------------------------------------------------------

    def dispatch_due(self, limit: int | None = None) -> DispatchReport:
        """Send what is due; never raises (errors are logged and counted in the report)."""
        report = DispatchReport()
        try:
            claimed = self._claim(limit or self.config.batch_size, report)
        except Exception as exc:  # a database hiccup: the next round tries again
            log.exception("sms_claim_failed")
            report.errors.append(f"claim: {exc}")
            return report
        # Results are recorded every `record_every` sends, not once at the end: a dispatcher killed mid-round
        # leaves at most that many sent-but-unrecorded notices to wait out their lease.
        leases = {message.notice_id: attempt for message, attempt in claimed}
        renewed = self.clock()
        for start in range(0, len(claimed), self.config.record_every):
            results: list[tuple[SmsMessage, int, SendResult]] = []
            for message, attempt in claimed[start : start + self.config.record_every]:
                if (self.clock() - renewed).total_seconds() >= self.config.lease_renew_seconds:
                    renewed = self._renew(list(leases.items()))
                try:
                    result = self.provider.send(message)
                except Exception as exc:  # providers should not raise; a bug here must not lose the notice
                    result = SendResult(ok=False, code=type(exc).__name__, message=str(exc)[:300], retryable=True)
                if not result.ok:
                    sms_failed(self.provider.name, result.code)
                results.append((message, attempt, result))
            try:
                self._record(results, report)
            except Exception as exc:  # the lease runs out and the notices are taken up again
                log.exception("sms_record_failed")
                report.errors.append(f"record: {exc}")
            for message, _, _ in results:
                leases.pop(message.notice_id, None)
        return report

    def _renew(self, leases: list[tuple[int, int]]) -> datetime:
        """Extend the leases of this round's notices not yet recorded (sent or not). A failed
        renewal is logged, not raised: at worst a lease lapses, another round sends the notice again under the same
        idempotency key, and `_record` keeps only the result of the attempt that holds the row."""
        now = self.clock()
        try:
            with transaction(self.db_url) as session:
                until = now + timedelta(seconds=self.config.lease_seconds)
                repo.extend_leases(session=session, leases=leases, until=until)
        except Exception:
            log.exception("sms_lease_renewal_failed")
        return now

    def _claim(self, limit: int, report: DispatchReport) -> list[tuple[SmsMessage, int]]:
        now = self.clock()
        bypass = self.provider.name == "outbox"  # nothing leaves the database: no quiet hours, no carrier limits
        out: list[tuple[SmsMessage, int]] = []
        delivered: list[dict] = []
        with transaction(self.db_url) as session:
            due = repo.claim_due(session=session, now=now, limit=limit)
            refused = repo.opted_out(
                session=session,
                enterprise_ids={n.enterprise_id for n in due if n.template_key in sms_templates.MARKETING},
            )
            # Numbers that replied R / TD / 退订 (a few rows; read once a round, pushes only).
            replied = repo.opted_out_phones(session=session, phone_hashes=None) if any(
                n.template_key in sms_templates.MARKETING for n in due
            ) else set()
            for notice in due:
                report.claimed += 1
                if notice.status == NoticeStatus.SENDING and notice.attempts >= self.config.max_attempts:
                    self._fail(notice, "发送结果未知且已达最大尝试次数", report)
                    continue
                if notice.enterprise_id in refused and notice.template_key in sms_templates.MARKETING:
                    notice.status, notice.next_attempt_at = "cancelled", None
                    notice.fail_reason = pushes.OPTED_OUT_REASON  # a push only; case notices are never optional
                    report.cancelled += 1
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
                hashed = notice.phone_hash or phone_hash(self.fernet_key, phone.e164)
                if template.marketing and hashed in replied:
                    notice.status, notice.next_attempt_at = "cancelled", None
                    notice.phone_hash, notice.phone_masked = hashed, phone.masked
                    notice.fail_reason = f"{phone.masked}已回复退订，不再发送政策推送"
                    report.cancelled += 1
                    continue
                fund_item_id = notice.fund_item_id
                if fund_item_id is None and notice.case_id is not None:
                    fund_item_id = cases_repo.fund_item_of(session=session, case_id=notice.case_id)
                if bypass:  # the outbox "sends" within the database: settled in this transaction, no lease
                    result = self.provider.send(self._message(notice, phone.e164, template, params))
                    if result.ok and result.delivered:
                        delivered.append({"id": notice.id, "provider_msg_id": result.provider_msg_id,
                                          "phone_hash": hashed, "phone_masked": phone.masked,
                                          "fund_item_id": fund_item_id})  # fmt: skip
                        report.delivered += 1
                        continue
                notice.phone_hash, notice.phone_masked, notice.fund_item_id = hashed, phone.masked, fund_item_id
                if not bypass:
                    # Pushes only in the daytime window (08:00–21:00 by default); case notices any time unless
                    # quiet hours are configured for them; urgent ones (a returned payment) always at once.
                    if template.marketing:
                        later = quiet_until(now, self.config.push_quiet)
                    else:
                        later = None if template.urgent else quiet_until(now, self.config.quiet)
                    if later is None:
                        # Caps count every send to the number (carriers cap per number, whatever the template).
                        recent = repo.recent_sends(
                            session=session,
                            phone_hash=notice.phone_hash,
                            template_key=None,
                            since=now - timedelta(days=1),
                        )
                        later = next_allowed(recent, now, self.config.limits)
                    if later is not None:
                        notice.status = NoticeStatus.QUEUED
                        notice.next_attempt_at = later.astimezone(UTC)  # SQLite keeps no offset: store UTC
                        report.deferred += 1
                        continue
                notice.status = NoticeStatus.SENDING
                notice.attempts = (notice.attempts or 0) + 1
                notice.next_attempt_at = now + timedelta(seconds=self.config.lease_seconds)
                notice.sent_at = now
                notice.provider = self.provider.name
                if not bypass:
                    session.flush()  # the next notice's rate-limit count sees this one
                out.append((self._message(notice, phone.e164, template, params), notice.attempts))
            # One statement, not an ORM update per row (the outbox at 100,000 notices).
            repo.mark_delivered(session=session, rows=delivered, now=now, provider=self.provider.name)
        return out

    def _message(self, notice: Notice, e164: str, template, params: dict[str, str]) -> SmsMessage:
        return SmsMessage(
            notice_id=notice.id,
            phone_e164=e164,
            template_key=template.key,
            params=params,
            content=notice.content,
            sign_name=self.config.sign_name,
            template_id=self._ids[template.key],
            param_order=template.params,
        )

    def _record(self, results: list[tuple[SmsMessage, int, SendResult]], report: DispatchReport) -> None:
        if not results:
            return
        now = self.clock()
        poll_at = now + timedelta(seconds=self.config.receipt_wait_seconds)
        with transaction(self.db_url) as session:
            rows = repo.get_many(session=session, notice_ids=[m.notice_id for m, _, _ in results], lock=True)
            for message, attempt, result in results:
                notice = rows.get(message.notice_id)
                if notice is None or notice.status != NoticeStatus.SENDING or notice.attempts != attempt:
                    continue  # a receipt or another round got there first
                masked = notice.phone_masked
                if result.ok:
                    notice.provider_msg_id = result.provider_msg_id
                    notice.fail_reason = None
                    notice.next_attempt_at = None
                    if result.delivered:
                        notice.status, notice.delivered_at = NoticeStatus.DELIVERED, now
                        report.delivered += 1
                    else:
                        notice.status = NoticeStatus.SENT
                        notice.next_attempt_at = poll_at  # poll for the receipt if no callback comes
                        report.sent += 1
                elif result.ambiguous:
                    notice.status = NoticeStatus.SENT
                    notice.next_attempt_at = poll_at  # a query tells whether it went out
                    notice.fail_reason = f"发送结果未知（{result.reason}），等待回执确认"
                    report.uncertain += 1
                elif result.retryable and attempt < self.config.max_attempts:
                    delay = backoff(attempt, base_seconds=self.config.retry_base_seconds)
                    if result.rate_limited:
                        delay = max(delay, timedelta(minutes=1))
                    notice.status = NoticeStatus.QUEUED
                    notice.sent_at = None
                    notice.next_attempt_at = now + delay
                    notice.fail_reason = f"第{attempt}次发送失败（{result.reason}），将重试"
                    report.retrying += 1
                else:
                    self._fail(notice, result.reason, report)
                if not (result.ok and result.delivered):  # the outbox path stays quiet at 100,000 notices
                    log.info(
                        "sms_sent",
                        notice_id=notice.id,
                        case_id=notice.case_id,
                        phone=masked,
                        attempt=attempt,
                        result=notice.status,
                    )

    # -- receipt polling (the fallback when callbacks do not arrive) ---------------------------------------

    def poll_receipts(self, limit: int | None = None) -> PollReport:
        """Ask the provider about sent notices without a receipt; never raises. Polls back off (wait · 2^n) and
        stop after `receipt_max_polls`, leaving the notice `sent` (delivery unknown)."""
        report = PollReport()
        now = self.clock()
        try:
            with transaction(self.db_url) as session:
                due = repo.receipts_due(
                    session=session, provider=self.provider.name, now=now, limit=limit or self.config.batch_size
                )
                queries = []
                for notice in due:
                    try:
                        phone = parse_phone(crypto.decrypt(self.fernet_key, notice.phone_enc or ""))
                    except Exception:  # cannot happen for a sent notice; do not poll it again
                        notice.next_attempt_at = None
                        continue
                    queries.append(ReceiptQuery(notice.id, phone.e164, notice.provider_msg_id, _aware(notice.sent_at)))
            if not queries:
                return report
            report.polled = len(queries)
            receipts = self.provider.query_receipts(queries)
            with transaction(self.db_url) as session:
                applied = notices.apply_receipts(session=session, provider=self.provider.name, receipts=receipts)
                report.applied, report.duplicate, report.unknown = applied.applied, applied.duplicate, applied.unknown
                rows = repo.get_many(session=session, notice_ids=[q.notice_id for q in queries], lock=True)
                for notice in rows.values():
                    if notice.status != NoticeStatus.SENT or notice.next_attempt_at is None:
                        continue  # resolved by this poll or by a callback meanwhile
                    notice.receipt_polls = (notice.receipt_polls or 0) + 1
                    if notice.receipt_polls >= self.config.receipt_max_polls:
                        notice.next_attempt_at = None
                        report.gave_up += 1
                    else:
                        wait = self.config.receipt_wait_seconds * 2**notice.receipt_polls
                        notice.next_attempt_at = now + timedelta(seconds=wait)
                        report.pending += 1
        except Exception as exc:  # the next round tries again
            log.exception("sms_receipt_poll_failed")
            report.errors.append(f"poll: {exc}")
        return report

    @staticmethod
    def _fail(notice: Notice, reason: str, report: DispatchReport) -> None:
        notice.status = NoticeStatus.FAILED
        notice.next_attempt_at = None
        notice.fail_reason = reason[:500]
        report.failed += 1


def _aware(t: datetime | None) -> datetime:
    if t is None:
        return datetime.now(UTC)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# -- receipt polls and the deferred pushes -------------------------------------------------------------------------


@dataclass
class PollReport:
    polled: int = 0
    applied: int = 0
    duplicate: int = 0
    unknown: int = 0
    pending: int = 0
    gave_up: int = 0
    errors: list[str] = field(default_factory=list)


def push_paid_due(db_url: str, *, now: datetime | None = None, delay_seconds: float = 300.0, limit: int = 1000) -> PushReport:
    """The payout pushes that are due (services.notices.queue_paid_pushes), in one transaction."""
    with transaction(db_url) as session:
        return notices.queue_paid_pushes(
            session=session, now=now or datetime.now(UTC), delay_seconds=delay_seconds, limit=limit
        )


def expand_listing_pushes(db_url: str, *, now: datetime | None = None) -> PushReport:
    """The listing pushes that are due, sent to every matched enterprise (services.notices), in one transaction;
    a read first, so a round with nothing due never takes the write lock."""
    with reading(db_url) as session:
        if not notices.listing_pushes_due(session=session):
            return PushReport()
    with transaction(db_url) as session:
        return notices.expand_listing_pushes(session=session, now=now)

