"""The daily Temporal Schedules (reconciliation, audit verification): created once, updated to the configured time
at every worker start. Client-side code; the temporalio.client import stays inside the function so the workflow
sandbox never loads it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import Client, ScheduleActionStartWorkflow


async def ensure_daily_schedule(
    client: Client, *, schedule_id: str, action: ScheduleActionStartWorkflow, at: str, time_zone: str
) -> str:
    """Create the schedule that starts `action` every day at `at` (HH:MM in `time_zone`), or update it; safe to
    call at every worker start."""
    from temporalio.client import (
        Schedule,
        ScheduleAlreadyRunningError,
        ScheduleCalendarSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleRange,
        ScheduleSpec,
        ScheduleUpdate,
    )

    hour, minute = (int(part) for part in at.split(":"))
    schedule = Schedule(
        action=action,
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)])],
            time_zone_name=time_zone,
        ),
        # One run at a time; a run missed while the cluster was down still happens within a day.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(schedule_id).update(lambda _current: ScheduleUpdate(schedule=schedule))
    return schedule_id
