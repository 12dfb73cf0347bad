"""Notices for people: an enterprise's push preference and notice list, the three policy pushes (Yichang rules
art. 26, "政策短信分三次推送"), SMS delivery receipts, and the SMS statistics and failures per fund item.

Pushes are marketing-type (category `push`): an enterprise that opted out gets none (a push queued before it opted out
is withdrawn); case notices are never optional. The listing push reaches every matched enterprise, so listing only
records that it is due (`schedule_listing_push`) and the SMS dispatcher round expands it (`expand_listing_pushes`)
with one INSERT … SELECT in its own transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Enterprise, FundItem, Notice
from db.repositories import enterprises, lookups, pushes
from db.repositories import notices as notices_repo
from db.repositories import sms as sms_repo
from gateways.sms.base import Receipt, Uplink
from rules import sms_templates
from rules.sms import PhoneError, opt_out_word, parse_phone, phone_hash
from schemas.localtime import format_local
from schemas.notices import NoticeRow, PushCountsOut, PushPreferenceOut
from schemas.vocabulary import AuditKind, FundItemMode, FundItemStatus, NoticeCategory, NoticeStatus, PushKind, Role
from services import audit
from services import scope as scopes
from services.errors import Forbidden, NotFound
from services.scope import Scope

log = logging.getLogger("zhida.sms")

OPT_OUT_NOTE = "已退订政策推送短信；办件进度通知（受理、审核、拨付、退票等）不受影响，照常发送。"
OPT_IN_NOTE = "已开启政策推送短信：新上架且符合条件的政策将短信告知。"
EMPTY_COUNTS = {"pushes": 0, "matched": 0, "queued": 0, "opted_out": 0, "no_phone": 0}
LISTING_PUSH_NOTE = "符合条件的企业将收到政策推送短信（系统在后台逐一推送，可在短信统计中查看）"


# -- an enterprise's notices and preference -------------------------------------------------------------------------


def notice_row(n: Notice) -> NoticeRow:
    """A notice as people read it: labels, local time, the reason when it did not arrive."""
    category = n.category or NoticeCategory.CASE
    return NoticeRow(
        id=n.id,
        case_id=n.case_id,
        category=category,
        category_label=NoticeCategory.label_of(category),
        template_key=n.template_key,
        content=n.content,
        phone_masked=n.phone_masked,
        status=n.status,
        status_label=NoticeStatus.label_of(n.status),
        created_at=n.created_at,
        created_at_beijing=format_local(n.created_at),
        fail_reason=n.fail_reason if n.status in (NoticeStatus.FAILED, NoticeStatus.CANCELLED) else None,
    )


def enterprise_in_scope(*, session: Session, scope: Scope, uscc: str) -> Enterprise:
    """The enterprise by USCC; an enterprise caller reaches only itself."""
    enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
    if enterprise is None or (scope.role == Role.ENTERPRISE and scope.enterprise_id != enterprise.id):
        raise NotFound(f"企业 {uscc} 不存在", field="uscc", rule="in_scope")  # another's is not found either
    return enterprise


def preference_of(enterprise: Enterprise, withdrawn: int = 0) -> PushPreferenceOut:
    return PushPreferenceOut(
        uscc=enterprise.uscc,
        push_opt_out=bool(enterprise.push_opt_out),
        opted_out_at=enterprise.push_opted_out_at,
        withdrawn=withdrawn,
        note=OPT_OUT_NOTE if enterprise.push_opt_out else OPT_IN_NOTE,
    )


def get_preference(*, session: Session, scope: Scope, uscc: str) -> PushPreferenceOut:
    """Whether the enterprise receives policy pushes."""
    return preference_of(enterprise_in_scope(session=session, scope=scope, uscc=uscc))


def change_preference(*, session: Session, scope: Scope, uscc: str, opt_out: bool) -> PushPreferenceOut:
    """The enterprise itself (or an administrator on its request) opts out or back in; opting out withdraws pushes
    still waiting (never case notices)."""
    if scope.role not in (Role.ENTERPRISE, Role.ADMIN):
        raise Forbidden("只有企业本身可以设置政策推送", field="uscc", rule="owner_enterprise")
    enterprise = enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    waiting = 0
    before = bool(enterprise.push_opt_out)
    if opt_out and not before:
        waiting = lookups.queued_pushes(session=session, enterprise_id=enterprise.id)
    if pushes.set_opt_out(session=session, enterprise=enterprise, opt_out=opt_out, now=datetime.now(UTC)):
        # The change and its audit record commit together (choosing what one already has changes nothing).
        audit.record(session=session, kind=AuditKind.PUSH_PREFERENCE_CHANGED, actor=scope.actor,
                     subject=f"enterprise:{enterprise.uscc}",
                     data={"uscc": enterprise.uscc, "push_opt_out": {"from": before, "to": opt_out},
                           "withdrawn": waiting})  # fmt: skip
    return preference_of(enterprise, waiting)


def visible_notices(*, session: Session, scope: Scope, enterprise: Enterprise) -> list[Notice]:
    """The enterprise's notices the caller may see: all for the enterprise itself and administrators; for staff,
    the notices of cases and pushes of fund items in their scope."""
    if scope.role in (Role.ENTERPRISE, Role.ADMIN):
        return notices_repo.for_enterprise(session=session, enterprise_id=enterprise.id)
    condition = lookups.notices_in_scope(scopes.case_filter(scope), scopes.item_filter(scope))
    return lookups.notices_for_enterprise(session=session, enterprise_id=enterprise.id, condition=condition)


def notice_list(*, session: Session, scope: Scope, uscc: str) -> list[NoticeRow]:
    """An enterprise's notices, newest first (phone numbers masked, local time)."""
    enterprise = enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    return [notice_row(n) for n in visible_notices(session=session, scope=scope, enterprise=enterprise)]


