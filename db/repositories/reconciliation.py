"""Reconciliation runs, their lines, and alerts for the finance bureau."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import Alert, ReconLine, ReconRun
from schemas.vocabulary import AlertStatus, ReconOutcome, ReconRunStatus

OUTCOMES = ReconOutcome.values()
MISMATCHES = OUTCOMES[1:]


def start_run(*, session: Session, run_key: str, statement_date: date, trigger: str) -> ReconRun:
    """The run for `run_key`, created on first call (an activity retry finds the same run)."""
    run = session.scalar(select(ReconRun).where(ReconRun.run_key == run_key).with_for_update())
    if run is None:
        run = ReconRun(run_key=run_key, statement_date=statement_date, trigger=trigger, status=ReconRunStatus.RUNNING)
        session.add(run)
        session.flush()
    return run


def replace_lines(*, session: Session, run: ReconRun, lines: Sequence[dict[str, Any]]) -> None:
    """Store the run's lines, replacing any from an earlier attempt, and its per-outcome counts."""
    session.execute(delete(ReconLine).where(ReconLine.run_id == run.id))
    if lines:
        session.execute(ReconLine.__table__.insert(), [{"run_id": run.id, **line} for line in lines])
    for outcome in OUTCOMES:
        setattr(run, outcome, sum(1 for line in lines if line["outcome"] == outcome))
    session.flush()


def finish_run(*, session: Session, run: ReconRun, totals: dict[str, int]) -> None:
    for key, value in totals.items():
        setattr(run, key, value)
    run.status = ReconRunStatus.DONE
    run.finished_at = datetime.now(UTC)
    session.flush()


def get_run(*, session: Session, run_id: int) -> ReconRun | None:
    return session.get(ReconRun, run_id)


def list_runs(*, session: Session, limit: int = 60) -> list[ReconRun]:
    stmt = select(ReconRun).order_by(ReconRun.statement_date.desc(), ReconRun.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def lines(*, session: Session, run_id: int, mismatches_only: bool = False) -> list[ReconLine]:
    stmt = select(ReconLine).where(ReconLine.run_id == run_id)
    if mismatches_only:
        stmt = stmt.where(ReconLine.outcome != ReconOutcome.MATCHED)
    return list(session.scalars(stmt.order_by(ReconLine.voucher_no, ReconLine.line_type)))


def raise_alert(
    *,
    session: Session,
    kind: str,
    ref: str,
    message: str,
    recon_run_id: int | None = None,
    seen_at: datetime | None = None,
) -> Alert:
    """Open an alert once per (kind, ref); seen again, it is updated and reopened if someone had closed it.

    `seen_at` is when the evidence was gathered (a run's statement fetch): an alert closed at or after that moment
    stays closed, so a run already under way when finance closes the alert cannot undo the close.
    """
    alert = session.scalar(select(Alert).where(Alert.kind == kind, Alert.ref == ref).with_for_update())
    now = datetime.now(UTC)
    if alert is None:
        alert = Alert(kind=kind, ref=ref, message=message, status=AlertStatus.OPEN, recon_run_id=recon_run_id, updated_at=now)
        session.add(alert)
    elif alert.status == AlertStatus.OPEN or _seen_after_close(alert, seen_at or now):
        alert.message = message
        alert.recon_run_id = recon_run_id or alert.recon_run_id
        alert.updated_at = now
        if alert.status == AlertStatus.CLOSED:
            alert.status, alert.closed_at, alert.closed_by, alert.close_note = AlertStatus.OPEN, None, None, None
    session.flush()
    return alert


def _seen_after_close(alert: Alert, seen_at: datetime) -> bool:
    """Whether the run saw the statement after the alert was closed (a run already under way must not reopen it)."""
    return alert.closed_at is None or seen_at > alert.closed_at


def list_alerts(*, session: Session, status: str | None = AlertStatus.OPEN, limit: int = 500) -> list[Alert]:
    stmt = select(Alert)
    if status:
        stmt = stmt.where(Alert.status == status)
    return list(session.scalars(stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))


def count_open_alerts(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Alert).where(Alert.status == AlertStatus.OPEN)) or 0


def close_alert(*, session: Session, alert_id: int, by: str, note: str) -> Alert | None:
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        return None
    if alert.status == AlertStatus.OPEN:
        alert.status, alert.closed_at, alert.closed_by, alert.close_note = AlertStatus.CLOSED, datetime.now(UTC), by, note
        alert.updated_at = datetime.now(UTC)
        session.flush()
    return alert
