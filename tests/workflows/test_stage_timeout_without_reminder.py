"""A stage without a reminder time (remind_before_working_days=0) times out at its due time like any other: the
fix is the patch "stage-timeout-without-reminder", standard for cases of code version 1 (workflows/versions.py), so
the case records no marker; histories recorded before it replay (tests/replay)."""

from __future__ import annotations

from datetime import timedelta

from cli.demo import add_listed_item
from db.repositories import fund_items
from db.session import transaction
from schemas.cases import CaseProgress
from schemas.vocabulary import CaseStatus, EventKind
from tests.support import eventually
from tests.workflows.conftest import Harness, _review, _stage

ITEM = "T-RV-NOREMIND"


async def test_a_stage_without_a_reminder_times_out_at_its_due_time(h: Harness) -> None:
    with transaction(h.db_url) as session:
        if fund_items.get_by_code(session=session, code=ITEM) is None:
            stage = _stage("first_review", ["YC-JXJ"], remind_before_working_days=0, on_timeout="auto_reject")
            add_listed_item(session=session, code=ITEM, department_code="YC-JXJ", config=_review(stages=[stage]))
    handle = await h.start(h.new_case(ITEM))
    opened = await h.until(handle, lambda p: p.stage is not None and p.stage.key == "first_review")
    assert opened.stage is not None and opened.stage.remind_at is None and opened.stage.due_at is not None
    await h.env.sleep(opened.stage.due_at - await h.env.get_current_time() + timedelta(hours=1))

    async def status() -> CaseProgress:
        return await handle.query("status", result_type=CaseProgress)

    done = await eventually(status, lambda p: p.status == CaseStatus.REJECTED, what="the stage to time out")
    assert "逾期未办理" in (done.reason or "")
    assert EventKind.STAGE_TIMEOUT in h.events(opened.case_id) and EventKind.STAGE_REMINDER not in h.events(
        opened.case_id
    )
    history = await handle.fetch_history()
    markers = [
        e.marker_recorded_event_attributes.details
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name
    ]
    # Standard since code version 1: no patch marker (and no search-attribute upsert) in a new case's history.
    assert not any("stage-timeout-without-reminder" in str(d) for d in markers)
    assert not any(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
                   for e in history.events)  # fmt: skip
