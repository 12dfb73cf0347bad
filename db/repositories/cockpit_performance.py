"""Policy performance (政策执行绩效, Yichang rules art. 39): per fund item, the cases by status (from the case summary
when it can answer), the enterprises matched at listing, the budget, overdue stages, rejection reasons and the SMS
notices by status. services/cockpit_performance.py turns them into the funnel, rates and rankings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db.models import BudgetLine, Case, CaseTask, CockpitCaseSummary, FundItem, Notice, PolicyPush
from db.repositories import cockpit_summaries as summaries
from db.repositories.cockpit import fen_sum, overdue_task
from schemas.vocabulary import CaseStatus, PushKind


def items(*, session: Session, item_scope: ColumnElement[bool], fund_item_id: int | None,
          department_id: int | None) -> list[tuple[int, str, str, int]]:  # fmt: skip
    """(id, name, mode, department id) of the fund items in scope and filter."""
    stmt = select(FundItem.id, FundItem.name, FundItem.mode, FundItem.department_id).where(item_scope)
    if fund_item_id is not None:
        stmt = stmt.where(FundItem.id == fund_item_id)
    if department_id is not None:
        stmt = stmt.where(FundItem.department_id == department_id)
    return [tuple(r) for r in session.execute(stmt.order_by(FundItem.id))]  # type: ignore[misc]


def status_counts(*, session: Session, item_ids: list[int]) -> list[tuple[int, str, int, int]]:
    """(fund item, case status, cases, paid fen), from the case summary when it is usable."""
    if not item_ids:
        return []
    if summaries.usable(session=session, name=summaries.CASES):
        t = CockpitCaseSummary
        stmt = (
            select(t.fund_item_id, t.status, func.sum(t.cases), func.coalesce(func.sum(t.paid_fen), 0))
            .where(t.fund_item_id.in_(item_ids))
            .group_by(t.fund_item_id, t.status)
            .having(func.sum(t.cases) > 0)
        )
    else:
        stmt = (
            select(Case.fund_item_id, Case.status, func.count(Case.id), func.coalesce(fen_sum(Case.paid_fen), 0))
            .where(Case.fund_item_id.in_(item_ids))
            .group_by(Case.fund_item_id, Case.status)
        )
    return [(i, s, int(n), int(p)) for i, s, n, p in session.execute(stmt)]


def matched_at_listing(*, session: Session, item_ids: list[int]) -> dict[int, int]:
    """Enterprises the listing push matched (上架后推送, art. 26) per fund item."""
    if not item_ids:
        return {}
    stmt = (
        select(PolicyPush.fund_item_id, func.max(PolicyPush.matched))
        .where(PolicyPush.kind == PushKind.LISTED, PolicyPush.fund_item_id.in_(item_ids))
        .group_by(PolicyPush.fund_item_id)
    )
    return {i: int(n) for i, n in session.execute(stmt)}


def budgets(*, session: Session, item_ids: list[int]) -> dict[int, int]:
    """Total budget (fen) of every line of each fund item."""
    if not item_ids:
        return {}
    stmt = (
        select(BudgetLine.fund_item_id, fen_sum(BudgetLine.total_fen))
        .where(BudgetLine.fund_item_id.in_(item_ids))
        .group_by(BudgetLine.fund_item_id)
    )
    return {i: int(n) for i, n in session.execute(stmt)}


def overdue_stages(*, session: Session, item_ids: list[int], now: datetime) -> dict[int, int]:
    """Stages past their working-day deadline on each fund item's cases."""
    if not item_ids:
        return {}
    stmt = (
        select(Case.fund_item_id, func.count(CaseTask.id))
        .join(CaseTask, CaseTask.case_id == Case.id)
        .where(Case.fund_item_id.in_(item_ids), overdue_task(now))
        .group_by(Case.fund_item_id)
    )
    return {i: int(n) for i, n in session.execute(stmt)}


def rejection_reasons(*, session: Session, item_ids: list[int]) -> list[tuple[int, str | None, int]]:
    """(fund item, reason given, rejected cases) of the cases not approved (未通过)."""
    if not item_ids:
        return []
    stmt = (
        select(Case.fund_item_id, Case.outcome_reason, func.count(Case.id))
        .where(Case.fund_item_id.in_(item_ids), Case.status == CaseStatus.REJECTED)
        .group_by(Case.fund_item_id, Case.outcome_reason)
    )
    return [(i, r, int(n)) for i, r, n in session.execute(stmt)]


def notice_counts(*, session: Session, item_ids: list[int]) -> list[tuple[int, str, int]]:
    """(fund item, notice status, notices) of the SMS notices about each fund item: case notices (by their case) and
    policy pushes (by the item they name)."""
    if not item_ids:
        return []
    item = func.coalesce(Case.fund_item_id, Notice.fund_item_id).label("item")
    stmt = (
        select(item, Notice.status, func.count(Notice.id))
        .select_from(Notice)
        .outerjoin(Case, Case.id == Notice.case_id)
        .where(item.in_(item_ids))
        .group_by(item, Notice.status)
    )
    return [(i, s, int(n)) for i, s, n in session.execute(stmt)]
