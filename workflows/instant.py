"""即申即享: application → rules check → budget reserve → treasury payment → paid, with no human step."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities
    from schemas.cases import CaseInput, CaseProgress, CaseRef, PaymentRequest, PaymentSignal, PaymentState

DB_STEP = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
}
# Treasury outages are retried with backoff for up to a day; a rejected instruction is not retried.
TREASURY_STEP = {
    "start_to_close_timeout": timedelta(seconds=20),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        non_retryable_error_types=["TreasuryRejected", "NoAccount"],
    ),
}


@workflow.defn
class InstantCaseWorkflow:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        # All state in one serializable structure, so continue-as-new or a query can pass it whole.
        self.progress = CaseProgress(case_id=case.case_id, status="received")
        self.signals: dict[str, str] = {}

    @workflow.run
    async def run(self, case: CaseInput) -> CaseProgress:
        ref = CaseRef(case_id=case.case_id)
        await workflow.execute_activity_method(CaseActivities.record_received, ref, **DB_STEP)

        checked = await workflow.execute_activity_method(CaseActivities.check_eligibility, ref, **DB_STEP)
        self.progress.amount_fen = checked.amount_fen
        if not checked.eligible:
            self.progress.status = "rejected"
            return self.progress
        self.progress.status = "approved"

        reserved = await workflow.execute_activity_method(CaseActivities.reserve_budget, ref, **DB_STEP)
        if not reserved.reserved:
            self.progress.status = "rejected"
            return self.progress
        self.progress.status = "reserved"

        state = await self._pay(PaymentRequest(case_id=case.case_id, attempt=1), case.payment_poll_seconds)
        final = await workflow.execute_activity_method(
            CaseActivities.settle_case, PaymentRequest(case_id=case.case_id, attempt=1), **DB_STEP
        )
        self.progress.payment_status = final.status
        self.progress.status = "paid" if state.status == "paid" else "payment_failed"
        return self.progress

    async def _pay(self, req: PaymentRequest, poll_seconds: float) -> PaymentState:
        """Send once, then wait for the callback signal; query the treasury when it is late."""
        self.progress.payment_attempt = req.attempt
        self.progress.status = "paying"
        state = await workflow.execute_activity_method(CaseActivities.send_payment, req, **TREASURY_STEP)
        voucher = self.progress.voucher_no = state.voucher_no
        while not state.final:
            self.progress.payment_status = state.status
            try:
                await workflow.wait_condition(
                    lambda: voucher in self.signals, timeout=timedelta(seconds=poll_seconds)
                )
                self.signals.pop(voucher, None)
                # The callback endpoint stored the result; the database is the source of truth.
                state = await workflow.execute_activity_method(CaseActivities.payment_state, req, **DB_STEP)
            except TimeoutError:
                state = await workflow.execute_activity_method(CaseActivities.query_payment, req, **TREASURY_STEP)
        self.progress.payment_status = state.status
        return state

    @workflow.signal
    def payment_result(self, signal: PaymentSignal) -> None:
        self.signals[signal.voucher_no] = signal.status

    @workflow.query
    def status(self) -> CaseProgress:
        return self.progress
