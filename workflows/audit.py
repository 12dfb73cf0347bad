"""The daily audit verification (等保 2.0: the audit proves itself every day), started by a Temporal Schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from schemas.audit import AuditCheckIn, AuditCheckOut

if TYPE_CHECKING:
    from temporalio.client import Client

SCHEDULE_ID = "zhida-audit-verify-daily"
WORKFLOW_ID = "audit-verify-scheduled"


@workflow.defn
class AuditVerificationWorkflow:
    @workflow.run
    async def run(self, request: AuditCheckIn) -> AuditCheckOut:
        return await workflow.execute_activity_method(
            AuditActivities.verify_audit_chains, request, start_to_close_timeout=timedelta(hours=2)
        )


async def ensure_audit_schedule(client: Client, *, task_queue: str, at: str, time_zone: str) -> str:
    """Create the daily schedule, or update it to the configured time; safe to call at every worker start."""
    from temporalio.client import ScheduleActionStartWorkflow

    from workflows.schedules import ensure_daily_schedule

    action = ScheduleActionStartWorkflow(
        AuditVerificationWorkflow.run, AuditCheckIn(), id=WORKFLOW_ID, task_queue=task_queue
    )
    return await ensure_daily_schedule(client, schedule_id=SCHEDULE_ID, action=action, at=at, time_zone=time_zone)
