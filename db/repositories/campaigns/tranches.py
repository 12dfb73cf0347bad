"""Waves (批次): who joins one, its publicity (公示), and its one finance decision applied to its cases."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db import bulk
from db.models import CampaignTranche
from db.repositories import audit, budget, cases
from db.repositories.campaigns.common import BEFORE_FINANCE, case_t, event, money, now, selected
from db.repositories.campaigns.notify import queue_notices
from db.repositories.campaigns.registry import Context
from rules import sms_templates
from schemas.vocabulary import AuditKind, CaseStatus, EventKind, FinanceStatus, NoticeStage, SystemActor


def open_tranche(*, session: Session, ctx: Context, number: int) -> CampaignTranche:
    """The wave `number`: every case ready to pay and not yet in a wave joins it; totals fixed once."""
    found = session.scalar(
        select(CampaignTranche).where(CampaignTranche.campaign_id == ctx.campaign.id, CampaignTranche.number == number)
    )
    if found:
        return found
    status = (
        CaseStatus.READY if ctx.config.no_application and ctx.config.no_application.consent else CaseStatus.RESERVED
    )
    session.execute(
        update(case_t)
        .where(case_t.c.campaign_id == ctx.campaign.id, case_t.c.status == status, case_t.c.tranche.is_(None))
        .values(tranche=number)
    )
    count, amount = session.execute(
        select(func.count(), func.coalesce(func.sum(case_t.c.amount_fen), 0)).where(
            case_t.c.campaign_id == ctx.campaign.id, case_t.c.tranche == number
        )
    ).one()
    tranche = CampaignTranche(
        campaign_id=ctx.campaign.id,
        number=number,
        cases=int(count),
        amount_fen=int(amount),
        finance_status=FinanceStatus.PENDING,
    )
    session.add(tranche)
    ctx.campaign.phase = "paying"
    session.flush()
    return tranche


def tranche(*, session: Session, campaign_id: int, number: int) -> CampaignTranche | None:
    """Wave `number` of the campaign, if it is open."""
    return session.scalar(
        select(CampaignTranche).where(CampaignTranche.campaign_id == campaign_id, CampaignTranche.number == number)
    )


def tranches(*, session: Session, campaign_id: int) -> list[CampaignTranche]:
    """The campaign's waves in order."""
    return list(
        session.scalars(
            select(CampaignTranche).where(CampaignTranche.campaign_id == campaign_id).order_by(CampaignTranche.number)
        )
    )


def set_publicity(*, session: Session, row: CampaignTranche, until: date, due_at: datetime) -> CampaignTranche:
    """Fix the publicity period of a wave once (a retried activity keeps the first)."""
    if row.publicity_until is None:
        row.publicity_until, row.publicity_due_at = until, due_at
        session.flush()
    return row


def publicity_batch(
    *, session: Session, ctx: Context, row: CampaignTranche, limit: int, beat: bulk.Beat = bulk.no_beat
) -> int:
    """Cases of the wave go on the publicity list (公示), each told its amount and the end of the period."""
    rows = session.execute(
        select(case_t.c.id, case_t.c.enterprise_id, case_t.c.amount_fen, case_t.c.status)
        .where(
            case_t.c.campaign_id == ctx.campaign.id,
            case_t.c.tranche == row.number,
            case_t.c.status.in_((CaseStatus.RESERVED, CaseStatus.READY)),
        )
        .order_by(case_t.c.id)
        .limit(limit)
    ).all()
    until = row.publicity_until
    assert until is not None
    events = [
        event(
            cid,
            st,
            CaseStatus.PUBLICITY,
            "publicity",
            EventKind.PUBLICITY_STARTED,
            reason=f"拟兑付名单公示至 {until}",
            data={"until": until.isoformat(), "tranche": row.number},
        )
        for cid, _, _, st in rows
    ]
    cases.record_many(session=session, beat=beat, events=events)
    queue_notices(
        session=session,
        beat=beat,
        ctx=ctx,
        stage=NoticeStage.PUBLICITY,
        template="publicity_started",
        rows=[(cid, eid, money(amt) | {"deadline": sms_templates.format_date(until)}) for cid, eid, amt, _ in rows],
    )
    return len(rows)


def objected(*, session: Session, campaign_id: int, number: int) -> list[int]:
    """Cases of a wave taken off it by an objection."""
    return list(
        session.scalars(
            select(case_t.c.id).where(
                case_t.c.campaign_id == campaign_id, case_t.c.tranche == number, case_t.c.status == CaseStatus.OBJECTED
            )
        )
    )


def record_finance(*, session: Session, row: CampaignTranche, approve: bool, actor: str, note: str) -> CampaignTranche:
    """The one finance decision of a wave; a repeated call keeps the first decision."""
    if row.finance_status == FinanceStatus.PENDING:
        row.finance_status = FinanceStatus.APPROVED if approve else FinanceStatus.REJECTED
        row.finance_actor, row.finance_note, row.finance_at = actor, note, now()
        if automatic(row):
            # The automatic approval of a wave is one decision: it is chained once here, and each case's payment
            # event names the wave, instead of one approval event per case (a hundred thousand in a large wave).
            audit.append(
                session=session,
                kind=AuditKind.DECISION,
                actor=actor,
                subject=f"campaign:{row.campaign_id}:tranche:{row.number}",
                data={"approve": approve, "note": note, "tranche": row.number, "tranche_cases": row.cases,
                      "tranche_amount_fen": row.amount_fen, "decided_at": row.finance_at.isoformat()},
            )  # fmt: skip
        session.flush()
    return row


def automatic(row: CampaignTranche) -> bool:
    """The wave was approved automatically (the standard is fully quantified): no approval event per case."""
    return row.finance_status == FinanceStatus.APPROVED and row.finance_actor == SystemActor.AUTO


def finance_batch(
    *, session: Session, ctx: Context, row: CampaignTranche, limit: int, case_ids=None, beat: bulk.Beat = bulk.no_beat
) -> int:
    """Apply the wave's finance decision to its cases: approved (to be paid) or rejected (budget released)."""
    query = select(case_t.c.id, case_t.c.status).where(
        case_t.c.campaign_id == ctx.campaign.id, case_t.c.tranche == row.number, case_t.c.status.in_(BEFORE_FINANCE)
    )
    rows = session.execute(selected(query, case_ids).order_by(case_t.c.id).limit(limit)).all()
    cases.record_many(session=session, beat=beat, events=[finance_event(row, cid, st) for cid, st in rows])
    if row.finance_status != FinanceStatus.APPROVED:
        budget.release_many(session=session, beat=beat, case_ids=[cid for cid, _ in rows])
    return len(rows)


def finance_event(row: CampaignTranche, case_id: int, status: str) -> cases.NewEvent:
    """The wave's decision as one case's event (with the wave's totals the decision was made on)."""
    approve = row.finance_status == FinanceStatus.APPROVED
    actor = row.finance_actor or SystemActor.FINANCE
    words = "财政审核通过（标准完全量化，自动审核）" if actor == SystemActor.AUTO else "财政审核通过"
    return event(
        case_id,
        status,
        CaseStatus.APPROVED if approve else CaseStatus.REJECTED,
        "finance",
        EventKind.FINANCE_APPROVED if approve else EventKind.FINANCE_REJECTED,
        reason=words if approve else f"财政审核不予拨付：{row.finance_note or ''}",
        data={"tranche": row.number, "tranche_cases": row.cases, "tranche_amount_fen": row.amount_fen},
        actor=actor,
    )
