"""The payment stage shared by every case workflow: send, wait for the result, correct the account, pay again.

Attempt n has the deterministic voucher ZD{case}A{n}; attempt n+1 is created only after attempt n ended
failed or returned, so a case can never be paid twice. Workflows mix in `PaymentHandlers` for the callback
signal and the enterprise's and finance's updates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities
    from schemas.audit import AuditNote
    from schemas.cases import (
        AccountCorrection,
        BudgetDecision,
        CaseProgress,
        EventRecord,
        InstantDecision,
        PaymentRequest,
        PaymentSignal,
        PaymentState,
        PaymentStep,
        StageNote,
    )
    from schemas.vocabulary import AuditKind, Awaiting, CaseStatus, EventKind, PaymentStatus

from workflows.versions import SEND_LOCAL_FIRST, SETTLE_WITH_RESULT, patched

DB_STEP = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
}
# The send's refusals (error types): the instruction cannot be made, or the treasury refused it; never retried.
REFUSALS = ("TreasuryRejected", "NoAccount")
# Treasury outages are retried with backoff for up to a day; a rejected instruction is not retried.
TREASURY_STEP = {
    "start_to_close_timeout": timedelta(seconds=20),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        non_retryable_error_types=list(REFUSALS),
    ),
}
# The fast path of the send: one try, short, in the worker that runs the workflow task.
TREASURY_FAST_STEP = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_attempts=1),
}
# Patches (workflows/versions.py): SEND_LOCAL_FIRST — histories recorded before the fast path existed replay with
# the durable send only; SETTLE_WITH_RESULT — before it, settle_if_paid's work was two local activities.
MAX_ATTEMPTS = 3


def refuse(field: str, rule: str, message: str) -> ApplicationError:
    """A refused update: the API maps `rule` to 409 (state) or 422 (invalid_*) and names `field`."""
    return ApplicationError(message, {"field": field, "rule": rule}, type=rule, non_retryable=True)


async def wait_until(condition, until: datetime | None) -> bool:
    """Wait for the condition or the absolute time (a durable timer); True when the condition held."""
    if until is None:
        await workflow.wait_condition(condition)
        return True
    remaining = until - workflow.now()
    if remaining <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=remaining)
        return True
    except TimeoutError:
        return condition()


def _refused(exc: FailureError) -> bool:
    """The instruction cannot be made (no account) or the treasury refused it: not worth another try.

    A failed activity arrives as ActivityError with the ApplicationError as its cause; a failed local
    activity as the ApplicationError itself."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return isinstance(cause, ApplicationError) and cause.type in REFUSALS


