"""The Temporal worker: registers every workflow and the activities with their clients."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.campaign import CampaignActivities, activity_methods
from activities.cases import CaseActivities, WorkflowProbe
from activities.notices import Dispatcher
from activities.reconciliation import ReconciliationActivities
from activities.review import ReviewActivities
from gateways.treasury import HttpTreasuryGateway, TreasuryGateway
from settings import Settings
from workflows.campaign import CampaignObjectionWorkflow, CampaignWorkflow
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
]


def reconciliation_activities(settings: Settings) -> list:
    """对账 (issue 5): the statement is fetched over the signed HTTP adapter, its answer signature-checked."""
    statements = HttpTreasuryGateway(
        settings.treasury_url,
        settings.zhida_private_pem(),
        settings.signing_key_id,
        timeout=60.0,
        treasury_public_pems={settings.treasury_signing_key_id: settings.treasury_public_pem()},
        window_seconds=settings.signature_window_seconds,
    )
    acts = ReconciliationActivities(db_url=settings.db_url, statements=statements)
    return [acts.resolve_statement_day, acts.reconcile]


def case_activities(settings: Settings, treasury: TreasuryGateway | None = None) -> ReviewActivities:
    # Answers from the treasury are signature-checked too, not only its callbacks.
    if treasury is None and settings.treasury_channel == "file":
        from gateways.treasury_files import FileTreasuryGateway

        treasury = FileTreasuryGateway(settings.treasury_file_dir or settings.data_dir / "treasury-files")
    treasury = treasury or HttpTreasuryGateway(
        settings.treasury_url,
        settings.zhida_private_pem(),
        settings.signing_key_id,
        treasury_public_pems={settings.treasury_signing_key_id: settings.treasury_public_pem()},
        window_seconds=settings.signature_window_seconds,
    )
    return ReviewActivities(
        db_url=settings.db_url,
        fernet_key=settings.fernet_key(),
        treasury=treasury,
        notify_url=settings.public_base_url.rstrip("/") + "/api/v1/treasury/callbacks",
        pay_acct_no=settings.pay_acct_no,
        pay_acct_name=settings.pay_acct_name,
        adm_div_code=settings.adm_div_code,
    )


def activity_list(acts: CaseActivities) -> list:
    """Every case activity; the review steps when `acts` is a ReviewActivities (the worker's default)."""
    common = [
        acts.record_received,
        acts.accept_instant,
        acts.send_payment,
        acts.query_payment,
        acts.payment_state,
        acts.settle_case,
        acts.reserve_attempt,
        acts.open_correction,
        acts.record_account_corrected,
        acts.record_event,
        acts.fail_payment,
        acts.note_stage,
        acts.correction_check,
        acts.record_active_return,
    ]
    if isinstance(acts, ReviewActivities):
        common += [
            acts.load_review_plan,
            acts.open_stage,
            acts.record_decision,
            acts.request_supplement,
            acts.open_publicity,
            acts.record_objection,
            acts.record_objection_ruling,
            acts.finance_approve,
            acts.close_case,
        ]
    return common


async def dispatch_notices_forever(settings: Settings, every_seconds: float = 2.0) -> None:
    """The SMS outbox dispatcher beside the worker (sends, receipt polls, payout pushes); several workers are safe
    (rows are claimed, not shared)."""
    dispatcher = Dispatcher.from_settings(settings)
    while True:
        await asyncio.to_thread(dispatcher.run_round)
        await asyncio.sleep(every_seconds)


def build_worker(client: Client, settings: Settings, treasury: TreasuryGateway | None = None) -> Worker:
    # Activities are sync (SQLAlchemy, httpx): they run on a thread pool.
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[
            *activity_list(case_activities(settings, treasury)),
            WorkflowProbe(client=client, db_url=settings.db_url).case_workflow_running,
            *reconciliation_activities(settings),
            *activity_methods(CampaignActivities.from_settings(settings, treasury)),
        ],
        # Few threads on purpose: activities are short database transactions under one GIL, and a thread that
        # holds SQLite's write lock must not wait behind dozens of others for the interpreter.
        activity_executor=ThreadPoolExecutor(max_workers=settings.worker_activity_threads),
        max_concurrent_activities=settings.worker_activity_threads,
        max_concurrent_local_activities=settings.worker_activity_threads,
        # The sandbox costs about a third of the worker's CPU per workflow task (it re-imports the workflow module
        # for every run). Determinism is guarded in CI instead: the time-skipping tests run sandboxed and the
        # replay tests replay recorded histories; ZHIDA_WORKFLOW_SANDBOX=true turns it back on here.
        workflow_runner=SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
    )
