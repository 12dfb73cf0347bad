"""企档拉取: one pull of an archive source from the data-sharing platform; started by a Temporal Schedule per source
at the source's configured cadence (schemas/archive_sources.py), or by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.archive import NON_RETRYABLE, ArchiveActivities
    from schemas.datashare import PullRequest, PullSummary

if TYPE_CHECKING:
    from temporalio.client import Client

SCHEDULE_PREFIX = "zhida-archive-pull"

# A timeout or a partial page is tried again with backoff for about an hour; drift, refusal and invalid rows fail
# the run at once (people must look).
PULL_STEP = {
    "start_to_close_timeout": timedelta(minutes=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=30),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=15),
        maximum_attempts=6,
        non_retryable_error_types=NON_RETRYABLE,
    ),
}


@workflow.defn
class ArchivePullWorkflow:
    @workflow.run
    async def run(self, request: PullRequest) -> PullSummary:
        return await workflow.execute_activity_method(ArchiveActivities.pull_source, request, **PULL_STEP)


# Client side (the worker at start, `zhida archive schedule`; never inside the workflow) ------------------------


def schedule_id(source: str) -> str:
    return f"{SCHEDULE_PREFIX}-{source}"


def cadence_spec(cadence: str, time_zone: str):  # -> ScheduleSpec
    """When a source of this cadence is pulled (local time): daily 02:30, monthly on the 2nd at 03:00, yearly on
    1 June at 04:00 (after the annual tax settlement closes on 31 May)."""
    from temporalio.client import ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

    calendars = {
        "daily": ScheduleCalendarSpec(hour=[ScheduleRange(2)], minute=[ScheduleRange(30)]),
        "monthly": ScheduleCalendarSpec(
            day_of_month=[ScheduleRange(2)], hour=[ScheduleRange(3)], minute=[ScheduleRange(0)]
        ),
        "yearly": ScheduleCalendarSpec(
            month=[ScheduleRange(6)],
            day_of_month=[ScheduleRange(1)],
            hour=[ScheduleRange(4)],
            minute=[ScheduleRange(0)],
        ),
    }
    if cadence not in calendars:
        raise ValueError(f"unknown cadence {cadence!r}")
    return ScheduleSpec(calendars=[calendars[cadence]], time_zone_name=time_zone)


async def ensure_schedules(client: Client, *, task_queue: str, sources: dict[str, str], time_zone: str) -> list[str]:
    """One schedule per source (source → cadence): created, or updated to the configured cadence; safe at every
    worker start."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleUpdate,
    )

    made = []
    for source, cadence in sources.items():
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                ArchivePullWorkflow.run,
                PullRequest(source=source, trigger="schedule"),
                id=f"archive-pull-{source}-scheduled",
                task_queue=task_queue,
            ),
            spec=cadence_spec(cadence, time_zone),
            # One pull of a source at a time; a pull missed while the cluster was down still happens within a day.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        )
        sid = schedule_id(source)
        try:
            await client.create_schedule(sid, schedule)
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(sid).update(lambda _current, s=schedule: ScheduleUpdate(schedule=s))
        made.append(sid)
    return made


async def start_pull(client: Client, *, source: str, task_queue: str) -> str:
    """Start one pull now through the workflow the schedule starts; returns its workflow id."""
    import uuid

    workflow_id = f"archive-pull-{source}-manual-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        ArchivePullWorkflow.run, PullRequest(source=source, trigger="manual"), id=workflow_id, task_queue=task_queue
    )
    return workflow_id
