"""Deadlines opened while they ran into a year without holiday data (provisional) follow the year's notice once
imported: a department stage (its tasks get the recomputed date, the case a deadline_moved event) and an enterprise's
supplement (补正, the enterprise gets an SMS with the new date); the waiting workflow's timer moves (a signal carrying
the date computed outside it), so nothing times out at the old time."""

from __future__ import annotations

import json
from datetime import UTC, date, timedelta

from sqlalchemy import delete
from temporalio.api.enums.v1 import EventType

from cli.demo import add_listed_item
from db.models import CalendarDay, CalendarYear
from db.repositories import calendar as calendar_repo
from db.repositories import fund_items, reviews
from db.session import transaction
from rules.sms_templates import format_date
from schemas.cases import CaseProgress, DecisionIn
from schemas.localtime import to_local
from schemas.principal import Principal
from schemas.vocabulary import Awaiting, CaseStatus, EventKind
from services import calendar as calendar_service
from tests.support import eventually
from tests.workflows.conftest import Harness, _review, _stage

ITEM = "T-RV-LONG"
ADMIN = Principal(role="admin", subject="admin")
# Long enough from any day of the test server's clock to run past the last year the packaged data covers.
WORKING_DAYS = 40


def _long_item(h: Harness) -> None:
    with transaction(h.db_url) as session:
        if fund_items.get_by_code(session=session, code=ITEM) is None:
            stage = _stage(
                "first_review",
                ["YC-JXJ"],
                deadline_working_days=WORKING_DAYS,
                remind_before_working_days=1,
                on_timeout="auto_reject",
            )
            add_listed_item(session=session, code=ITEM, department_code="YC-JXJ", config=_review(stages=[stage]))


def _year_ahead(db_url: str, today: date) -> int:
    """The year a 40-working-day deadline from `today` runs into, made a year without holiday data: the packaged
    years stay; a later one an earlier test imported (a made-up notice) is forgotten again."""
    year = max((today + timedelta(days=WORKING_DAYS * 7 // 5 + 20)).year, 2027)
    with transaction(db_url) as session:
        session.execute(delete(CalendarDay).where(CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31))))
        session.execute(delete(CalendarYear).where(CalendarYear.year == year))
    return year


def _holiday(year: int, after: date, until: date) -> date | None:
    """A weekday of `year` inside (after, until], or None when the span has none in that year."""
    day = max(after + timedelta(days=1), date(year, 1, 1))
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day if day <= min(until, date(year, 12, 31)) else None


def _year_to_import(loaded: set[int], after: date, until: date) -> int:
    """The first year of the span without holiday data that holds one of its weekdays. (The test server's clock is
    shared: when the span starts on the last weekday of a year, only the next year can move its deadline.)"""
    return next(y for y in range(after.year, until.year + 1) if y not in loaded and _holiday(y, after, until))


def _notice(year: int, after: date, until: date) -> bytes:
    """The year's notice: one weekday inside (after, until] becomes a holiday, so a deadline there moves a day."""
    holiday = _holiday(year, after, until)
    assert holiday is not None, (year, after, until)
    return json.dumps({"year": year, "days": [{"date": holiday.isoformat(), "kind": "holiday", "name": "测试假日"}]}).encode()


def _task(h: Harness, case_id: int):
    with transaction(h.db_url) as session:
        (task,) = [t for t in reviews.tasks_for_case(session=session, case_id=case_id) if t.stage_key == "first_review"]
        session.expunge(task)
        return task


def _timers(history) -> int:
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)


def _due_day(moment) -> date:
    return (to_local(moment) - timedelta(seconds=1)).date()


