"""A worker process killed mid-payment: a new worker finishes the case with exactly one payment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from cli.demo import DEMO_ITEM, demo_enterprise_uscc
from db.models import BudgetEntry, PaymentInstruction
from db.session import transaction
from gateways.treasury import HttpTreasuryGateway
from settings import Settings
from tests.stack import Stack
from tests.support import eventually

ONE_ENGINE = "a killed worker is the same fault on either engine; faults e2e and payment-store tests pay once on PostgreSQL"


@pytest.fixture
def stack_settings(stack_settings: Settings) -> Settings:
    """Settlement slow enough that the kill surely lands while the case waits for the treasury."""
    stack_settings.treasury_sim_settle_delay_seconds = 2.0
    return stack_settings


def _worker_process(stack: Stack) -> subprocess.Popen:
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
    return subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env, start_new_session=True)


async def test_killed_worker_is_replaced_and_pays_once(bare_stack: Stack) -> None:
    stack = bare_stack
    uscc = demo_enterprise_uscc()
    headers = stack.token("enterprise", uscc)
    first = _worker_process(stack)
    try:
        response = stack.http.post(
            "/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc}, headers=headers
        )
        assert response.status_code == 201, response.text
        case_id = response.json()["id"]
        await stack.wait_status(case_id, {"paying"}, headers)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no graceful shutdown
        first.wait()

    # While no worker runs, the treasury settles and calls back; the case must wait, not fail.
    await asyncio.sleep(3)
    assert stack.http.get(f"/api/v1/cases/{case_id}", headers=headers).json()["status"] == "paying"

    second = _worker_process(stack)
    try:
        case = await stack.wait_status(case_id, {"paid", "payment_failed"}, headers)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)

    assert case["status"] == "paid" and case["paid_fen"] == 10_000_000
    assert [e["kind"] for e in case["events"]].count("paid") == 1
    with transaction(stack.settings.db_url) as session:
        assert session.scalar(select(func.count()).select_from(PaymentInstruction)) == 1
        commits = session.scalars(select(BudgetEntry.amount_fen).where(BudgetEntry.kind == "commit")).all()
        assert commits == [10_000_000]
    gateway = HttpTreasuryGateway(stack.treasury.url, stack.settings.zhida_private_pem(), stack.settings.signing_key_id)
    result = gateway.query(case["payments"][0]["voucher_no"])
    assert result is not None and result.Status == "paid" and result.PaidAmt == 10_000_000


async def test_review_case_survives_a_killed_worker_between_decisions_and_pays_once(bare_stack: Stack) -> None:
    """Review mode: the worker dies while the case waits for a department; a new one takes the decisions and pays once."""
    import copy

    from cli.demo import REVIEW_CONFIG, add_listed_item

    stack = bare_stack
    config = copy.deepcopy(REVIEW_CONFIG)
    for part in ("publicity", "completeness_check"):
        config["approval"].pop(part)
    config["approval"]["stages"] = config["approval"]["stages"][:1]
    with transaction(stack.settings.db_url) as session:
        add_listed_item(session=session, code="YC-2026-JSGZ-K01", department_code="YC-JXJ", config=config)
    uscc = demo_enterprise_uscc()
    headers = stack.token("enterprise", uscc)

    async def post(path: str, body: dict, role: str, subject: str) -> None:
        r = await asyncio.to_thread(stack.http.post, path, json=body, headers=stack.token(role, subject))
        assert r.status_code in (200, 201), r.text
        return r.json()

    async def at_stage(case_id: int, key: str) -> None:
        await eventually(
            lambda: stack.http.get(f"/api/v1/cases/{case_id}/progress", headers=headers),
            lambda r: r.status_code == 200 and (r.json().get("stage") or {}).get("key") == key,
            what=f"stage {key} of case {case_id} to open",
        )

    worker = _worker_process(stack)
    try:
        case = await post(
            "/api/v1/applications", {"fund_item_code": "YC-2026-JSGZ-K01", "uscc": uscc}, "enterprise", uscc
        )
        case_id = case["id"]
        await at_stage(case_id, "first_review")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    worker = _worker_process(stack)
    try:
        await post(
            f"/api/v1/cases/{case_id}/decisions",
            {"stage_key": "first_review", "decision": "approve", "amount_fen": 660_000},
            "department",
            "YC-JXJ",
        )
        await at_stage(case_id, "finance")
        await post(
            f"/api/v1/cases/{case_id}/decisions", {"stage_key": "finance", "decision": "approve"}, "finance", "YC-CZJ"
        )
        case = await stack.wait_status(case_id, {"paid", "payment_failed"}, headers)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    assert case["status"] == "paid" and case["paid_fen"] == 660_000
    assert [e["kind"] for e in case["events"]].count("paid") == 1
    with transaction(stack.settings.db_url) as session:
        rows = session.scalars(select(PaymentInstruction).where(PaymentInstruction.case_id == case_id)).all()
        assert [(p.attempt, p.status) for p in rows] == [(1, "paid")]