class PaymentHandlers:
    """State and handlers of the payment stage; a workflow class inherits them and sets `progress`."""

    progress: CaseProgress
    poll_seconds: float
    finance_department: str = ""
    code_version: int

    def _init_payment(self, poll_seconds: float, code_version: int = 0) -> None:
        self.poll_seconds = poll_seconds
        self.code_version = code_version
        self.results: dict[str, str] = {}
        self.corrected: AccountCorrection | None = None
        self.budget_decision: BudgetDecision | None = None

    # -- handlers ------------------------------------------------------------------------------------------

    @workflow.signal
    def payment_result(self, signal: PaymentSignal) -> None:
        self.results[signal.voucher_no] = signal.status

    @workflow.update
    async def correct_account(self, correction: AccountCorrection) -> CaseProgress:
        self.corrected = correction
        return self.progress

    @correct_account.validator
    def _validate_correction(self, correction: AccountCorrection) -> None:
        if self.progress.awaiting != Awaiting.ACCOUNT_CORRECTION:
            raise refuse("case_id", "not_awaiting_correction", "办件当前不在等待更正收款账户的环节，无需更正")

    @workflow.update
    async def decide_budget(self, decision: BudgetDecision) -> CaseProgress:
        self.budget_decision = decision
        return self.progress

    @decide_budget.validator
    def _validate_budget(self, decision: BudgetDecision) -> None:
        if self.progress.awaiting != Awaiting.BUDGET_DECISION:
            raise refuse("case_id", "not_awaiting_budget", "办件当前不需要财政重新安排预算")
        if self.finance_department and decision.department != self.finance_department:
            raise refuse(
                "department",
                "not_your_turn",
                f"department：只有财政部门 {self.finance_department} 可以决定重新安排预算",
            )

    # -- the stage -----------------------------------------------------------------------------------------

    async def pay(self, case_id: int, attempt: int = 1, first: InstantDecision | None = None) -> CaseStatus:
        """Pay until paid or finally failed; the budget of `attempt` is already reserved. Returns the status.

        `first`: accept_and_send already tried the first send of `attempt` (its outcome is in the decision)."""
        while True:
            state = await self._send_and_wait(PaymentRequest(case_id=case_id, attempt=attempt), first)
            first = None
            if state is not None and state.status == PaymentStatus.PAID:
                if not state.settled:
                    await workflow.execute_local_activity_method(
                        CaseActivities.settle_case, PaymentRequest(case_id=case_id, attempt=attempt), **DB_STEP
                    )
                self.progress.status = CaseStatus.PAID
                self.progress.awaiting = None
                return CaseStatus.PAID
            if not await self.correct_and_reserve(case_id, attempt):
                return CaseStatus.PAYMENT_FAILED
            attempt += 1

    async def correct_and_reserve(self, case_id: int, attempt: int) -> bool:
        """After attempt n failed or came back: ask for a corrected account, then reserve attempt n+1."""
        if attempt >= MAX_ATTEMPTS:
            await self._fail(case_id, attempt, f"已支付{attempt}次均未成功，达到最大支付次数")
            return False
        opened = await workflow.execute_activity_method(
            CaseActivities.open_correction, PaymentStep(case_id=case_id, attempt=attempt, now=workflow.now()), **DB_STEP
        )
        self.progress.status = CaseStatus.AWAITING_CORRECTION
        self.progress.reason = opened.reason
        self.progress.deadlines[Awaiting.ACCOUNT_CORRECTION] = opened.due_at
        self.progress.awaiting = Awaiting.ACCOUNT_CORRECTION
        self.corrected = None
        done = lambda: self.corrected is not None  # noqa: E731
        if not await wait_until(done, opened.remind_at) and opened.remind_at is not None:
            note = StageNote(
                case_id=case_id,
                stage_key=Awaiting.ACCOUNT_CORRECTION,
                round=attempt,
                kind="enterprise_reminder",
                due_at=opened.due_at,
                task="收款账户更正",
            )
            await workflow.execute_activity_method(CaseActivities.note_stage, note, **DB_STEP)
        if not await wait_until(done, opened.due_at):
            self.progress.awaiting = None
            await self._fail(case_id, attempt, "企业逾期未更正收款账户")
            return False
        assert self.corrected is not None
        self.progress.awaiting = None
        await workflow.execute_activity_method(
            CaseActivities.record_account_corrected,
            PaymentStep(case_id=case_id, attempt=attempt, actor=self.corrected.actor),
            **DB_STEP,
        )
        if opened.cross_year:
            # The money went back to last year's finance: only a new budget decision pays it again.
            self.budget_decision = None
            self.progress.awaiting = Awaiting.BUDGET_DECISION
            await workflow.wait_condition(lambda: self.budget_decision is not None)
            decision = self.budget_decision
            assert decision is not None
            self.progress.awaiting = None
            await workflow.execute_activity_method(
                CaseActivities.record_event,
                EventRecord(
                    case_id=case_id,
                    key=f"budget_decision:{attempt}",
                    kind=EventKind.BUDGET_DECISION,
                    actor=decision.actor,
                    reason=decision.comment or ("财政同意重新安排预算" if decision.approve else "财政不再安排预算"),
                    data={"approve": decision.approve},
                    # The decision's audit record commits with its event (a second write after the update could be
                    # lost to a crash); the command sequence is unchanged, only the activity's input grew.
                    audit=AuditNote(
                        kind=AuditKind.DECISION,
                        actor=decision.actor,
                        subject=f"case:{case_id}",
                        data={"decision": "budget", "approve": decision.approve, "comment": decision.comment},
                    ),
                ),
                **DB_STEP,
            )
            if not decision.approve:
                await self._fail(case_id, attempt, "跨年度退票，财政未重新安排预算")
                return False
        reserved = await workflow.execute_activity_method(
            CaseActivities.reserve_attempt, PaymentStep(case_id=case_id, attempt=attempt + 1), **DB_STEP
        )
        if not reserved.reserved:
            await self._fail(case_id, attempt, reserved.reason or "预算额度不足")
            return False
        return True

    async def _fail(self, case_id: int, attempt: int, reason: str) -> None:
        await workflow.execute_activity_method(
            CaseActivities.fail_payment, PaymentStep(case_id=case_id, attempt=attempt, reason=reason), **DB_STEP
        )
        self.progress.status = CaseStatus.PAYMENT_FAILED
        self.progress.reason = reason

    async def _send(self, req: PaymentRequest) -> PaymentState:
        """The send: first once as a local activity (no activity task, no extra workflow task: the common case
        costs the server one workflow task less), then, if that failed for any reason but a refusal, as the
        durable activity that retries a treasury outage with backoff for up to a day. The treasury deduplicates
        the resend by VoucherNo, so a fast attempt that reached it before failing is harmless."""
        if patched(SEND_LOCAL_FIRST, self.code_version):
            try:
                return await workflow.execute_local_activity_method(
                    CaseActivities.send_payment, req, **TREASURY_FAST_STEP
                )
            except FailureError as exc:
                if _refused(exc):
                    raise
                workflow.logger.info("fast send failed, falling back to the durable activity: %s", exc)
        return await workflow.execute_activity_method(CaseActivities.send_payment, req, **TREASURY_STEP)

    async def _sent_with_acceptance(self, req: PaymentRequest, first: InstantDecision) -> PaymentState:
        """The outcome of the send accept_and_send tried: its state; a refusal raised as the send would have raised
        it; any other failure sent again by the durable activity (as after a failed fast send in `_send`)."""
        if first.sent is not None:
            return first.sent
        if first.send_error in REFUSALS:
            raise ApplicationError(first.send_reason or first.send_error, type=first.send_error, non_retryable=True)
        workflow.logger.info("fast send failed, falling back to the durable activity: %s", first.send_reason)
        return await workflow.execute_activity_method(CaseActivities.send_payment, req, **TREASURY_STEP)

    async def _send_and_wait(self, req: PaymentRequest, first: InstantDecision | None = None) -> PaymentState | None:
        """Send once, then wait for the callback signal; query the treasury when it is late.

        None when the instruction could not be made at all (no account, or the treasury refused it).
        """
        self.progress.payment_attempt = req.attempt
        self.progress.status = CaseStatus.PAYING
        try:
            state = await (self._send(req) if first is None else self._sent_with_acceptance(req, first))
        except FailureError as exc:
            if _refused(exc):
                self.progress.payment_status = PaymentStatus.FAILED
                return None
            raise
        voucher = self.progress.voucher_no = state.voucher_no
        while not state.final:
            self.progress.payment_status = state.status
            try:
                await workflow.wait_condition(
                    lambda: voucher in self.results, timeout=timedelta(seconds=self.poll_seconds)
                )
                self.results.pop(voucher, None)
                # The callback endpoint stored the result; the database is the source of truth. A paid result is
                # settled in the same local activity (settle_if_paid), one workflow-side step less per paid case.
                read = (
                    CaseActivities.settle_if_paid
                    if patched(SETTLE_WITH_RESULT, self.code_version)
                    else CaseActivities.payment_state
                )
                state = await workflow.execute_local_activity_method(read, req, **DB_STEP)
            except TimeoutError:
                state = await workflow.execute_activity_method(CaseActivities.query_payment, req, **TREASURY_STEP)
        self.progress.payment_status = state.status
        return state
