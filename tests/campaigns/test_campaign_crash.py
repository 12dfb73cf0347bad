"""A worker process killed in the middle of a campaign: a new worker finishes it, every enterprise paid once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from db.models import BudgetEntry, Case, CaseEvent, Notice, PaymentInstruction
from db.repositories import fund_items
from db.session import transaction
from gateways.treasury import HttpTreasuryGateway
from settings import Settings
from tests.campaigns.support import AMOUNT_FEN, add_enterprises
from tests.campaigns.test_campaign_stack import REGION, config, list_item, wait_campaign
from tests.stack import Stack
from tests.support import eventually

ONE_ENGINE = "a killed worker is the same fault on either engine; faults e2e and payment-store tests pay once on PostgreSQL"

N = 60


@pytest.fixture
def stack_settings(stack_settings: Settings) -> Settings:
    """Settlement slow enough that the kill lands while instructions wait at the treasury."""
    stack_settings.treasury_sim_settle_delay_seconds = 1.5
    return stack_settings


def _worker(stack: Stack) -> subprocess.Popen:
    s = stack.settings
    env = os.environ | {
        "ZHIDA_DATA_DIR": str(s.data_dir),
        "ZHIDA_DATABASE_URL": s.db_url,
        "ZHIDA_TEMPORAL_ADDRESS": s.temporal_address,
        "ZHIDA_TEMPORAL_NAMESPACE": s.temporal_namespace,
        "ZHIDA_TEMPORAL_TASK_QUEUE": s.temporal_task_queue,
        "ZHIDA_TREASURY_URL": s.treasury_url,
        "ZHIDA_PUBLIC_BASE_URL": s.public_base_url,
    }
    return subprocess.Popen([sys.executable, "-m", "cli", "bench", "campaign-worker"], env=env, start_new_session=True)


def _instructions(stack: Stack, code: str) -> int:
    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=code)
        query = select(func.count()).select_from(PaymentInstruction).join(Case).where(Case.fund_item_id == item.id)
        return int(session.scalar(query) or 0)


async def test_killed_worker_mid_campaign_is_replaced_and_pays_each_enterprise_once(bare_stack: Stack) -> None:
    stack = bare_stack
    stack.api.server.config.app.state.campaign_options = {"batch_size": 10, "pay_batch_size": 10, "poll_seconds": 0.3}
    code = "T7-CRASH-001"
    with transaction(stack.settings.db_url) as session:
        add_enterprises(session, stack.settings.fernet_key(), N, seed=31, region=REGION)
    first = _worker(stack)
    try:
        list_item(stack, code, config(budget_fen=N * AMOUNT_FEN))
        await eventually(lambda: _instructions(stack, code), what=f"a first payment instruction of {code}", every=0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no graceful shutdown
        first.wait()
    sent_at_kill = _instructions(stack, code)
    assert 0 < sent_at_kill < N, "the kill must land mid-campaign"
    await asyncio.sleep(2)  # the treasury settles what it has while no worker runs

    second = _worker(stack)
    try:
        done = await wait_campaign(stack, code, lambda p: p["finished"], timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    assert done["paid"] == N and done["paid_fen"] == N * AMOUNT_FEN and done["failed"] == 0
    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=code)
        case_ids = session.scalars(select(Case.id).where(Case.fund_item_id == item.id)).all()
        assert len(case_ids) == N
        vouchers = session.scalars(
            select(PaymentInstruction.voucher_no).where(PaymentInstruction.case_id.in_(case_ids))
        ).all()
        assert len(vouchers) == len(set(vouchers)) == N
        paid_events = session.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id.in_(case_ids), CaseEvent.kind == "paid")
        )
        assert paid_events == N
        commits = session.scalars(
            select(BudgetEntry.amount_fen).where(BudgetEntry.case_id.in_(case_ids), BudgetEntry.kind == "commit")
        ).all()
        assert commits == [AMOUNT_FEN] * N
        notices = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.case_id.in_(case_ids), Notice.template_key == "paid")
        )
        assert notices == N
    # The treasury's side: each voucher once, each paid once.
    gateway = HttpTreasuryGateway(stack.treasury.url, stack.settings.zhida_private_pem(), stack.settings.signing_key_id)
    results = gateway.query_many(vouchers)
    assert len(results) == N and {r.Status for r in results.values()} == {"paid"}
    assert sum(r.PaidAmt for r in results.values()) == N * AMOUNT_FEN
