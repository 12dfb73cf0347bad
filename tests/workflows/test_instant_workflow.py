"""InstantCaseWorkflow on the time-skipping test server, with recorded in-memory activities: the callback
signal and the polling fallback of the payment stage (failures and returns: test_payment_stage.py)."""

from __future__ import annotations

import uuid

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.cases import (
    CaseInput,
    CaseRef,
    InstantDecision,
    PaymentRequest,
    PaymentSignal,
    PaymentState,
)
from tests.support import eventually
from workflows.instant import InstantCaseWorkflow


@pytest.fixture
def env(ts_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return ts_env


class FakeCase:
    """In-memory stand-ins for CaseActivities, recording every call by name."""

    def __init__(
        self, *, eligible: bool = True, budget_ok: bool = True, outcome: str = "paid", settle_after_queries: int = 0
    ) -> None:
        self.calls: list[str] = []
        self.eligible = eligible
        self.budget_ok = budget_ok
        self.outcome = outcome
        self.settle_after_queries = settle_after_queries
        self.payment_status = "created"

    def activities(self) -> list:
        @activity.defn(name="accept_instant")
        def accept_instant(ref: CaseRef) -> InstantDecision:
            self.calls.append("accept_instant")
            if not self.eligible:
                return InstantDecision(eligible=False, unmet=["资质标签 须含 专精特新：实际 无"])
            reason = None if self.budget_ok else "额度已用完"
            return InstantDecision(eligible=True, amount_fen=500_00, reserved=self.budget_ok, reason=reason)

        @activity.defn(name="send_payment")
        def send_payment(req: PaymentRequest) -> PaymentState:
            self.calls.append("send_payment")
            self.payment_status = "accepted"
            return self._state(req)

        @activity.defn(name="query_payment")
        def query_payment(req: PaymentRequest) -> PaymentState:
            self.calls.append("query_payment")
            if self.calls.count("query_payment") > self.settle_after_queries:
                self.payment_status = self.outcome
            return self._state(req)

        @activity.defn(name="payment_state")
        def payment_state(req: PaymentRequest) -> PaymentState:
            self.calls.append("payment_state")
            return self._state(req)

        @activity.defn(name="settle_case")
        def settle_case(req: PaymentRequest) -> PaymentState:
            self.calls.append("settle_case")
            return self._state(req)

        @activity.defn(name="settle_if_paid")
        def settle_if_paid(req: PaymentRequest) -> PaymentState:
            self.calls.append("settle_if_paid")
            state = self._state(req)
            return state.model_copy(update={"settled": state.status == "paid"})

        return [
            accept_instant,
            send_payment,
            query_payment,
            payment_state,
            settle_case,
            settle_if_paid,
        ]

    def _state(self, req: PaymentRequest) -> PaymentState:
        paid = 500_00 if self.payment_status == "paid" else 0
        return PaymentState(voucher_no=f"V{req.case_id}", status=self.payment_status, paid_amt_fen=paid)


async def _run(env: WorkflowEnvironment, fake: FakeCase, *, signal_status: str | None = None) -> dict:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    from concurrent.futures import ThreadPoolExecutor

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[InstantCaseWorkflow],
        activities=fake.activities(),
        activity_executor=ThreadPoolExecutor(4),
    ):
        handle = await env.client.start_workflow(
            InstantCaseWorkflow.run,
            CaseInput(case_id=7, fund_item_id=1, fund_item_version=1, payment_poll_seconds=600),
            id=f"case:test:{uuid.uuid4().hex}",
            task_queue=queue,
        )
        if signal_status:
            # As the treasury does: the result exists (and is signalled) only after the instruction was sent.
            await eventually(lambda: "send_payment" in fake.calls, what="the payment instruction to be sent", every=0.01)
            fake.payment_status = signal_status
            await handle.signal(
                InstantCaseWorkflow.payment_result, PaymentSignal(voucher_no="V7", status=signal_status)
            )
        result = await handle.result()
        return result.model_dump()


async def test_paid_by_callback_signal(env: WorkflowEnvironment) -> None:
    fake = FakeCase()
    result = await _run(env, fake, signal_status="paid")
    assert result["status"] == "paid" and result["payment_status"] == "paid"
    assert fake.calls.count("send_payment") == 1 and "query_payment" not in fake.calls
    # The result after the signal is read and settled in one local activity (patch settle-with-result).
    assert fake.calls[-1] == "settle_if_paid" and "settle_case" not in fake.calls


async def test_paid_by_polling_when_the_callback_never_comes(env: WorkflowEnvironment) -> None:
    fake = FakeCase(settle_after_queries=2)
    result = await _run(env, fake)
    assert result["status"] == "paid"
    # Two polls said "still accepted", the third found it paid; time skipped 3 × 600 s.
    assert fake.calls.count("query_payment") == 3 and fake.calls.count("send_payment") == 1
    assert fake.calls[-1] == "settle_case"


async def test_ineligible_case_stops_before_budget_and_payment(env: WorkflowEnvironment) -> None:
    fake = FakeCase(eligible=False)
    result = await _run(env, fake)
    assert result["status"] == "rejected" and "专精特新" in result["reason"]
    assert fake.calls == ["accept_instant"]


async def test_budget_exhausted_rejects_without_payment(env: WorkflowEnvironment) -> None:
    fake = FakeCase(budget_ok=False)
    result = await _run(env, fake)
    assert result["status"] == "rejected"
    assert "send_payment" not in fake.calls
