"""对账: reconcile one day's treasury statement; started daily by a Temporal Schedule, or by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import ReconciliationActivities
    from schemas.reconciliation import ReconInput, ReconRequest, ReconSummary
    from schemas.vocabulary import ReconTrigger

if TYPE_CHECKING:
    from datetime import date

    from temporalio.client import Client

SCHEDULE_ID = "zhida-reconciliation-daily"
WORKFLOW_ID_PREFIX = "reconciliation"

# The statement may be late or the treasury down: keep trying for most of a day, backing off.
STATEMENT_STEP = {
    "start_to_close_timeout": timedelta(minutes=5),
    "schedule_to_close_timeout": timedelta(hours=20),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=10),
        non_retryable_error_types=["TreasuryRejected"],
    ),
}
LOCAL_STEP = {"start_to_close_timeout": timedelta(seconds=30)}


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconRequest) -> ReconSummary:
        day = await workflow.execute_activity_method(
            ReconciliationActivities.resolve_statement_day, request, **LOCAL_STEP
        )
        info = workflow.info()
        run_key = f"{info.workflow_id}:{info.run_id}"[-120:]
        return await workflow.execute_activity_method(
            ReconciliationActivities.reconcile,
            ReconInput(run_key=run_key, statement_date=day, trigger=request.trigger),
            **STATEMENT_STEP,
        )


# Client side (called by the worker command, `zhida reconcile` and the API; never inside the workflow) ---------


async def ensure_schedule(client: Client, *, task_queue: str, at: str, time_zone: str) -> str:
    """Create the daily schedule, or update it to the configured time; safe to call at every worker start."""
    from temporalio.client import ScheduleActionStartWorkflow

    from workflows.schedules import ensure_daily_schedule

    action = ScheduleActionStartWorkflow(
        ReconciliationWorkflow.run,
        ReconRequest(trigger=ReconTrigger.SCHEDULE),
        id=f"{WORKFLOW_ID_PREFIX}-scheduled",
        task_queue=task_queue,
    )
    return await ensure_daily_schedule(client, schedule_id=SCHEDULE_ID, action=action, at=at, time_zone=time_zone)


async def start_reconciliation(client: Client, *, statement_date: date, task_queue: str) -> str:
    """Start a manual reconciliation of `statement_date`; returns its workflow id."""
    import uuid

    workflow_id = f"{WORKFLOW_ID_PREFIX}-manual-{statement_date.isoformat()}-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        ReconciliationWorkflow.run,
        ReconRequest(statement_date=statement_date, trigger=ReconTrigger.MANUAL),
        id=workflow_id,
        task_queue=task_queue,
    )
    return workflow_id
