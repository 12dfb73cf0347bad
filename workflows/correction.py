"""PaymentCorrectionWorkflow: the account-correction loop for a payment that failed or came back after its
case workflow ended (a 退票 days after `paid`, or a failed line of a no-application batch).

Started by workflows.client.start_correction with ID correction:{case}:{voucher}. When the case's own
workflow still runs it does nothing: that workflow sees the result and corrects the account itself.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities, WorkflowProbe
    from schemas.cases import CaseProgress, CaseRef, CorrectionInput, CorrectionOutcome, PaymentStep
    from schemas.vocabulary import CaseStatus, ReturnKind

from workflows.payment import DB_STEP, PaymentHandlers

POLL_SECONDS = 15.0


@workflow.defn(name="PaymentCorrectionWorkflow")
class PaymentCorrectionWorkflow(PaymentHandlers):
    @workflow.init
    def __init__(self, inp: CorrectionInput) -> None:
        self.progress = CaseProgress(case_id=inp.case_id, status=CaseStatus.AWAITING_CORRECTION, voucher_no=inp.voucher_no)
        self._init_payment(POLL_SECONDS)

    @workflow.run
    async def run(self, inp: CorrectionInput) -> CorrectionOutcome:
        def outcome(result: str, attempt: int = 0) -> CorrectionOutcome:
            return CorrectionOutcome(case_id=inp.case_id, voucher_no=inp.voucher_no, result=result, attempt=attempt)  # type: ignore[arg-type]

        check = await workflow.execute_activity_method(CaseActivities.correction_check, inp, **DB_STEP)
        if not check.applicable:
            self.progress.reason = check.reason
            return outcome("not_applicable")
        # A running case workflow handles results of the attempt it waits for; one it already settled as paid
        # (committed) it will never look at again, even while it is still finishing.
        if not check.committed:
            running = await workflow.execute_activity_method(
                WorkflowProbe.case_workflow_running, CaseRef(case_id=inp.case_id), **DB_STEP
            )
            if running:
                return outcome("handled_by_case")
        self.finance_department = check.finance_department
        if check.kind == ReturnKind.ACTIVE:
            await workflow.execute_activity_method(
                CaseActivities.record_active_return,
                PaymentStep(case_id=inp.case_id, attempt=check.attempt),
                **DB_STEP,
            )
            self.progress.status = CaseStatus.REFUNDED
            return outcome("closed", check.attempt)
        if not await self.correct_and_reserve(inp.case_id, check.attempt):
            await workflow.wait_condition(workflow.all_handlers_finished)
            return outcome(CaseStatus.PAYMENT_FAILED, check.attempt)
        result = await self.pay(inp.case_id, attempt=check.attempt + 1)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome(result, self.progress.payment_attempt)  # type: ignore[arg-type]

    @workflow.query
    def status(self) -> CaseProgress:
        return self.progress
