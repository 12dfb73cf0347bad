"""Objections during publicity (公示异议): filing takes a case off its wave; the ruling puts it back or rejects it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import Case
from db.repositories import budget, cases
from db.repositories.campaigns.registry import Context
from db.repositories.campaigns.tranches import tranche
from schemas.vocabulary import CaseStatus, EventKind, FinanceStatus


def file_objection(*, session: Session, case: Case, objector_name: str, reason: str, actor: str) -> None:
    """An objection during publicity takes the case off the wave until a department rules on it."""
    cases.record(
        session=session,
        case=case,
        key="objection",
        kind=EventKind.OBJECTION_FILED,
        actor=actor,
        to_status=CaseStatus.OBJECTED,
        reason=f"收到实名异议（{objector_name[0]}**）：{reason}",
    )


def rule_objection(*, session: Session, ctx: Context, case: Case, upheld: bool, actor: str, reason: str) -> str:
    """Upheld: the case is rejected and its budget released. Dismissed: it rejoins its wave, or, when the
    wave's finance decision is already made, follows that decision. Returns the case's new status."""
    if case.status != CaseStatus.OBJECTED:
        return case.status
    row = tranche(session=session, campaign_id=ctx.campaign.id, number=case.tranche or 0)
    if upheld:
        to = CaseStatus.REJECTED
    elif row is None or row.finance_status == FinanceStatus.PENDING:
        to = CaseStatus.PUBLICITY
    else:
        to = CaseStatus.APPROVED if row.finance_status == FinanceStatus.APPROVED else CaseStatus.REJECTED
    case.outcome_reason = reason if to == CaseStatus.REJECTED else None
    cases.record(
        session=session,
        case=case,
        key="objection_ruling",
        kind=EventKind.OBJECTION_UPHELD if upheld else EventKind.OBJECTION_DISMISSED,
        actor=actor,
        to_status=to,
        reason=reason,
    )
    if to == CaseStatus.REJECTED:
        budget.release_many(session=session, case_ids=[case.id])
    return to
