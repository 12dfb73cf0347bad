"""The department workbench's reads: a department's work list joined with the case, its enterprise and fund item."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Case, CaseTask, Enterprise, FundItem


def _task_query(department: str, status: str | None, fund_item_code: str | None, stage_key: str | None):
    stmt = (
        select(CaseTask, Case, FundItem, Enterprise)
        .join(Case, Case.id == CaseTask.case_id)
        .join(FundItem, FundItem.id == Case.fund_item_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(CaseTask.department_code == department)
    )
    if status:
        stmt = stmt.where(CaseTask.status == status)
    if fund_item_code:
        stmt = stmt.where(FundItem.code == fund_item_code)
    if stage_key:
        stmt = stmt.where(CaseTask.stage_key == stage_key)
    return stmt


def task_rows(
    *,
    session: Session,
    department: str,
    status: str | None,
    fund_item_code: str | None = None,
    stage_key: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[CaseTask, Case, FundItem, Enterprise]], int]:
    """One page of a department's tasks with their case, fund item and enterprise, the earliest deadline first,
    and how many match in all."""
    stmt = _task_query(department, status, fund_item_code, stage_key)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    ordered = stmt.order_by(CaseTask.due_at.is_(None), CaseTask.due_at, CaseTask.id).limit(limit).offset(offset)
    return [tuple(row) for row in session.execute(ordered)], total  # type: ignore[misc]


def task_counts(*, session: Session, department: str) -> dict[str, int]:
    """A department's tasks by status."""
    stmt = select(CaseTask.status, func.count()).where(CaseTask.department_code == department).group_by(CaseTask.status)
    return {status: n for status, n in session.execute(stmt)}


def task_items(*, session: Session, department: str) -> list[tuple[str, str]]:
    """(code, name) of the fund items a department has tasks on, for the work list's filter."""
    stmt = (
        select(FundItem.code, FundItem.name)
        .join(Case, Case.fund_item_id == FundItem.id)
        .join(CaseTask, CaseTask.case_id == Case.id)
        .where(CaseTask.department_code == department)
        .distinct()
        .order_by(FundItem.code)
    )
    return [(code, name) for code, name in session.execute(stmt)]


def case_counts(*, session: Session, fund_item_ids: list[int]) -> dict[int, dict[str, int]]:
    """Cases per fund item and status."""
    if not fund_item_ids:
        return {}
    stmt = (
        select(Case.fund_item_id, Case.status, func.count())
        .where(Case.fund_item_id.in_(fund_item_ids))
        .group_by(Case.fund_item_id, Case.status)
    )
    out: dict[int, dict[str, int]] = {}
    for item_id, status, n in session.execute(stmt):
        out.setdefault(item_id, {})[status] = n
    return out


def item_ids(*, session: Session, codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    return {
        code: id_ for code, id_ in session.execute(select(FundItem.code, FundItem.id).where(FundItem.code.in_(codes)))
    }


def iter_enterprise_sample(
    *, session: Session, region_prefix: str = "", limit: int = 1000, chunk: int = 100
) -> Iterator[Enterprise]:
    """`enterprise_sample` read `chunk` rows at a time, so a caller that has seen enough stops reading."""
    stmt = select(Enterprise).order_by(Enterprise.id).limit(limit).execution_options(yield_per=chunk)
    if region_prefix:
        stmt = stmt.where(Enterprise.region_code.startswith(region_prefix))
    result = session.scalars(stmt)
    try:
        yield from result
    finally:  # a caller that stops early closes the cursor
        result.close()


def enterprise_sample(*, session: Session, region_prefix: str = "", limit: int = 1000) -> list[Enterprise]:
    """Enterprises of a region (all when no prefix), oldest records first, for the dry run's sample of matched and
    near-miss enterprises."""
    stmt = select(Enterprise).order_by(Enterprise.id).limit(limit)
    if region_prefix:
        stmt = stmt.where(Enterprise.region_code.startswith(region_prefix))
    return list(session.scalars(stmt))
