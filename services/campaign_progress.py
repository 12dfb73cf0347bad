"""A campaign's progress counted in the database: shared by the campaigns service and the campaign activities
(kept apart from services/campaigns.py, which starts workflows, so activities can use it without an import cycle)."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.orm import Session

from db.models import CampaignTranche
from db.repositories import budget
from db.repositories import campaigns as repo
from schemas.campaigns import CampaignProgress, TrancheInfo
from schemas.vocabulary import CampaignPhase, FinanceStatus


def tranche_view(row: CampaignTranche) -> TrancheInfo:
    """A wave as the progress shows it; moments with their offset."""
    due = row.publicity_due_at
    return TrancheInfo(
        number=row.number,
        cases=row.cases,
        amount_fen=row.amount_fen,
        publicity_until=row.publicity_until,
        publicity_due_at=due if due is None or due.tzinfo else due.replace(tzinfo=UTC),
        finance_status=row.finance_status,
    )


def counted_progress(*, session: Session, campaign_id: int) -> CampaignProgress:
    """The campaign's progress counted in the database (the source of truth for per-case state)."""
    ctx = repo.context(session=session, campaign_id=campaign_id)
    counts = repo.progress_counts(session=session, campaign_id=campaign_id)
    totals = budget.totals(session=session, fund_item_id=ctx.item.id)
    rows = repo.tranches(session=session, campaign_id=campaign_id)
    pending = [r.number for r in rows if r.finance_status == FinanceStatus.PENDING]
    return CampaignProgress(
        campaign_id=campaign_id,
        fund_item_code=ctx.item.code,
        fund_item_name=ctx.item.name,
        kind=ctx.campaign.kind,
        phase=ctx.campaign.phase,
        phase_label=CampaignPhase.label_of(ctx.campaign.phase),
        budget_total_fen=totals["total_fen"],
        budget_left_fen=totals["available_fen"],
        tranche=max((r.number for r in rows), default=0),
        awaiting_tranche=pending[0] if pending else None,
        tranches=[tranche_view(r) for r in rows],
        consent_deadline=ctx.campaign.consent_deadline,
        finished=ctx.campaign.finished_at is not None,
        **counts,
    )
