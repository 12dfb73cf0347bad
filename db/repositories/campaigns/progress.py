"""A campaign's progress as the database counts it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.repositories.campaigns.common import BEFORE_FINANCE, case_t, ent_t, instr_t
from schemas.vocabulary import CaseStatus, PaymentStatus


def progress_counts(*, session: Session, campaign_id: int) -> dict[str, int]:
    """Cases of the campaign by status, with the reserved and paid amounts (the database's answer)."""
    rows = session.execute(
        select(
            case_t.c.status,
            func.count(),
            func.coalesce(func.sum(case_t.c.amount_fen), 0),
            func.coalesce(func.sum(case_t.c.paid_fen), 0),
        )
        .where(case_t.c.campaign_id == campaign_id)
        .group_by(case_t.c.status)
    ).all()
    by = {status: (int(n), int(amount), int(paid)) for status, n, amount, paid in rows}

    def n(*statuses: str) -> int:
        return sum(by.get(s, (0, 0, 0))[0] for s in statuses)

    reserved_statuses = [s for s in by if s not in (CaseStatus.MATCHED, CaseStatus.BUDGET_EXHAUSTED)]
    first = (
        select(instr_t.c.status, func.count())
        .join(case_t, case_t.c.id == instr_t.c.case_id)
        .where(case_t.c.campaign_id == campaign_id, instr_t.c.attempt == 1)
        .group_by(instr_t.c.status)
    )
    by_instruction = {status: int(count) for status, count in session.execute(first)}
    instructed = sum(by_instruction.values())
    # a failed first attempt counts as failed whatever its correction loop has done since
    failed = (
        by_instruction.get(PaymentStatus.FAILED, 0)
        + by_instruction.get(PaymentStatus.RETURNED, 0)
        + n(CaseStatus.NO_ACCOUNT)
    )
    return {
        "matched": sum(v[0] for v in by.values()),
        "reserved": n(*reserved_statuses),
        "exhausted": n(CaseStatus.BUDGET_EXHAUSTED),
        "consent_pending": n(CaseStatus.CONSENT_PENDING),
        "lapsed": n(CaseStatus.LAPSED, CaseStatus.DECLINED),
        "awaiting_finance": n(*BEFORE_FINANCE),
        "objected": n(CaseStatus.OBJECTED),
        "instructed": instructed,
        "paid": n(CaseStatus.PAID),
        "failed": failed,
        "amount_reserved_fen": sum(by.get(s, (0, 0, 0))[1] for s in reserved_statuses),
        "paid_fen": sum(v[2] for v in by.values()),
    }


def case_status_counts(*, session: Session, campaign_id: int) -> dict[str, int]:
    """Cases of the campaign by status."""
    rows = session.execute(
        select(case_t.c.status, func.count()).where(case_t.c.campaign_id == campaign_id).group_by(case_t.c.status)
    )
    return {s: int(n) for s, n in rows}


def cases_page(*, session: Session, campaign_id: int, status: str | None = None, limit: int = 50) -> list[Any]:
    """A page of the campaign's cases with their enterprise, optionally of one status."""
    query = (
        select(case_t.c.id, case_t.c.status, case_t.c.amount_fen, case_t.c.paid_fen, ent_t.c.uscc, ent_t.c.name)
        .join(ent_t, ent_t.c.id == case_t.c.enterprise_id)
        .where(case_t.c.campaign_id == campaign_id)
        .order_by(case_t.c.id)
        .limit(limit)
    )
    if status:
        query = query.where(case_t.c.status == status)
    return list(session.execute(query).all())