@dataclass(frozen=True)
class NoticesPage:
    enterprise: Enterprise
    rows: list[NoticeRow]
    counts: dict[str, int]
    preference: PushPreferenceOut
    can_change: bool


def notices_page(*, session: Session, scope: Scope, uscc: str) -> NoticesPage:
    """The enterprise's notice page: the list, counts by outcome and the push switch."""
    enterprise = enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    rows = [notice_row(n) for n in visible_notices(session=session, scope=scope, enterprise=enterprise)]
    shown = (NoticeStatus.SENT, NoticeStatus.DELIVERED, NoticeStatus.FAILED)
    counts = {status.label: sum(1 for r in rows if r.status == status) for status in shown}
    can_change = scope.role in (Role.ENTERPRISE, Role.ADMIN)
    return NoticesPage(enterprise, rows, counts, preference_of(enterprise), can_change)


# -- the three policy pushes ----------------------------------------------------------------------------------------


@dataclass
class PushReport:
    pushes: int = 0
    matched: int = 0
    queued: int = 0
    opted_out: int = 0
    no_phone: int = 0

    def counts(self) -> PushCountsOut:
        return PushCountsOut(matched=self.matched, queued=self.queued, opted_out=self.opted_out, no_phone=self.no_phone)


def push_on_registered(*, session: Session, enterprise: Enterprise, actor: str = "system") -> PushReport:
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
                category=NoticeCategory.PUSH,
            )
            report.queued = int(created)
    pushes.record(
        session=session,
        rows=[{"key": key, "kind": PushKind.REGISTERED, "enterprise_id": enterprise.id,
               "fund_item_id": first.id if first else None, "matched": report.matched, "queued": report.queued,
               "opted_out": report.opted_out, "no_phone": report.no_phone, "actor": actor}],
    )  # fmt: skip
    return report


def schedule_listing_push(*, session: Session, fund_item_id: int, actor: str) -> None:
    """Record that the listing push of a just-listed item is due; the SMS dispatcher round sends it to every matched
    enterprise in its own transaction (`expand_listing_pushes`), so listing does not wait for it."""
    pushes.schedule_listing(session=session, fund_item_id=fund_item_id, actor=actor)


