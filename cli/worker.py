"""The Temporal worker: registers every workflow and the activities with their clients."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.cases import CaseActivities
from activities.notices import Dispatcher
from gateways.treasury import HttpTreasuryGateway, TreasuryGateway
from settings import Settings
from workflows.instant import InstantCaseWorkflow

WORKFLOWS = [InstantCaseWorkflow]


def case_activities(settings: Settings, treasury: TreasuryGateway | None = None) -> CaseActivities:
    # Answers from the treasury are signature-checked too, not only its callbacks.
    treasury = treasury or HttpTreasuryGateway(
        settings.treasury_url,
        settings.zhida_private_pem(),
        settings.signing_key_id,
        treasury_public_pems={settings.treasury_signing_key_id: settings.treasury_public_pem()},
        window_seconds=settings.signature_window_seconds,
    )
    return CaseActivities(
        db_url=settings.db_url,
        fernet_key=settings.fernet_key(),
        treasury=treasury,
        notify_url=settings.public_base_url.rstrip("/") + "/api/v1/treasury/callbacks",
        pay_acct_no=settings.pay_acct_no,
        pay_acct_name=settings.pay_acct_name,
        adm_div_code=settings.adm_div_code,
    )


def activity_list(acts: CaseActivities) -> list:
    return [
        acts.record_received,
        acts.check_eligibility,
        acts.reserve_budget,
        acts.send_payment,
        acts.query_payment,
        acts.payment_state,
        acts.settle_case,
    ]


async def dispatch_notices_forever(settings: Settings, every_seconds: float = 2.0) -> None:
    """The SMS outbox dispatcher beside the worker; several workers are safe (rows are claimed, not shared)."""
    dispatcher = Dispatcher.from_settings(settings)
    while True:
        await asyncio.to_thread(dispatcher.dispatch_due)
        await asyncio.sleep(every_seconds)


def build_worker(client: Client, settings: Settings, treasury: TreasuryGateway | None = None) -> Worker:
    # Activities are sync (SQLAlchemy, httpx): they run on a thread pool.
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=activity_list(case_activities(settings, treasury)),
        activity_executor=ThreadPoolExecutor(max_workers=32),
        max_concurrent_activities=32,
    )
