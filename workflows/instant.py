"""即申即享: application → rules check → budget reserve → treasury payment → paid, with no human step."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities
    from schemas.cases import CaseInput, CaseProgress, CaseRef

from workflows.payment import DB_STEP, PaymentHandlers


@workflow.defn
class InstantCaseWorkflow(PaymentHandlers):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        # All state in one serializable structure, so continue-as-new or a query can pass it whole.
        self.progress = CaseProgress(case_id=case.case_id, status="received")
        self._init_payment(case.payment_poll_seconds)

    @workflow.run
    async def run(self, case: CaseInput) -> CaseProgress:
        ref = CaseRef(case_id=case.case_id)
        # Short database steps run as local activities: one workflow task instead of a server round trip each,
        # which is what keeps application → instruction under a second (see `zhida bench instant-latency`).
        await workflow.execute_local_activity_method(CaseActivities.record_received, ref, **DB_STEP)

        checked = await workflow.execute_local_activity_method(CaseActivities.check_eligibility, ref, **DB_STEP)
        self.progress.amount_fen = checked.amount_fen
        if not checked.eligible:
            self.progress.status = "rejected"
            self.progress.reason = "；".join(checked.unmet)
            return self.progress
        self.progress.status = "approved"

        reserved = await workflow.execute_local_activity_method(CaseActivities.reserve_budget, ref, **DB_STEP)
        if not reserved.reserved:
            self.progress.status = "rejected"
            self.progress.reason = reserved.reason
            return self.progress
        self.progress.status = "reserved"

        await self.pay(case.case_id, attempt=1)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress

    @workflow.query
    def status(self) -> CaseProgress:
        return self.progress
