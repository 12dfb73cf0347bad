"""即申即享: application → rules check → budget reserve → treasury payment → paid, with no human step."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities
    from schemas.cases import CaseInput, CaseProgress, CaseRef
    from schemas.vocabulary import CaseStatus

from workflows.payment import DB_STEP, PaymentHandlers
from workflows.versions import ACCEPT_AND_SEND, patched

# ACCEPT_AND_SEND: histories recorded before acceptance and the first send were one local activity run
# accept_instant, then the send.


@workflow.defn
class InstantCaseWorkflow(PaymentHandlers):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        # All state in one serializable structure, so continue-as-new or a query can pass it whole.
        self.progress = CaseProgress(case_id=case.case_id, status=CaseStatus.RECEIVED)
        self._init_payment(case.payment_poll_seconds, case.code_version)

    @workflow.run
    async def run(self, case: CaseInput) -> CaseProgress:
        ref = CaseRef(case_id=case.case_id)
        # 受理, rules check and budget reservation are one short database unit of work, run as a local activity:
        # one workflow task instead of three server round trips (see `zhida bench instant-latency`). Since
        # accept-and-send the same local activity also creates and sends the payment instruction (one unit of work,
        # one local activity and one load of the case less); a failed send falls back to the durable activity.
        combined = patched(ACCEPT_AND_SEND, self.code_version)
        decision = await workflow.execute_local_activity_method(
            CaseActivities.accept_and_send if combined else CaseActivities.accept_instant, ref, **DB_STEP
        )
        self.progress.amount_fen = decision.amount_fen
        if not decision.eligible:
            self.progress.status = CaseStatus.REJECTED
            self.progress.reason = "；".join(decision.unmet)
            return self.progress
        if not decision.reserved:
            self.progress.status = CaseStatus.REJECTED
            self.progress.reason = decision.reason
            return self.progress
        self.progress.status = CaseStatus.RESERVED

        await self.pay(case.case_id, attempt=1, first=decision if combined else None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress

    @workflow.query
    def status(self) -> CaseProgress:
        return self.progress