def push_on_listed(*, session: Session, fund_item_id: int, actor: str = "system") -> PushReport:
    """A push to every enterprise the listed version matches, in one INSERT … SELECT (dedupe key
    push:listed:{item}:{enterprise}, so listing a new version pushes only to newly matched enterprises)."""
    items = pushes.listed_items(session=session, fund_item_id=fund_item_id)
    if not items:
        return PushReport()
    item = items[0]
    if item.mode == FundItemMode.NO_APPLICATION or item.window_end is None:
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
            rows=[{"key": key, "kind": PushKind.LISTED, "fund_item_id": item.id, "matched": counts.matched,
                   "queued": queued, "opted_out": counts.opted_out, "no_phone": counts.no_phone, "actor": actor}],
        )  # fmt: skip
    else:  # pushed again (enterprises registered or updated since): the figures as of now, queued in total
        earlier.matched, earlier.opted_out, earlier.no_phone = counts.matched, counts.opted_out, counts.no_phone
        earlier.queued += queued
    log.info("policy push listed item=%s matched=%s queued=%s", item.code, counts.matched, queued)
    return PushReport(1, counts.matched, queued, counts.opted_out, counts.no_phone)


def listing_pushes_due(*, session: Session) -> bool:
    """Whether a listing push waits for the dispatcher."""
    return pushes.any_listing_due(session=session)


def expand_listing_pushes(*, session: Session, now: datetime | None = None, limit: int = 20) -> PushReport:
    """The dispatcher's part of the listing push: expand every due listing push (one INSERT … SELECT each)."""
    report = PushReport()
    for due in pushes.listing_due(session=session, limit=limit):
        pushed = push_on_listed(session=session, fund_item_id=due.fund_item_id, actor=due.actor)
        due.done_at = now or datetime.now(UTC)
        report.pushes += pushed.pushes
        report.matched += pushed.matched
        report.queued += pushed.queued
        report.opted_out += pushed.opted_out
        report.no_phone += pushed.no_phone
    return report


def queue_paid_pushes(
    *, session: Session, now: datetime, delay_seconds: float = 300.0, limit: int = 1000
) -> PushReport:
    """At payout: for cases paid at least `delay_seconds` ago (after their own "paid" notice), a push telling the
    enterprise how many more listed policies it matches; none when it matches no other."""
    report = PushReport()
    due = pushes.paid_cases_due(session=session, paid_before=now - timedelta(seconds=delay_seconds), limit=limit)
    if not due:
        return report
    items = pushes.listed_items(session=session)
    matched = pushes.matching_items(session=session, enterprise_ids=sorted({c.enterprise_id for c in due}), items=items)
    queued: list[dict] = []
    ledger: list[dict] = []
    for paid in due:
        others = [i for i in matched.get(paid.enterprise_id, []) if i != paid.fund_item_id]
        row = {"key": f"paid:{paid.case_id}", "kind": PushKind.PAID, "fund_item_id": paid.fund_item_id,
               "enterprise_id": paid.enterprise_id, "case_id": paid.case_id, "matched": len(others)}  # fmt: skip
        if others and paid.opted_out:
            row["opted_out"] = 1
        elif others and not paid.phone_enc:
            row["no_phone"] = 1
        elif others:
            params = sms_templates.stage_params(
                enterprise=paid.enterprise_name, item=paid.item_name, amount_fen=paid.paid_fen, count=len(others)
            )
            queued.append(
                {
                    "dedupe_key": f"push:paid:{paid.case_id}",
                    "enterprise_id": paid.enterprise_id,
                    "template_key": "policy_push_paid",
                    "params": params,
                    "content": sms_templates.render("policy_push_paid", params),
                    "phone_enc": paid.phone_enc,
                    "phone_masked": paid.phone_masked,
                    "fund_item_id": paid.fund_item_id,
                    "category": NoticeCategory.PUSH,
                }
            )
            row["queued"] = 1
        ledger.append(row)
    notices_repo.enqueue_many(session=session, rows=queued)
    pushes.record(session=session, rows=ledger)
    report.pushes = len(ledger)
    report.matched = sum(r["matched"] for r in ledger)
    report.queued = len(queued)
    report.opted_out = sum(r.get("opted_out", 0) for r in ledger)
    report.no_phone = sum(r.get("no_phone", 0) for r in ledger)
    return report


