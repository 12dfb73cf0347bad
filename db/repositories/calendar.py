"""Holiday data (节假日安排): seeded from chinesecalendar, extended by an administrator's notice import."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from importlib.metadata import version

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from db.models import CalendarDay, CalendarYear, Case, CaseEvent, CaseTask
from db.sql.insert import insert_for
from rules.calendar import (
    CalendarEntry,
    WorkCalendar,
    chinese_calendar_entries,
    replaced_range,
    validate_notice_entries,
)
from schemas.vocabulary import Awaiting, CaseStatus, EventKind, TaskStatus

SOURCE_MAX_LENGTH = 200  # CalendarYear.source is String(200)


def _insert_ignoring_duplicates(session: Session, model: type, rows: list[dict]) -> None:
    """Bulk insert that skips rows another process inserted first (two workers seeding at start-up)."""
    if not rows:
        return
    session.execute(insert_for(session, model).on_conflict_do_nothing(), rows)


def seed_from_chinese_calendar(*, session: Session, years: Iterable[int] = range(2004, 2027)) -> int:
    """Load the packaged data for years not loaded yet (an administrator's import wins); returns days added."""
    done = set(loaded_years(session=session))
    todo = sorted(set(years) - done)
    if not todo:
        return 0
    entries = [e for y in todo for e in chinese_calendar_entries(y)]
    # A later year's notice may already have stored the last days of December of an earlier year.
    existing = set(
        session.scalars(
            select(CalendarDay.day).where(
                CalendarDay.day >= date(todo[0], 1, 1), CalendarDay.day <= date(todo[-1], 12, 31)
            )
        )
    )
    rows = [{"day": e.day, "is_workday": e.is_workday, "name": e.name} for e in entries if e.day not in existing]
    _insert_ignoring_duplicates(session, CalendarDay, rows)
    source = f"chinesecalendar {version('chinesecalendar')}"
    _insert_ignoring_duplicates(session, CalendarYear, [{"year": y, "source": source} for y in todo])
    return len(rows)


def load_year(*, session: Session, year: int, days: Sequence[CalendarEntry], source: str) -> int:
    """Replace one year's holiday data with an imported notice and mark the year loaded; returns days stored.

    Validated first (NoticeError names each bad row); the replacement runs in a savepoint, so a failure
    leaves the previous data untouched even if the caller goes on with its transaction. When year + 1 is
    loaded, its notice's New Year days in the last week of December are kept unless this notice sets them.
    """
    entries = validate_notice_entries(year, days)
    source = source.strip()
    if not source or len(source) > SOURCE_MAX_LENGTH:
        raise ValueError(
            f"来源（如通知文号）不能为空且不超过{SOURCE_MAX_LENGTH}字 / source must be 1–{SOURCE_MAX_LENGTH} characters"
        )
    next_year_loaded = session.scalar(select(CalendarYear.year).where(CalendarYear.year == year + 1)) is not None
    first, last = replaced_range(year, next_year_loaded=next_year_loaded)
    with session.begin_nested():
        session.execute(
            delete(CalendarDay).where(
                or_(CalendarDay.day.between(first, last), CalendarDay.day.in_([e.day for e in entries]))
            )
        )
        session.execute(
            insert(CalendarDay), [{"day": e.day, "is_workday": e.is_workday, "name": e.name} for e in entries]
        )
        updated = session.execute(
            update(CalendarYear).where(CalendarYear.year == year).values(source=source, loaded_at=func.now())
        ).rowcount
        if not updated:
            session.execute(insert(CalendarYear).values(year=year, source=source))
    return len(entries)


def loaded_years(*, session: Session) -> list[int]:
    return list(session.scalars(select(CalendarYear.year).order_by(CalendarYear.year)))


def load_calendar(*, session: Session) -> WorkCalendar:
    """All stored holiday data as a pure calendar (a few hundred rows; callers may cache it)."""
    days = session.execute(select(CalendarDay.day, CalendarDay.is_workday, CalendarDay.name)).all()
    return WorkCalendar.from_entries(
        (CalendarEntry(day=d, is_workday=w, name=n) for d, w, n in days), loaded_years(session=session)
    )


def year_rows(*, session: Session, years: Sequence[int] | None = None) -> list[tuple[CalendarYear, int, int]]:
    """The loaded years (all, or those named) with their counts of days off and make-up workdays."""
    year_of = func.extract("year", CalendarDay.day)
    counts: dict[tuple[int, bool], int] = {
        (int(y), bool(w)): int(n)
        for y, w, n in session.execute(
            select(year_of, CalendarDay.is_workday, func.count()).group_by(year_of, CalendarDay.is_workday)
        )
    }
    query = select(CalendarYear).order_by(CalendarYear.year)
    if years is not None:
        query = query.where(CalendarYear.year.in_(years))
    return [(row, counts.get((row.year, False), 0), counts.get((row.year, True), 0)) for row in session.scalars(query)]


def year(*, session: Session, year: int) -> CalendarYear | None:
    """The imported year, or None."""
    return session.get(CalendarYear, year)


# -- provisional deadlines -------------------------------------------------------------------------------------


def open_provisional_tasks(*, session: Session) -> list[tuple[CaseTask, str]]:
    """Open department tasks whose deadline was provisional and whose count is known, with their case's
    workflow id; oldest first, so recomputes are recorded in a stable order."""
    rows = session.execute(
        select(CaseTask, Case.workflow_id)
        .join(Case, Case.id == CaseTask.case_id)
        .where(
            CaseTask.status == TaskStatus.OPEN,
            CaseTask.provisional.is_(True),
            CaseTask.start_day.is_not(None),
            CaseTask.working_days.is_not(None),
        )
        .order_by(CaseTask.case_id, CaseTask.stage_key, CaseTask.round, CaseTask.id)
    ).all()
    return [(task, workflow_id) for task, workflow_id in rows]


def move_tasks(*, session: Session, task_ids: Sequence[int], due_at: datetime, provisional: bool) -> None:
    """The recomputed deadline on each task of one stage round."""
    session.execute(
        update(CaseTask).where(CaseTask.id.in_(list(task_ids))).values(due_at=due_at, provisional=provisional)
    )


def open_provisional_supplements(*, session: Session) -> list[tuple[Case, CaseEvent]]:
    """Cases waiting for the enterprise's supplement (补正) whose current deadline is provisional: the last
    supplement_requested event, or the last deadline_moved event for it, when that says provisional."""
    return _open_provisional(
        session=session,
        status=CaseStatus.SUPPLEMENT,
        opened=EventKind.SUPPLEMENT_REQUESTED,
        awaiting=Awaiting.SUPPLEMENT,
    )


def open_provisional_publicity(*, session: Session) -> list[tuple[Case, CaseEvent]]:
    """Cases in publicity (公示) whose end is provisional: the publicity_started event, or the last deadline_moved
    event for it, when that says provisional and what it was counted from."""
    return _open_provisional(
        session=session, status=CaseStatus.PUBLICITY, opened=EventKind.PUBLICITY_STARTED, awaiting=CaseStatus.PUBLICITY
    )


def _open_provisional(*, session: Session, status: str, opened: str, awaiting: str) -> list[tuple[Case, CaseEvent]]:
    """Cases in `status` whose current deadline (the `opened` event, or the last deadline_moved event `awaiting`
    it) is provisional and says what it was counted from."""
    waiting = list(session.scalars(select(Case).where(Case.status == status).order_by(Case.id)))
    if not waiting:
        return []
    events = session.scalars(
        select(CaseEvent)
        .where(
            CaseEvent.case_id.in_([c.id for c in waiting]),
            CaseEvent.kind.in_([opened, EventKind.DEADLINE_MOVED]),
        )
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    )
    current: dict[int, CaseEvent] = {}
    for event in events:
        if event.kind == opened or (event.data or {}).get("awaiting") == awaiting:
            current[event.case_id] = event
    out = []
    for case in waiting:
        event = current.get(case.id)
        data = (event.data or {}) if event else {}
        if event and data.get("provisional") and data.get("start_day") and data.get("working_days") is not None:
            out.append((case, event))
    return out


def latest_moves(*, session: Session) -> list[tuple[Case, CaseEvent]]:
    """The last deadline_moved event of each stage, supplement or publicity of every case still open: what each
    waiting workflow should be counting to (services.calendar.repair_moves checks it is)."""
    open_cases = select(Case.id).where(Case.status.not_in(list(CaseStatus.finals())))
    rows = session.execute(
        select(Case, CaseEvent)
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(CaseEvent.kind == EventKind.DEADLINE_MOVED, Case.id.in_(open_cases))
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    ).all()
    last: dict[tuple[int, str], tuple[Case, CaseEvent]] = {}
    for case, event in rows:
        data = event.data or {}
        last[(case.id, str(data.get("awaiting") or data.get("stage_key")))] = (case, event)
    return list(last.values())
