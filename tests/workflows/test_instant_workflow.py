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
    CorrectionOpened,
    InstantDecision,
    PaymentRequest,
    PaymentSignal,
    PaymentState,
    PaymentStep,
    StageNote,
)
from tests.support import eventually
from workflows.instant import InstantCaseWorkflow


@pytest.fixture
def env(ts_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return ts_env


class FakeCase:
    """In-memory stand-ins for CaseActivities, recording every call by name."""

    def __init__(
        self,
        *,
        eligible: bool = True,
        budget_ok: bool = True,
        outcome: str = "paid",
        settle_after_queries: int = 0,
        send_error: str | None = None,
    ) -> None:
        self.calls: list[str] = []
        self.send_error = send_error  # what accept_and_send's first send fails with (None: it is accepted)
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

        @activity.defn(name="accept_and_send")
        def accept_and_send(ref: CaseRef) -> InstantDecision:
            decision = accept_instant(ref)
            self.calls[-1] = "accept_and_send"
            if not decision.reserved:
                return decision
            if self.send_error:
                return decision.model_copy(update={"send_error": self.send_error, "send_reason": "模拟发送失败"})
            self.payment_status = "accepted"
            return decision.model_copy(update={"sent": self._state(PaymentRequest(case_id=ref.case_id, attempt=1))})

        @activity.defn(name="open_correction")
        def open_correction(step: PaymentStep) -> CorrectionOpened:
            self.calls.append("open_correction")
            now = step.now
            return CorrectionOpened(attempt=step.attempt, voucher_no=f"V{step.case_id}", due_at=now, remind_at=now)

        @activity.defn(name="note_stage")
        def note_stage(note: StageNote) -> None:
            self.calls.append("note_stage")

        @activity.defn(name="fail_payment")
        def fail_payment(step: PaymentStep) -> None:
            self.calls.append("fail_payment")

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
            accept_and_send,
            open_correction,
            note_stage,
            fail_payment,
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
            sent = lambda: fake.payment_status == "accepted"  # noqa: E731 - by accept_and_send or send_payment
            await eventually(sent, what="the payment instruction to be sent", every=0.01)
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
    # Acceptance and the first send are one local activity (patch accept-and-send): no separate send.
    assert fake.calls[0] == "accept_and_send" and "send_payment" not in fake.calls and "query_payment" not in fake.calls
    # The result after the signal is read and settled in one local activity (patch settle-with-result).
    assert fake.calls == ["accept_and_send", "settle_if_paid"]


async def test_paid_by_polling_when_the_callback_never_comes(env: WorkflowEnvironment) -> None:
    fake = FakeCase(settle_after_queries=2)
    result = await _run(env, fake)
    assert result["status"] == "paid"
    # Two polls said "still accepted", the third found it paid; time skipped 3 × 600 s.
    assert fake.calls.count("query_payment") == 3 and "send_payment" not in fake.calls
    assert fake.calls[0] == "accept_and_send" and fake.calls[-1] == "settle_case"


async def test_ineligible_case_stops_before_budget_and_payment(env: WorkflowEnvironment) -> None:
    fake = FakeCase(eligible=False)
    result = await _run(env, fake)
    assert result["status"] == "rejected" and "专精特新" in result["reason"]
    assert fake.calls == ["accept_and_send"]


async def test_budget_exhausted_rejects_without_payment(env: WorkflowEnvironment) -> None:
    fake = FakeCase(budget_ok=False)
    result = await _run(env, fake)
    assert result["status"] == "rejected"
    assert "send_payment" not in fake.calls


async def test_a_failed_first_send_is_sent_again_by_the_durable_activity(env: WorkflowEnvironment) -> None:
    fake = FakeCase(send_error="TreasuryUnavailable")
    result = await _run(env, fake, signal_status="paid")
    assert result["status"] == "paid"
    assert fake.calls == ["accept_and_send", "send_payment", "settle_if_paid"]


async def test_a_refused_first_send_is_not_sent_again_and_opens_the_correction(env: WorkflowEnvironment) -> None:
    fake = FakeCase(send_error="TreasuryRejected")
    result = await _run(env, fake)
    assert result["status"] == "payment_failed" and result["payment_status"] == "failed"
    # A refusal is final for the attempt: no durable resend, the enterprise is asked to correct its account.
    assert fake.calls == ["accept_and_send", "open_correction", "note_stage", "fail_payment"]
