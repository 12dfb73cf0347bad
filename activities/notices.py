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

Receipts arrive by callback (api/routers/sms.py) or, when none came after `receipt_wait_seconds`, by polling the
provider (`poll_receipts`: Alibaba QuerySendDetails, Tencent PullSmsSendStatus); both go through
`apply_receipts`, so a report seen twice changes nothing. A `sent` notice's next_attempt_at is its next poll.

Policy pushes (Yichang rules art. 26, "政策短信分三次推送"): after an enterprise registers (`push_on_registered`:
the listed items it matches), after a department lists a fund item (`push_on_listed`: every matched
enterprise, one INSERT … SELECT), and at payout (`push_paid_due`: when a case is paid, the enterprise is told,
besides the case's own "paid" notice, how many more listed policies it matches). Pushes are marketing-type
(category `push`): an enterprise that opted out gets none (a push queued before it opted out is withdrawn,
status `cancelled`); case notices are never optional.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from db import crypto
from db.models import Enterprise, Notice
from db.repositories import notices as notices_repo
from db.repositories import pushes
from db.repositories import sms as repo
from db.session import transaction
from gateways.sms import SendResult, SmsMessage, SmsProvider, provider_for
from gateways.sms.base import Receipt, ReceiptQuery
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
    provider_params,
    quiet_until,
)

log = get_logger("zhida.sms")


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
    receipt_wait_seconds: float = 600.0  # poll the provider when no receipt came this long after sending
    receipt_max_polls: int = 6  # then the notice stays "sent" (delivery unknown)

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
        """What runs beside the worker: send what is due; every few seconds also poll receipts and queue the
        payout pushes. Never raises."""
        out = {"dispatch": self.dispatch_due().__dict__}
        now = self.clock()
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
            log.exception("sms_record_failed")
            report.errors.append(f"record: {exc}")
        return report

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
            for notice in due:
                report.claimed += 1
                if notice.status == "sending" and notice.attempts >= self.config.max_attempts:
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
                fund_item_id = notice.fund_item_id
                if fund_item_id is None and notice.case_id is not None:
                    fund_item_id = _fund_item_of(session, notice.case_id)
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
                        notice.next_attempt_at = poll_at  # poll for the receipt if no callback comes
                        report.sent += 1
                elif result.ambiguous:
                    notice.status = "sent"
                    notice.next_attempt_at = poll_at  # a query tells whether it went out
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
                applied = apply_receipts(session, self.provider.name, receipts)
                report.applied, report.duplicate, report.unknown = applied.applied, applied.duplicate, applied.unknown
                rows = repo.get_many(session=session, notice_ids=[q.notice_id for q in queries], lock=True)
                for notice in rows.values():
                    if notice.status != "sent" or notice.next_attempt_at is None:
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
        notice.status = "failed"
        notice.next_attempt_at = None
        notice.fail_reason = reason[:500]
        report.failed += 1


def _aware(t: datetime | None) -> datetime:
    if t is None:
        return datetime.now(UTC)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _fund_item_of(session, case_id: int) -> int | None:
    from db.models import Case

    return session.scalar(Case.__table__.select().with_only_columns(Case.fund_item_id).where(Case.id == case_id))


# -- receipts ------------------------------------------------------------------------------------------------------


@dataclass
class PollReport:
    polled: int = 0
    applied: int = 0
    duplicate: int = 0
    unknown: int = 0
    pending: int = 0
    gave_up: int = 0
    errors: list[str] = field(default_factory=list)


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
            notice.delivered_at = _aware(receipt.reported_at).astimezone(UTC)
            notice.fail_reason = None
        else:
            notice.status = "failed"
            notice.fail_reason = f"运营商回执：{receipt.code}{'（' + receipt.message + '）' if receipt.message else ''}"
        report.applied += 1
    return report


# -- policy pushes (Yichang rules art. 26) --------------------------------------------------------------------------


@dataclass
class PushReport:
    pushes: int = 0
    matched: int = 0
    queued: int = 0
    opted_out: int = 0
    no_phone: int = 0


def push_on_registered(session, enterprise: Enterprise, *, actor: str = "system") -> PushReport:
    """After registration: one push naming how many listed fund items the enterprise matches (and the first)."""
    items = pushes.listed_items(session=session)
    matched = pushes.matching_items(session=session, enterprise_ids=[enterprise.id], items=items).get(enterprise.id, [])
    report = PushReport(pushes=1, matched=len(matched))
    key = f"registered:{enterprise.id}"
    first = next((i for i in items if matched and i.id == matched[0]), None)
    if first is not None and pushes.recorded(session=session, key=key) is None:
        if enterprise.push_opt_out:
            report.opted_out = 1
        elif not enterprise.contact_phone_enc:
            report.no_phone = 1
        else:
            params = sms_templates.stage_params(enterprise=enterprise.name, item=first.name, count=len(matched))
            _, created = notices_repo.enqueue(
                session=session,
                dedupe_key=f"push:registered:{enterprise.id}",
                enterprise_id=enterprise.id,
                case_id=None,
                template_key="policy_push_registered",
                params=params,
                content=sms_templates.render("policy_push_registered", params),
                phone_enc=enterprise.contact_phone_enc,
                phone_masked=enterprise.contact_phone_masked,
                fund_item_id=first.id,
                category="push",
            )
            report.queued = int(created)
    pushes.record(
        session=session,
        rows=[{"key": key, "kind": "registered", "enterprise_id": enterprise.id,
               "fund_item_id": first.id if first else None, "matched": report.matched, "queued": report.queued,
               "opted_out": report.opted_out, "no_phone": report.no_phone, "actor": actor}],
    )  # fmt: skip
    return report


