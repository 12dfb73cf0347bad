"""A provisional publicity (公示) period follows its year's notice once imported, like a stage deadline; and a move
whose signal was lost is found and re-sent: the recorded move (database) against the deadline the workflow's status
query shows it waiting for."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete

from cli.demo import add_listed_item
from db.models import CalendarDay, CalendarYear
from db.repositories import calendar as calendar_repo
from db.repositories import fund_items
from db.session import reading, transaction
from schemas.cases import CaseProgress, DecisionIn
from schemas.localtime import to_local
from schemas.vocabulary import CaseStatus, EventKind
from services import calendar as calendar_service
from tests.support import eventually
from tests.workflows.conftest import FIXED, Harness, _review, _stage
from tests.workflows.test_deadline_recompute import ADMIN, _due_day, _notice

ITEM = "T-RV-LONG-PUBLICITY"
PUBLICITY_DAYS = 30


def _missing_year(db_url: str, today: date) -> int:
    """The year a 30-working-day publicity from `today` ends in, made a year without holiday data."""
    year = max((today + timedelta(days=44)).year, 2027)
    with transaction(db_url) as session:
        session.execute(delete(CalendarDay).where(CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31))))
        session.execute(delete(CalendarYear).where(CalendarYear.year == year))
    return year


async def test_a_provisional_publicity_moves_and_a_lost_signal_is_repaired(h: Harness) -> None:
    year = _missing_year(h.db_url, to_local(await h.env.get_current_time()).date())
    with transaction(h.db_url) as session:
        if fund_items.get_by_code(session=session, code=ITEM) is None:
            config = _review(
                stages=[_stage("first_review", ["YC-JXJ"], on_timeout="auto_reject")],
                publicity={"working_days": PUBLICITY_DAYS, "objections_allowed": True},
            ) | {"standard": FIXED}
            add_listed_item(session=session, code=ITEM, department_code="YC-JXJ", config=config)
    case_id = h.new_case(ITEM)
    handle = await h.start(case_id)
    await h.until(handle, lambda p: p.stage is not None and p.stage.key == "first_review")
    approve = DecisionIn(stage_key="first_review", department="YC-JXJ", decision="approve", actor="department:YC-JXJ")
    await handle.execute_update("decide", approve, result_type=CaseProgress)
    waiting = await h.until(handle, lambda p: p.status == CaseStatus.PUBLICITY)
    old_due_at = waiting.deadlines[CaseStatus.PUBLICITY]
    started = next(e for e in h.event_rows(case_id) if e["kind"] == EventKind.PUBLICITY_STARTED)
    assert started["data"]["provisional"] and started["data"]["working_days"] == PUBLICITY_DAYS
    start, old_due = date.fromisoformat(started["data"]["start_day"]), _due_day(old_due_at)

    with transaction(h.db_url) as session:
        out = calendar_service.import_year(
            session=session,
            principal=ADMIN,
            year=year,
            raw=_notice(year, start, old_due),
            source="国办发明电〔测试〕3号",
        )
    (move,) = [m for m in out.deadlines_moved if m.case_id == case_id]
    assert move.stage_key == CaseStatus.PUBLICITY and move.old_due_at == old_due_at and move.due_at > old_due_at
    event = [e for e in h.event_rows(case_id) if e["kind"] == EventKind.DEADLINE_MOVED][-1]
    assert event["reason"].startswith("公示期：导入") and event["data"]["due_at"] == move.due_at.isoformat()

    # The import's signal is lost (say Temporal was down): the workflow still counts to the old end. The repair
    # finds the recorded move the workflow does not show, and sends it again; a second run finds nothing to do.
    with reading(h.db_url) as session:
        # This case's moves only: the module's database also holds other tests' cases, whose workflows may have
        # moved on (or ended) without the move this test withholds, and the repair would rightly resend theirs.
        recorded = [m for m in calendar_service.recorded_moves(session=session) if m.case_id == case_id]
    assert [m.due_at for m in recorded if m.case_id == case_id] == [move.due_at]
    assert (await handle.query("status", result_type=CaseProgress)).deadlines[CaseStatus.PUBLICITY] == old_due_at
    resent = await calendar_service.repair_moves(client=h.client, moves=recorded)
    assert [m.case_id for m in resent] == [case_id]
    await h.until(handle, lambda p: p.deadlines.get(CaseStatus.PUBLICITY) == move.due_at)
    assert await calendar_service.repair_moves(client=h.client, moves=recorded) == []

    # The timer moved: past the old end the case is still in publicity; past the new end it goes on to payment.
    await h.env.sleep(old_due_at - await h.env.get_current_time() + timedelta(hours=1))
    assert (await handle.query("status", result_type=CaseProgress)).status == CaseStatus.PUBLICITY
    await h.env.sleep(move.due_at - await h.env.get_current_time() + timedelta(hours=1))

    async def status() -> CaseProgress:
        return await handle.query("status", result_type=CaseProgress)

    await eventually(status, lambda p: p.status != CaseStatus.PUBLICITY, what="the moved publicity end to pass")
    with transaction(h.db_url) as session:
        assert year in calendar_repo.loaded_years(session=session)
