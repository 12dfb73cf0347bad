"""The Temporal worker: one builder for production (`zhida worker`) and the tests.

It builds the gateways once from settings (a test passes its fakes instead), gives them to every activities class,
and registers each class's activities by their Temporal definitions, so a new activity method is never left out.
It lives here, beside the `zhida worker` command, because it is that process's composition root: the one place that
wires workflows, activities and gateways together.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.archive import ArchiveActivities
from activities.audit import AuditActivities
from activities.campaign import CampaignActivities
from activities.cases import WorkflowProbe
from activities.notices import Dispatcher
from activities.reconciliation import ReconciliationActivities
from activities.review import ReviewActivities
from gateways.factory import Gateways, build_gateways
from gateways.sms import SmsProvider
from settings import Settings
from workflows.archive_pull import ArchivePullWorkflow
from workflows.audit import AuditVerificationWorkflow
from workflows.campaign import CampaignObjectionWorkflow, CampaignWorkflow
from workflows.client import decision_guard
from workflows.correction import PaymentCorrectionWorkflow
from workflows.instant import InstantCaseWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.review import ReviewCaseWorkflow

WORKFLOWS = [
    InstantCaseWorkflow,
    ReviewCaseWorkflow,
    PaymentCorrectionWorkflow,
    ReconciliationWorkflow,
    CampaignWorkflow,
    CampaignObjectionWorkflow,
    ArchivePullWorkflow,
    AuditVerificationWorkflow,
]


# Workflow task pollers: 5 on the normal queue (new cases' first tasks), 5 on this worker's sticky queue.
WORKFLOW_TASK_POLLERS = 10
NONSTICKY_RATIO = 0.5


def activities_of(*instances: object) -> list[Callable[..., Any]]:
    """Every method of these instances that carries a Temporal activity definition (set by @activity.defn)."""
    found: list[Callable[..., Any]] = []
    for instance in instances:
        for name, member in inspect.getmembers_static(type(instance)):
            if callable(member) and hasattr(member, "__temporal_activity_definition"):
                found.append(getattr(instance, name))
    return found


class _LogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        case_id = getattr(input.args[0], "case_id", None) if input.args else None
        fields = {"workflow_id": info.workflow_id, "activity": info.activity_type}
        # Each activity runs in its own task; a sync one gets a copy of this context in its thread.
        with structlog.contextvars.bound_contextvars(**fields, **({"case_id": case_id} if case_id else {})):
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Every log line an activity writes carries its workflow id, activity name and case id (when its input
    names one)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LogContext(next)


def activity_instances(client: Client, settings: Settings, gateways: Gateways) -> list[object]:
    """The activities classes with their clients: cases (instant and review), campaigns, reconciliation, archive
    pulls."""
    return [
        ReviewActivities(
            db_url=settings.db_url,
            fernet_key=settings.fernet_key(),
            treasury=gateways.treasury,
            notify_url=settings.public_base_url.rstrip("/") + "/api/v1/treasury/callbacks",
            pay_acct_no=settings.pay_acct_no,
            pay_acct_name=settings.pay_acct_name,
            adm_div_code=settings.adm_div_code,
        ),
        WorkflowProbe(client=client, db_url=settings.db_url),
        CampaignActivities.from_settings(settings, gateways.bulk_treasury),
        ReconciliationActivities(db_url=settings.db_url, statements=gateways.statements),
        ArchiveActivities(db_url=settings.db_url, datashare=gateways.datashare),
        AuditActivities(db_url=settings.db_url),
    ]


def build_worker(
    client: Client,
    settings: Settings,
    *,
    gateways: Gateways | None = None,
    workflows: Sequence[type] = WORKFLOWS,
) -> Worker:
    """The worker on settings.temporal_task_queue with every workflow and activity; `gateways` replaces the
    ones settings would build (tests pass fakes)."""
    gateways = gateways or build_gateways(settings)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=list(workflows),
        activities=activities_of(*activity_instances(client, settings, gateways)),
        # Decision updates without a token the API signed are refused (workflows/decisions.py); the payload codec
        # comes with the client's data converter (workflows/client.py).
        interceptors=[LogContextInterceptor(), decision_guard(settings)],
        # Activities are sync (SQLAlchemy, httpx): they run on a thread pool. Few threads on purpose: activities
        # are short database transactions under one GIL, and a thread that holds SQLite's write lock must not
        # wait behind dozens of others for the interpreter.
        activity_executor=ThreadPoolExecutor(max_workers=settings.worker_activity_threads),
        max_concurrent_activities=settings.worker_activity_threads,
        max_concurrent_local_activities=settings.worker_activity_threads,
        # A new case's first workflow task comes from the normal task queue, later ones from this worker's sticky
        # queue. With the SDK's 5 pollers at ratio 0.2 only one poller waited on the normal queue: under a burst of
        # applications most first tasks found no poller, went to the server's backlog and waited there up to ~2 s
        # (schedule-to-start in the histories of the slowest cases in `zhida bench instant-latency`).
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=WORKFLOW_TASK_POLLERS),
        nonsticky_to_sticky_poll_ratio=NONSTICKY_RATIO,
        # The sandbox costs about a third of the worker's CPU per workflow task (it re-imports the workflow module
        # for every run). Determinism is guarded in CI instead: the time-skipping tests run sandboxed and the
        # replay tests replay recorded histories; ZHIDA_WORKFLOW_SANDBOX=true turns it back on here.
        workflow_runner=SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
    )


async def dispatch_notices_forever(
    settings: Settings, *, provider: SmsProvider | None = None, every_seconds: float = 2.0
) -> None:
    """The SMS outbox dispatcher beside the worker (sends, receipt polls, payout pushes); several workers are safe
    (rows are claimed, not shared)."""
    dispatcher = Dispatcher.from_settings(settings, provider)
    while True:
        await asyncio.to_thread(dispatcher.run_round)
        await asyncio.sleep(every_seconds)


async def deliver_receipts_forever(
    settings: Settings, client: Client, gateways: Gateways, *, every_seconds: float = 0.5
) -> None:
    """On the voucher channel, the receipts (回单) take the place of callbacks: each new result is stored and
    signalled to its case, and a return after the case closed starts the correction loop (services.payments)."""
    from services.payments import handle_result
    from services.uow import UnitOfWork

    take = getattr(gateways.treasury, "take_new_results", None)
    if take is None:
        return
    uow = UnitOfWork(settings.db_url)
    log = structlog.get_logger("zhida.receipts")
    while True:
        try:
            for result in await asyncio.to_thread(take):
                await handle_result(uow=uow, client=client, result=result, task_queue=settings.temporal_task_queue)
        except Exception:
            log.exception("receipt_delivery_failed")
        await asyncio.sleep(every_seconds)
