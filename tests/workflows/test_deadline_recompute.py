"""A stage opened while its deadline ran into a year without holiday data (provisional) follows the year's
notice once imported: the tasks get the recomputed date, the case a deadline_moved event, and the waiting
workflow's timer moves (a signal carrying the date computed outside it): nothing times out at the old time."""

from __future__ import annotations

import json
from datetime import UTC, date, timedelta

from temporalio.api.enums.v1 import EventType

from cli.demo import add_listed_item
from db.repositories import calendar as calendar_repo
from db.repositories import fund_items, reviews
from db.session import transaction
from schemas.cases import CaseProgress
from schemas.localtime import to_local
from schemas.principal import Principal
from schemas.vocabulary import CaseStatus, EventKind
from services import calendar as calendar_service
from tests.support import eventually
from tests.workflows.conftest import Harness, _review, _stage

ITEM = "T-RV-LONG"
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
    year = next(y for y in range(task.start_day.year, old_due.year + 1) if y not in loaded)

    # The year's notice: one weekday inside the stage's span becomes a holiday, so the stage takes a day longer.
    holiday = max(task.start_day + timedelta(days=1), date(year, 1, 1))
    while holiday.weekday() >= 5:
        holiday += timedelta(days=1)
    assert holiday <= old_due
    notice = {"year": year, "days": [{"date": holiday.isoformat(), "kind": "holiday", "name": "测试假日"}]}
    admin = Principal(role="admin", subject="admin")
    with transaction(h.db_url) as session:
        out = calendar_service.import_year(
            session=session, principal=admin, year=year, raw=json.dumps(notice).encode(), source="国办发明电〔测试〕1号"
        )
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