def push_on_listed(session, fund_item_id: int, *, actor: str = "system") -> PushReport:
    """After listing: a push to every enterprise the listed version matches, in one INSERT … SELECT (dedupe key
    push:listed:{item}:{enterprise}, so listing a new version pushes only to newly matched enterprises)."""
    items = pushes.listed_items(session=session, fund_item_id=fund_item_id)
    if not items:
        return PushReport()
    item = items[0]
    if item.mode == "no_application" or item.window_end is None:
        template_key, params = "policy_push_listed_free", sms_templates.stage_params(item=item.name)
    else:
        template_key = "policy_push_listed"
        params = sms_templates.stage_params(item=item.name, deadline=item.window_end)
    counts = pushes.count_matched(session=session, item=item)
    queued = pushes.queue_for_matched(
        session=session,
        item=item,
        template_key=template_key,
        params=params,
        text_around_name=sms_templates.render_around(template_key, params),
        dedupe_prefix=f"push:listed:{item.id}:",
    )
    key = f"listed:{item.id}:v{item.version}"
    earlier = pushes.recorded(session=session, key=key)
    if earlier is None:
        pushes.record(
            session=session,
            rows=[{"key": key, "kind": "listed", "fund_item_id": item.id, "matched": counts.matched,
                   "queued": queued, "opted_out": counts.opted_out, "no_phone": counts.no_phone, "actor": actor}],
        )  # fmt: skip
    else:  # pushed again (enterprises registered or updated since): the figures as of now, queued in total
        earlier.matched, earlier.opted_out, earlier.no_phone = counts.matched, counts.opted_out, counts.no_phone
        earlier.queued += queued
    log.info("policy_push_listed", fund_item=item.code, matched=counts.matched, queued=queued)
    return PushReport(1, counts.matched, queued, counts.opted_out, counts.no_phone)


def push_paid_due(db_url: str, *, now: datetime | None = None, delay_seconds: float = 300.0, limit: int = 1000) -> PushReport:
    """At payout: for cases paid at least `delay_seconds` ago (after their own "paid" notice), a push telling the
    enterprise how many more listed policies it matches; none when it matches no other. One batch, one transaction."""
    now = now or datetime.now(UTC)
    report = PushReport()
    with transaction(db_url) as session:
        due = pushes.paid_cases_due(session=session, paid_before=now - timedelta(seconds=delay_seconds), limit=limit)
        if not due:
            return report
        items = pushes.listed_items(session=session)
        matched = pushes.matching_items(session=session, enterprise_ids=sorted({c.enterprise_id for c in due}),
                                        items=items)  # fmt: skip
        notices: list[dict] = []
        ledger: list[dict] = []
        for paid in due:
            others = [i for i in matched.get(paid.enterprise_id, []) if i != paid.fund_item_id]
            row = {"key": f"paid:{paid.case_id}", "kind": "paid", "fund_item_id": paid.fund_item_id,
                   "enterprise_id": paid.enterprise_id, "case_id": paid.case_id, "matched": len(others)}  # fmt: skip
            if others and paid.opted_out:
                row["opted_out"] = 1
            elif others and not paid.phone_enc:
                row["no_phone"] = 1
            elif others:
                params = sms_templates.stage_params(
                    enterprise=paid.enterprise_name, item=paid.item_name, amount_fen=paid.paid_fen, count=len(others)
                )
                notices.append(
                    {
                        "dedupe_key": f"push:paid:{paid.case_id}",
                        "enterprise_id": paid.enterprise_id,
                        "template_key": "policy_push_paid",
                        "params": params,
                        "content": sms_templates.render("policy_push_paid", params),
                        "phone_enc": paid.phone_enc,
                        "phone_masked": paid.phone_masked,
                        "fund_item_id": paid.fund_item_id,
                        "category": "push",
                    }
                )
                row["queued"] = 1
            ledger.append(row)
        notices_repo.enqueue_many(session=session, rows=notices)
        pushes.record(session=session, rows=ledger)
    report.pushes = len(ledger)
    report.matched = sum(r["matched"] for r in ledger)
    report.queued = len(notices)
    report.opted_out = sum(r.get("opted_out", 0) for r in ledger)
    report.no_phone = sum(r.get("no_phone", 0) for r in ledger)
    return report