async def test_a_provisional_stage_deadline_moves_when_its_year_is_imported(h: Harness) -> None:
    _year_ahead(h.db_url, to_local(await h.env.get_current_time()).date())
    _long_item(h)
    case_id = h.new_case(ITEM)
    handle = await h.start(case_id)
    opened = await h.until(handle, lambda p: p.stage is not None and p.stage.key == "first_review")
    assert opened.stage is not None and opened.stage.provisional
    # Past the reminder, so the workflow waits on the due timer when the year is imported.
    assert opened.stage.remind_at is not None
    await h.env.sleep(opened.stage.remind_at - await h.env.get_current_time() + timedelta(minutes=1))
    await eventually(handle.fetch_history, lambda hist: _timers(hist) == 2, what="the reminder, then the due timer")
    task = _task(h, case_id)
    assert task.provisional and task.start_day is not None and task.working_days == WORKING_DAYS
    old_due = _due_day(task.due_at)
    with transaction(h.db_url) as session:
        loaded = set(calendar_repo.loaded_years(session=session))
    year = _year_to_import(loaded, task.start_day, old_due)

    with transaction(h.db_url) as session:
        out = calendar_service.import_year(
            session=session, principal=ADMIN, year=year, raw=_notice(year, task.start_day, old_due),
            source="国办发明电〔测试〕1号",
        )  # fmt: skip
    (move,) = [m for m in out.deadlines_moved if m.case_id == case_id]
    new_due = _due_day(move.due_at)
    assert new_due > old_due and move.old_due_at == task.due_at
    assert move.provisional is (any(y not in loaded | {year} for y in range(task.start_day.year, new_due.year + 1)))

    # Stored: the task's new date, and the event that says what changed and why.
    moved = _task(h, case_id)
    assert moved.due_at == move.due_at and moved.provisional is move.provisional
    event = next(e for e in h.event_rows(case_id) if e["kind"] == EventKind.DEADLINE_MOVED)
    assert f"导入{year}年节假日安排" in event["reason"] and "国办发明电〔测试〕1号" in event["reason"]
    assert event["actor"] == "admin:admin" and event["data"]["due_at"] == move.due_at.isoformat()

    # The workflow is told and moves its timer.
    assert await calendar_service.signal_moves(client=h.client, moves=[move]) == 1
    progress = await h.until(handle, lambda p: p.stage is not None and p.stage.due_at == move.due_at)
    assert progress.deadlines["first_review"] == move.due_at

    # The timer moved: the stage times out at the new deadline, not at the old one.
    await h.env.sleep(move.due_at - await h.env.get_current_time() + timedelta(hours=1))

    async def status() -> CaseProgress:
        return await handle.query("status", result_type=CaseProgress)

    done = await eventually(status, lambda p: p.status == CaseStatus.REJECTED, what="the moved deadline to pass")
    assert "逾期未办理" in (done.reason or "")
    history = await handle.fetch_history()
    notes = [
        e.event_time.ToDatetime(tzinfo=UTC)
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "note_stage"
    ]
    assert len(notes) == 2 and notes[-1] >= move.due_at > task.due_at  # the reminder, then the timeout
    assert move.remind_at is None  # the reminder was sent already, the move does not repeat it
    timeout = next(e for e in h.event_rows(case_id) if e["kind"] == EventKind.STAGE_TIMEOUT)
    assert timeout["data"]["due_at"] == move.due_at.isoformat()


SUPPLEMENT_ITEM = "T-RV-LONG-SUPPLEMENT"


async def test_a_provisional_supplement_deadline_moves_and_the_enterprise_is_told(h: Harness) -> None:
    _year_ahead(h.db_url, to_local(await h.env.get_current_time()).date())
    with transaction(h.db_url) as session:
        if fund_items.get_by_code(session=session, code=SUPPLEMENT_ITEM) is None:
            config = _review(
                stages=[_stage("first_review", ["YC-JXJ"], on_timeout="auto_reject")],
                supplement={"max_times": 1, "enterprise_deadline_working_days": WORKING_DAYS},
            )
            add_listed_item(session=session, code=SUPPLEMENT_ITEM, department_code="YC-JXJ", config=config)
    case_id = h.new_case(SUPPLEMENT_ITEM)
    handle = await h.start(case_id)
    await h.until(handle, lambda p: p.stage is not None and p.stage.key == "first_review")
    body = DecisionIn(stage_key="first_review", department="YC-JXJ", decision="return", actor="department:YC-JXJ",
                      comment="请补充近三年审计报告")  # fmt: skip
    await handle.execute_update("decide", body, result_type=CaseProgress)
    waiting = await h.until(handle, lambda p: p.awaiting == Awaiting.SUPPLEMENT)
    old_due_at = waiting.deadlines[Awaiting.SUPPLEMENT]
    requested = next(e for e in h.event_rows(case_id) if e["kind"] == EventKind.SUPPLEMENT_REQUESTED)
    assert requested["data"]["provisional"] and requested["data"]["working_days"] == WORKING_DAYS
    start, old_due = date.fromisoformat(requested["data"]["start_day"]), _due_day(old_due_at)
    with transaction(h.db_url) as session:
        loaded = set(calendar_repo.loaded_years(session=session))
    year = _year_to_import(loaded, start, old_due)
    with transaction(h.db_url) as session:
        out = calendar_service.import_year(
            session=session, principal=ADMIN, year=year, raw=_notice(year, start, old_due), source="国办发明电〔测试〕2号"
        )
    (move,) = [m for m in out.deadlines_moved if m.case_id == case_id]
    assert move.stage_key == Awaiting.SUPPLEMENT and move.old_due_at == old_due_at and move.due_at > old_due_at
    new_due = _due_day(move.due_at)
    # The enterprise is the party that has to act: it is told the new date.
    assert h.notices(case_id)[-1] == "deadline_reminder"
    assert f"补正材料将于{format_date(new_due)}截止" in h.notice_texts(case_id)[-1]
    event = next(e for e in h.event_rows(case_id) if e["kind"] == EventKind.DEADLINE_MOVED)
    assert event["reason"].startswith("补正材料：导入") and event["data"]["awaiting"] == Awaiting.SUPPLEMENT

    assert await calendar_service.signal_moves(client=h.client, moves=[move]) == 1
    await h.until(handle, lambda p: p.deadlines.get(Awaiting.SUPPLEMENT) == move.due_at)
    await h.env.sleep(move.due_at - await h.env.get_current_time() + timedelta(hours=1))

    async def status() -> CaseProgress:
        return await handle.query("status", result_type=CaseProgress)

    done = await eventually(status, lambda p: p.status == CaseStatus.WITHDRAWN, what="the moved supplement deadline")
    assert "逾期未补正" in (done.reason or "")
    history = await handle.fetch_history()
    closed = [
        e.event_time.ToDatetime(tzinfo=UTC)
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "close_case"
    ]
    assert closed and closed[-1] >= move.due_at  # not at the old deadline
