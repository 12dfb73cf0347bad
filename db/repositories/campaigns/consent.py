"""Consent (意愿确认): the deadline, the requests, the answers, and the waves that collect them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from db import bulk
from db.models import Case
from db.repositories import budget, cases
from db.repositories.campaigns.common import case_t, event, money, now
from db.repositories.campaigns.notify import queue_notices
from db.repositories.campaigns.registry import Context
from rules import sms_templates
from schemas.vocabulary import CaseStatus, ConsentStatus, EventKind, NoticeStage


def open_consent(*, session: Session, ctx: Context, deadline: date, due_at: datetime) -> tuple[date, datetime]:
    """Fix the consent deadline once (a retried activity keeps the first)."""
    campaign = ctx.campaign
    if campaign.consent_deadline is None:
        campaign.consent_deadline, campaign.consent_due_at = deadline, due_at
        campaign.phase = "consent"
        session.flush()
    due = campaign.consent_due_at
    assert due is not None and campaign.consent_deadline is not None
    return campaign.consent_deadline, due if due.tzinfo else due.replace(tzinfo=UTC)


def consent_notify_batch(*, session: Session, ctx: Context, limit: int, beat: bulk.Beat = bulk.no_beat) -> int:
    """Reserved cases → consent_pending, each with its consent notice and deadline."""
    rows = session.execute(
        select(case_t.c.id, case_t.c.enterprise_id, case_t.c.amount_fen)
        .where(case_t.c.campaign_id == ctx.campaign.id, case_t.c.status == CaseStatus.RESERVED)
        .order_by(case_t.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    deadline = ctx.campaign.consent_deadline
    assert deadline is not None
    consent = ctx.config.no_application.consent if ctx.config.no_application else None
    pay_on_file = bool(consent and consent.on_no_answer == "pay_on_file")
    policy = "按档案登记账户兑付" if pay_on_file else "视为放弃"
    events = [
        event(
            cid,
            CaseStatus.RESERVED,
            CaseStatus.CONSENT_PENDING,
            "consent_requested",
            EventKind.CONSENT_REQUESTED,
            reason=f"请于 {deadline} 前确认兑付意愿及收款账户，逾期{policy}",
            data={"deadline": deadline.isoformat()},
        )
        for cid, _, _ in rows
    ]
    cases.record_many(session=session, beat=beat, events=events, extra={"consent_status": ConsentStatus.PENDING})
    queue_notices(
        session=session,
        beat=beat,
        ctx=ctx,
        stage=NoticeStage.CONSENT,
        template="consent_requested_pay_on_file" if pay_on_file else "consent_requested",
        rows=[(cid, eid, money(amt) | {"deadline": sms_templates.format_date(deadline)}) for cid, eid, amt in rows],
    )
    return len(rows)


def record_consent(
    *,
    session: Session,
    case: Case,
    accept: bool,
    actor: str,
    acct_enc: str | None = None,
    acct_masked: str | None = None,
    acct_name: str | None = None,
    bank_name: str | None = None,
    bank_code: str | None = None,
) -> None:
    """An enterprise's answer, recorded in the database; the next wave collects it."""
    case.consent_status = ConsentStatus.CONFIRMED if accept else ConsentStatus.DECLINED
    case.consent_at = now()
    if accept and acct_enc:
        case.consent_acct_enc, case.consent_acct_masked = acct_enc, acct_masked
        case.consent_acct_name, case.consent_bank_name, case.consent_bank_code = acct_name, bank_name, bank_code
    cases.record(
        session=session,
        case=case,
        key="consent_answer",
        kind=EventKind.CONSENT_CONFIRMED if accept else EventKind.CONSENT_DECLINED,
        actor=actor,
        reason="企业确认兑付意愿" + ("及收款账户" if acct_enc else "") if accept else "企业放弃本次兑付",
        data={"acct_masked": acct_masked} if acct_masked else None,
    )


def collect_batch(
    *, session: Session, ctx: Context, final: bool, limit: int, beat: bulk.Beat = bulk.no_beat
) -> tuple[int, int]:
    """One wave: confirmed cases become ready to pay; declined ones lapse; at the deadline the rest follow
    the configured policy (pay_on_file: ready with the account on file; lapse: closed, budget released).
    Returns (ready, lapsed)."""
    consent = ctx.config.no_application.consent if ctx.config.no_application else None
    pending_ok = final and consent is not None and consent.on_no_answer == "pay_on_file"
    answered = case_t.c.consent_status.in_((ConsentStatus.CONFIRMED, ConsentStatus.DECLINED))
    rows = session.execute(
        select(case_t.c.id, case_t.c.consent_status)
        .where(
            case_t.c.campaign_id == ctx.campaign.id,
            case_t.c.status == CaseStatus.CONSENT_PENDING,
            answered if not final else literal(True),
        )
        .order_by(case_t.c.id)
        .limit(limit)
    ).all()
    ready, lapsed, release = [], [], []
    for cid, answer in rows:
        if answer == ConsentStatus.CONFIRMED:
            ready.append(
                event(
                    cid, CaseStatus.CONSENT_PENDING, CaseStatus.READY, "consent_collected", EventKind.CONSENT_CONFIRMED
                )
            )
        elif answer == ConsentStatus.DECLINED:
            lapsed.append(
                event(
                    cid,
                    CaseStatus.CONSENT_PENDING,
                    CaseStatus.DECLINED,
                    "consent_collected",
                    EventKind.CONSENT_DECLINED,
                    reason="企业放弃本次兑付，额度释放",
                )
            )
            release.append(cid)
        elif pending_ok:
            ready.append(
                event(
                    cid,
                    CaseStatus.CONSENT_PENDING,
                    CaseStatus.READY,
                    "consent_collected",
                    EventKind.CONSENT_ON_FILE,
                    reason="逾期未确认，按企业档案登记的账户兑付",
                )
            )
        else:
            lapsed.append(
                event(
                    cid,
                    CaseStatus.CONSENT_PENDING,
                    CaseStatus.LAPSED,
                    "consent_collected",
                    EventKind.CONSENT_LAPSED,
                    reason="逾期未确认，视为放弃，额度释放",
                )
            )
            release.append(cid)
    on_file = [e for e in ready if e.kind == EventKind.CONSENT_ON_FILE]
    cases.record_many(session=session, beat=beat, events=[e for e in ready if e.kind != EventKind.CONSENT_ON_FILE])
    cases.record_many(session=session, beat=beat, events=on_file, extra={"consent_status": ConsentStatus.ON_FILE})
    lapsed_pending = [e for e in lapsed if e.to_status == CaseStatus.LAPSED]
    cases.record_many(session=session, beat=beat, events=lapsed_pending, extra={"consent_status": ConsentStatus.LAPSED})
    cases.record_many(session=session, beat=beat, events=[e for e in lapsed if e.to_status != CaseStatus.LAPSED])
    budget.release_many(session=session, beat=beat, case_ids=release)
    return len(ready), len(lapsed)
