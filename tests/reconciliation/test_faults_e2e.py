"""Instant cases end to end (API → Temporal → signed HTTP → stand-in → signed callbacks) under injected faults.

Every case ends paid, or failed with the treasury's reason; no voucher is paid twice; our books equal the
stand-in's ledger.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import create_engine, text
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from standins.treasury import REASON_NO_ACCOUNT, FaultRule, ledger_lines
from tests.reconciliation.stack_support import FINAL_CASE, admin, apply, eligible_usccs, instructions
from tests.stack import Stack
from tests.support import eventually
from workflows.client import connect, correction_workflow_id


def _paid_once_and_books_agree(stack: Stack) -> None:
    engine = stack.treasury.server.config.app.state.sim.engine
    paid = [x["voucher_no"] for x in ledger_lines(engine) if x["entry"] == "paid"]
    assert len(paid) == len(set(paid)), "a voucher was paid twice"
    ours = instructions(stack)
    with admin(stack) as sim:
        accounts = sim.ledger().Accounts
    net = sum(a.NetAmt for a in accounts)
    gross = sum(a.PaidAmt for a in accounts)
    assert net == sum(i.paid_amt_fen for i in ours if i.status == "paid")
    assert gross == sum(i.paid_amt_fen for i in ours if i.status in ("paid", "returned"))
    assert sorted(paid) == sorted(i.voucher_no for i in ours if i.status in ("paid", "returned"))


async def test_transient_faults_still_pay_every_case_exactly_once(stack: Stack) -> None:
    """5xx, slow answers past the client timeout, duplicate and out-of-order callbacks, all at once."""
    with admin(stack) as sim:
        sim.set_faults(
            FaultRule(Kind="error_5xx", Rate=1.0, Times=3),  # the first three requests get a 503
            FaultRule(Kind="timeout", Rate=1.0, Times=1, DelaySeconds=5.5),  # then one stored, answered too late
            FaultRule(Kind="duplicate_callback", Rate=1.0, Copies=3),
            FaultRule(Kind="out_of_order", Rate=1.0),
            seed=11,
        )
    usccs = eligible_usccs(stack, 4)
    case_ids = [apply(stack, uscc) for uscc in usccs]
    waits = [
        stack.wait_status(cid, FINAL_CASE, stack.token("enterprise", u))
        for cid, u in zip(case_ids, usccs, strict=True)
    ]
    finals = await asyncio.gather(*waits)
    assert [c["status"] for c in finals] == ["paid"] * 4
    assert all(c["paid_fen"] == c["amount_fen"] == 10_000_000 for c in finals)
    # Let the duplicate and stale (out-of-order) callbacks arrive: they must change nothing.
    await eventually(
        lambda: _pending_callbacks(stack), lambda n: n == 0, what="the stand-in to deliver every queued callback"
    )
    with admin(stack) as sim:
        fired = sim.injected()
    print("faults fired:", fired)
    assert fired["duplicate_callback"] >= 4 and fired["out_of_order"] >= 4
    assert (fired["error_5xx"], fired["timeout"]) == (3, 1)
    assert {i.status for i in instructions(stack)} == {"paid"}
    _paid_once_and_books_agree(stack)


def _pending_callbacks(stack: Stack) -> int:
    engine = create_engine(stack.settings.treasury_db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM tsim_callback WHERE state = 'pending'")).scalar_one()
    finally:
        engine.dispose()


async def test_a_failed_line_ends_the_attempt_with_the_treasury_reason(stack: Stack) -> None:
    with admin(stack) as sim:
        sim.set_faults(FaultRule(Kind="fail", Rate=1.0, Reason=REASON_NO_ACCOUNT))
    [uscc] = eligible_usccs(stack, 1)
    case_id = apply(stack, uscc)
    case = await stack.wait_status(
        case_id, {"paid", "payment_failed", "awaiting_correction"}, stack.token("enterprise", uscc)
    )
    assert case["status"] in ("payment_failed", "awaiting_correction")
    [payment] = case["payments"]
    assert (payment["status"], payment["paid_amt_fen"], payment["fail_reason"]) == ("failed", 0, REASON_NO_ACCOUNT)
    assert REASON_NO_ACCOUNT in (case["outcome_reason"] or "") or any(
        REASON_NO_ACCOUNT in (e.get("reason") or "") for e in case["events"]
    )
    _paid_once_and_books_agree(stack)


async def test_a_return_after_the_case_closed_is_recorded_and_opens_the_correction(stack: Stack) -> None:
    """Passive return (退票) after paid, then an active return on another case; both recorded, each opens a correction."""
    with admin(stack) as sim:
        sim.set_faults(FaultRule(Kind="passive_return", Rate=1.0, DelaySeconds=1.5, Reason="收款人户名不符"))
    first, second = eligible_usccs(stack, 2)
    passive_case = apply(stack, first)
    paid = await stack.wait_status(passive_case, FINAL_CASE, stack.token("enterprise", first))
    assert paid["status"] == "paid"
    with admin(stack) as sim:
        sim.set_faults()
    active_case = apply(stack, second)
    assert (await stack.wait_status(active_case, FINAL_CASE, stack.token("enterprise", second)))["status"] == "paid"
    active_voucher = next(i.voucher_no for i in instructions(stack) if i.case_id == active_case)
    with admin(stack) as sim:
        sim.active_return(active_voucher, "企业申请主动退回资金")

    client = await connect(stack.settings)
    rows = await eventually(
        lambda: {i.case_id: i for i in instructions(stack)},
        lambda rows: all(rows[c].status == "returned" for c in (passive_case, active_case)),
        what="both payments to be recorded as returned",
    )
    passive, active = rows[passive_case], rows[active_case]
    assert (passive.status, passive.return_kind, passive.return_reason) == ("returned", "passive", "收款人户名不符")
    assert (active.status, active.return_kind, active.return_reason) == ("returned", "active", "企业申请主动退回资金")
    for row in (passive, active):
        assert row.returned_amt_fen == row.paid_amt_fen == 10_000_000 and row.returned_at > row.settled_at
        # The case workflow had finished: the callback started the correction workflow for this voucher.
        described = await _describe_when_started(client, correction_workflow_id(row.case_id, row.voucher_no))
        assert described.workflow_type == "PaymentCorrectionWorkflow"
        assert described.status is not None and described.status != WorkflowExecutionStatus.TERMINATED
    _paid_once_and_books_agree(stack)


async def _describe_when_started(client, workflow_id: str):
    return await eventually(
        client.get_workflow_handle(workflow_id).describe, what=f"{workflow_id} to be started", ignore=(RPCError,)
    )
