"""The figures /metrics exposes, read from the database in a few aggregate queries (no personal data: counts only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from db.models import Case, CaseTask, Notice, PaymentInstruction
from schemas.vocabulary import NoticeStatus, PaymentStatus, TaskStatus

# Upper bounds (seconds) of the payment latency buckets: instruction created → settled as paid.
LATENCY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86_400.0, 3 * 86_400.0)


@dataclass
class Snapshot:
    cases: dict[tuple[str, str], int] = field(default_factory=dict)  # (mode, status) → count
    payments: dict[str, int] = field(default_factory=dict)  # status → count
    notices: dict[tuple[str, str], int] = field(default_factory=dict)  # (category, status) → count
    stage_deadlines_missed: dict[str, int] = field(default_factory=dict)  # timed_out | open_overdue → count
    latency_buckets: list[int] = field(default_factory=list)  # cumulative counts per LATENCY_BUCKETS
    latency_count: int = 0
    latency_sum: float = 0.0


def _seconds_between(session: Session, start, end):
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86_400.0


def snapshot(*, session: Session, now: datetime) -> Snapshot:
    shot = Snapshot()
    for mode, status, n in session.execute(
        select(Case.mode, Case.status, func.count()).group_by(Case.mode, Case.status)
    ):
        shot.cases[(mode, status)] = n
    for status, n in session.execute(
        select(PaymentInstruction.status, func.count()).group_by(PaymentInstruction.status)
    ):
        shot.payments[status] = n
    for category, status, n in session.execute(
        select(Notice.category, Notice.status, func.count()).group_by(Notice.category, Notice.status)
    ):
        shot.notices[(category, status)] = n
    timed_out, overdue = session.execute(
        select(
            func.count(case((CaseTask.status == TaskStatus.TIMED_OUT, 1))),
            func.count(case((and_(CaseTask.status == TaskStatus.OPEN, CaseTask.due_at < now), 1))),
        )
    ).one()
    shot.stage_deadlines_missed = {"timed_out": timed_out, "open_overdue": overdue}
    latency = _seconds_between(session, PaymentInstruction.created_at, PaymentInstruction.settled_at)
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(latency), 0.0),
            *(func.count(case((latency <= bound, 1))) for bound in LATENCY_BUCKETS),
        ).where(PaymentInstruction.status == PaymentStatus.PAID, PaymentInstruction.settled_at.is_not(None))
    ).one()
    shot.latency_count, shot.latency_sum = int(row[0]), float(row[1] or 0.0)
    shot.latency_buckets = [int(n) for n in row[2:]]
    return shot


def outbox_statuses() -> tuple[NoticeStatus, ...]:
    """The notice statuses that are still in the outbox (not yet handed to the carrier for good)."""
    return (NoticeStatus.QUEUED, NoticeStatus.SENDING)