def _item_in_scope(*, session: Session, scope: Scope, fund_item_id: int) -> FundItem:
    """A fund item the caller may see (department: its own; finance: its region), else not found."""
    if scope.role == Role.ENTERPRISE:
        raise Forbidden("企业无权查看资金事项的推送和短信统计", rule="role")
    scopes.require_item(session=session, scope=scope, fund_item_id=fund_item_id)
    item = lookups.fund_item(session=session, fund_item_id=fund_item_id)
    if item is None:
        raise NotFound(f"资金事项 {fund_item_id} 不存在", field="fund_item_id")
    return item


def push_summary(*, session: Session, scope: Scope, fund_item_id: int | None = None) -> dict:
    """Per push kind, what was pushed: for one fund item, or every item in the caller's scope."""
    if fund_item_id is not None:
        _item_in_scope(session=session, scope=scope, fund_item_id=fund_item_id)
    elif scope.role == Role.DEPARTMENT:
        raise Forbidden("主管部门请按资金事项查询（fund_item_id）", field="fund_item_id")
    items = None if scope.role == Role.ADMIN or fund_item_id is not None else scopes.item_filter(scope)
    by_kind = pushes.summary(session=session, fund_item_id=fund_item_id, items=items)
    kinds = [{"kind": k.value, "label": k.label, **by_kind.get(k.value, EMPTY_COUNTS)} for k in PushKind]
    return {"fund_item_id": fund_item_id, "kinds": kinds}


def push_listed_again(*, session: Session, scope: Scope, fund_item_id: int) -> dict:
    """Push a listed item again to enterprises that match it now and were not pushed yet; the dispatcher sends it."""
    item = _item_in_scope(session=session, scope=scope, fund_item_id=fund_item_id)
    if item.status != FundItemStatus.LISTED:
        raise NotFound(f"资金事项 {fund_item_id} 未上架，不能推送", field="fund_item_id")
    schedule_listing_push(session=session, fund_item_id=item.id, actor=scope.actor)
    audit.record(session=session, kind=AuditKind.PUSH_LISTED_AGAIN, actor=scope.actor, subject=f"fund_item:{item.code}",
                 data={"fund_item_id": item.id, "code": item.code, "listed_version": item.listed_version})  # fmt: skip
    return {"fund_item_id": item.id, "scheduled": True, "note": LISTING_PUSH_NOTE}


# -- SMS receipts and statistics ------------------------------------------------------------------------------------


@dataclass
class ReceiptReport:
    applied: int = 0
    duplicate: int = 0
    unknown: int = 0


def apply_receipts(*, session: Session, provider: str, receipts: list[Receipt]) -> ReceiptReport:
    """Set delivered/failed from delivery reports; a resent or stale report changes nothing."""
    report = ReceiptReport()
    for receipt in receipts:
        notice = sms_repo.get(session=session, notice_id=receipt.notice_id, lock=True) if receipt.notice_id else None
        if (
            notice is not None
            and receipt.provider_msg_id
            and notice.provider_msg_id not in (None, receipt.provider_msg_id)
        ):
            notice = None  # an OutId that is not ours (another system on the same account)
        if notice is None and receipt.provider_msg_id:
            notice = sms_repo.by_provider_msg_id(
                session=session, provider=provider, provider_msg_id=receipt.provider_msg_id
            )
        if notice is None:
            report.unknown += 1
            continue
        if notice.status in (NoticeStatus.DELIVERED, NoticeStatus.FAILED) and notice.receipt_code is not None:
            report.duplicate += 1  # providers resend: the first final report wins
            continue
        notice.receipt_code = (receipt.code or "")[:64]
        notice.provider_msg_id = notice.provider_msg_id or receipt.provider_msg_id
        notice.next_attempt_at = None
        if receipt.delivered:
            notice.status = NoticeStatus.DELIVERED
            reported = receipt.reported_at or datetime.now(UTC)
            notice.delivered_at = (reported if reported.tzinfo else reported.replace(tzinfo=UTC)).astimezone(UTC)
            notice.fail_reason = None
        else:
            notice.status = NoticeStatus.FAILED
            notice.fail_reason = f"运营商回执：{receipt.code}{'（' + receipt.message + '）' if receipt.message else ''}"
        report.applied += 1
    return report


def _stats_items(scope: Scope):
    return None if scope.role == Role.ADMIN else scopes.item_filter(scope)


def sms_stats(*, session: Session, scope: Scope, category: str | None = None) -> list[dict]:
    """Per fund item in the caller's scope: notices queued, sent, delivered, failed, withdrawn."""
    if scope.role == Role.ENTERPRISE:
        raise Forbidden("企业无权查看短信统计", rule="role")
    return sms_repo.stats(session=session, category=category, items=_stats_items(scope))


@dataclass
class Failures:
    item: FundItem
    rows: list[tuple[NoticeRow, Enterprise | None]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def sms_failures(*, session: Session, scope: Scope, fund_item_id: int) -> Failures:
    """The notices of one fund item that failed, to follow up, with their enterprises."""
    item = _item_in_scope(session=session, scope=scope, fund_item_id=fund_item_id)
    found = sms_repo.failures(session=session, fund_item_id=fund_item_id)
    by_id = lookups.enterprise_names_by_id(session=session, ids=[n.enterprise_id for n in found])
    return Failures(item, [(notice_row(n), by_id.get(n.enterprise_id)) for n in found], found)


def failures_out(failures: Failures) -> dict:
    """The failure list as the API returns it."""
    return {
        "fund_item_id": failures.item.id,
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
            for n in failures.notices
        ],
    }


@dataclass(frozen=True)
class StatsPage:
    rows: list[dict]
    kinds: list[tuple[str, dict]]


def stats_page(*, session: Session, scope: Scope) -> StatsPage:
    """The statistics page: per fund item, and (finance and administrators) the three pushes in total."""
    rows = sms_stats(session=session, scope=scope)
    kinds: list[tuple[str, dict]] = []
    if scope.role != Role.DEPARTMENT:
        summary = pushes.summary(session=session, items=_stats_items(scope))
        kinds = [(k.label, summary.get(k.value, EMPTY_COUNTS)) for k in PushKind]
    return StatsPage(rows, kinds)


# -- replies from phones (上行短信) ---------------------------------------------------------------------------------


@dataclass
class ReplyReport:
    received: int = 0
    opted_out: int = 0
    duplicate: int = 0
    ignored: int = 0  # not a phone number we could read
    cancelled: int = 0  # queued pushes to the numbers that opted out


def apply_replies(*, session: Session, provider: str, replies: list[Uplink], hash_key: str) -> ReplyReport:
    """Keep each reply; R / TD / 退订 opts the number out of pushes (the reply row is the record of when and how),
    and the pushes already queued for it are cancelled. Case notices are never optional and are not touched."""
    report = ReplyReport()
    for reply in replies:
        try:
            phone = parse_phone(reply.phone)
        except PhoneError:
            report.ignored += 1
            continue
        hashed = phone_hash(hash_key, phone.e164)
        word = opt_out_word(reply.content)
        _, new = sms_repo.record_reply(
            session=session,
            provider=provider,
            phone_hash=hashed,
            phone_masked=phone.masked,
            content=reply.content,
            opt_out_word=word,
            sign_name=reply.sign_name,
            received_at=reply.received_at,
        )
        if not new:
            report.duplicate += 1
            continue
        report.received += 1
        if word:
            report.opted_out += 1
            report.cancelled += sms_repo.cancel_queued_pushes(
                session=session, phone_hash=hashed, reason=f"{phone.masked}已回复“{word}”退订政策推送"
            )
            log.info("sms_opt_out provider=%s phone=%s word=%s", provider, phone.masked, word)
    return report
