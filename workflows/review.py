"""申报审批: completeness check → department stages (sequential, 联审 in parallel) → publicity with objections
→ finance approval → payment, driven by the pinned fund item version's approval flow.

Decisions, resubmissions, objections, withdrawal and revocation arrive as updates whose validators refuse
what is not allowed now (wrong department, stage closed, decided twice) with a Chinese message naming the
field and the rule; a refused update leaves the state unchanged. Deadlines come from an activity (the
calendar lives in the database) and are waited for with durable timers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.review import ReviewActivities
    from schemas.calendar import DeadlineMove
    from schemas.cases import (
        CaseInput,
        CaseProgress,
        CaseRef,
        CloseRequest,
        DecisionIn,
        DecisionRecord,
        DecisionView,
        EventRecord,
        FinanceStep,
        ObjectionFiled,
        ObjectionOpen,
        ObjectionRuling,
        ObjectionRulingRecord,
        PublicityOpen,
        Resubmission,
        ReviewPlan,
        RevokeIn,
        StageNote,
        StageOpen,
        StageOpened,
        StagePlan,
        StageView,
        SupplementRequest,
        WithdrawIn,
    )
    from schemas.vocabulary import (
        STAGE_CASE_STATUS,
        ActorKind,
        Awaiting,
        CaseStatus,
        DecisionKind,
        EventKind,
        JointMode,
        StageKind,
        SystemActor,
        TimeoutPolicy,
        actor,
    )

from workflows.payment import DB_STEP, PaymentHandlers, refuse, wait_until
from workflows.versions import (
    PUBLICITY_DEADLINE_MOVES,
    REVIEW_ELIGIBILITY_AT_APPLICATION,
    STAGE_TIMEOUT_WITHOUT_REMINDER,
    patched,
)

# How a stage or the run ends besides a department's decision: closed (withdrawn, revoked) or done (paid, failed).
CLOSED = "closed"
DONE = "done"


@workflow.defn
class ReviewCaseWorkflow(PaymentHandlers):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self.case_id = case.case_id
        self.progress = CaseProgress(case_id=case.case_id, status=CaseStatus.RECEIVED)
        self._init_payment(case.payment_poll_seconds, case.code_version)
        self.plan: ReviewPlan | None = None
        self.stage: StagePlan | None = None
        self.round = 0
        self.rounds: dict[str, int] = {}
        self.votes: dict[str, DecisionKind] = {}
        self.in_flight: set[str] = set()
        self.outcome: DecisionKind | None = None
        self.outcome_reason = ""
        self.resubmitted: Resubmission | None = None
        self.closing: CloseRequest | None = None
        self.closed = False
        self.before_payment = True
        self.publicity_open = False
        self.known_objections: set[int] = set()
        self.upheld: ObjectionRuling | None = None
        self.deadline_moves = 0  # counts move_deadline signals, so a waiting timer restarts at the new time
        self.supplement_remind_at: datetime | None = None
        self.publicity_due_at: datetime | None = None

    # -- main line ---------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, case: CaseInput) -> CaseProgress:
        ref = CaseRef(case_id=case.case_id)
        await workflow.execute_activity_method(ReviewActivities.record_received, ref, **DB_STEP)
        plan = self.plan = await workflow.execute_activity_method(ReviewActivities.load_review_plan, ref, **DB_STEP)
        self.finance_department = plan.finance.departments[0]
        self.progress.amount_fen = plan.amount_fen
        if plan.reject_at_application and patched(REVIEW_ELIGIBILITY_AT_APPLICATION, self.code_version):
            # The item rejects at once on definitely unmet quantified conditions: no department sees the case,
            # the enterprise is told the 不足之处.
            await self._close(
                CloseRequest(
                    case_id=self.case_id,
                    kind=CaseStatus.REJECTED,
                    actor=SystemActor.RULES,
                    reason="不符合申报条件：" + "；".join(plan.unmet),
                    key="rejected:eligibility",
                    data={"unmet": plan.unmet, "at_application": True},
                )
            )
            return await self._finish(DONE)

        for stage in plan.stages:
            outcome = await self._stage(stage)
            if outcome != DecisionKind.APPROVE:
                return await self._finish(outcome)

        if plan.publicity_days and not await self._publicity():
            return await self._finish(DecisionKind.REJECT if self.upheld else CLOSED)

        if not plan.finance_auto:
            outcome = await self._stage(plan.finance)
            if outcome != DecisionKind.APPROVE:
                return await self._finish(outcome)
        if self.closing:
            return await self._finish(CLOSED)
        finance = (
            SystemActor.FINANCE if plan.finance_auto else actor(ActorKind.DEPARTMENT, self.finance_department)
        )
        reserved = await workflow.execute_activity_method(
            ReviewActivities.finance_approve,
            FinanceStep(case_id=self.case_id, actor=finance, amount_fen=self.progress.amount_fen),
            **DB_STEP,
        )
        if not reserved.reserved:
            self.progress.status = CaseStatus.REJECTED
            self.progress.reason = reserved.reason
            return await self._finish(DONE)
        if self.closing:  # withdrawn while the budget was being reserved: close releases it
            return await self._finish(CLOSED)
        self.before_payment = False
        self.progress.stage = None
        self.progress.status = CaseStatus.RESERVED
        await self.pay(self.case_id, attempt=1)
        return await self._finish(DONE)

    async def _finish(self, outcome: str) -> CaseProgress:
        """Close the case for a rejection, withdrawal or revocation; wait for running handlers."""
        if outcome == DecisionKind.REJECT:
            await self._close(
                CloseRequest(
                    case_id=self.case_id,
                    kind=CaseStatus.REJECTED,
                    actor=SystemActor.WORKFLOW
                    if not self.upheld
                    else actor(ActorKind.DEPARTMENT, self.upheld.department),
                    reason=self.outcome_reason or "审核未通过",
                    key=f"rejected:{self.stage.key if self.stage else 'publicity'}",
                )
            )
        elif outcome == CLOSED and self.closing and not self.closed:
            await self._close(self.closing)
        self.progress.stage = None
        self.progress.awaiting = None
        self.closed = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress

    async def _close(self, request: CloseRequest) -> None:
        await workflow.execute_activity_method(ReviewActivities.close_case, request, **DB_STEP)
        self.progress.status = request.kind
        self.progress.reason = request.reason
        self.closed = True

    def _stopping(self) -> bool:
        return self.closing is not None

    # -- department stages -------------------------------------------------------------------------------------

    async def _stage(self, stage: StagePlan) -> str:
        """Run a stage until approved, rejected or closed; a return for supplement reopens it as a new round."""
        while True:
            self.round = self.rounds[stage.key] = self.rounds.get(stage.key, 0) + 1
            self.stage, self.votes, self.outcome, self.outcome_reason = stage, {}, None, ""
            opened = await self._open(stage, stage.departments, escalated=False)
            decided: Callable[[], bool] = lambda: (self.outcome is not None and not self.in_flight) or self._stopping()  # noqa: E731
            await self._remind_then_wait(stage, opened, decided)
            if not decided():
                await self._on_timeout(stage, opened, decided)
            if self._stopping():
                return CLOSED
            if self.outcome == DecisionKind.RETURN:
                if not await self._supplement(stage):
                    return CLOSED
                continue
            assert self.outcome is not None
            return self.outcome

    async def _open(self, stage: StagePlan, departments: list[str], *, escalated: bool) -> StageOpened:
        opened = await workflow.execute_activity_method(
            ReviewActivities.open_stage,
            StageOpen(
                case_id=self.case_id,
                stage=stage,
                round=self.round,
                now=workflow.now(),
                departments=departments,
                escalated=escalated,
            ),
            **DB_STEP,
        )
        self.progress.status = STAGE_CASE_STATUS[stage.kind]
        self.progress.stage = StageView(
            key=stage.key,
            name=stage.name,
            round=self.round,
            departments=list(departments),
            pending=[d for d in departments if d not in self.votes],
            joint_mode=JointMode.ANY if escalated else stage.joint_mode,
            due_at=opened.due_at,
            remind_at=opened.remind_at,
            provisional=opened.provisional,
            escalated=escalated,
        )
        self.progress.deadlines[stage.key] = opened.due_at
        return opened

    async def _remind_then_wait(self, stage: StagePlan, opened: StageOpened, decided: Callable[[], bool]) -> None:
        # A stage without a reminder time (remind_before_working_days=0, or the reminder day already past) used to
        # wait for the decision alone and never time out; it now goes straight to the due time.
        if self._view_time("remind_at") is None and patched(STAGE_TIMEOUT_WITHOUT_REMINDER, self.code_version):
            await self._wait_stage(decided, "due_at")
            return
        if not await self._wait_stage(decided, "remind_at") and self._view_time("remind_at") is not None:
            await self._note(stage, "reminder", opened)
        await self._wait_stage(decided, "due_at")

    def _view_time(self, which: str):
        return getattr(self.progress.stage, which) if self.progress.stage else None

    async def _wait_stage(self, decided: Callable[[], bool], which: str) -> bool:
        """Wait for the decision or the open stage's reminder / due time (moved by move_deadline)."""
        return await self._wait_moving(decided, lambda: self._view_time(which), reminder=which == "remind_at")

    async def _wait_moving(
        self, done: Callable[[], bool], until: Callable[[], datetime | None], *, reminder: bool
    ) -> bool:
        """wait_until(done, until()) whose timer restarts at the new time when a deadline is moved (move_deadline).
        Without a move this is one wait_until, as before the signal existed (recorded histories replay)."""
        while True:
            seen, at = self.deadline_moves, until()
            if at is None and seen and reminder:
                return False  # moved to a deadline whose reminder has passed: go on to wait for the due time
            held = await wait_until(lambda seen=seen: done() or self.deadline_moves != seen, at)
            if self.deadline_moves == seen or done():
                return held and done()

    async def _note(self, stage: StagePlan, kind: str, opened: StageOpened, policy: str = "") -> None:
        pending = self.progress.stage.pending if self.progress.stage else []
        await workflow.execute_activity_method(
            ReviewActivities.note_stage,
            StageNote(
                case_id=self.case_id,
                stage_key=stage.key,
                escalated=bool(self.progress.stage and self.progress.stage.escalated),
                round=self.round,
                kind=kind,  # type: ignore[arg-type]
                policy=policy,
                pending=list(pending),
                due_at=self._view_time("due_at") or opened.due_at,
            ),
            **DB_STEP,
        )

    async def _on_timeout(self, stage: StagePlan, opened: StageOpened, decided: Callable[[], bool]) -> None:
        """The configured policy: escalate (the target decides alone, once), auto-approve or auto-reject."""
        policy = stage.on_timeout
        await self._note(stage, "timeout", opened, policy.label)
        if policy == TimeoutPolicy.AUTO_APPROVE:
            for department in list(self.progress.stage.pending if self.progress.stage else []):
                await self._record(
                    DecisionIn(
                        stage_key=stage.key, department=department, decision=DecisionKind.APPROVE,
                        actor=SystemActor.TIMEOUT,
                        comment="逾期未办理，视为同意",
                    ),
                    system=True,
                )  # fmt: skip
            self.outcome = DecisionKind.APPROVE
        elif policy == TimeoutPolicy.AUTO_REJECT:
            self.outcome_reason = f"{stage.name}逾期未办理，视为不同意"
            self.outcome = DecisionKind.REJECT
        elif policy == TimeoutPolicy.ESCALATE and stage.escalate_to:
            opened = await self._open(stage, [stage.escalate_to], escalated=True)
            await self._remind_then_wait(stage, opened, decided)
            if not decided():
                await self._note(stage, "timeout", opened, TimeoutPolicy.WAIT.label)
        if not decided():
            await workflow.wait_condition(decided)

    def _tally(self, stage: StagePlan, department: str, decision: DecisionKind, comment: str) -> None:
        self.votes[department] = decision
        view = self.progress.stage
        assert view is not None
        view.pending = [d for d in view.pending if d != department]
        if self.outcome is not None:
            return
        single = view.escalated or view.joint_mode == JointMode.ANY
        if decision == DecisionKind.RETURN:
            self.outcome_reason = comment or "材料需补正"
            self.outcome = DecisionKind.RETURN
        elif decision == DecisionKind.REJECT and (not single or not view.pending):
            label = f"{stage.name}（{department}）" if len(view.departments) > 1 else stage.name
            self.outcome_reason = f"{label}不同意：{comment}" if comment else f"{label}不同意"
            if single:  # 'any' mode: rejected only when nobody approved
                approved = DecisionKind.APPROVE in self.votes.values()
                self.outcome = DecisionKind.APPROVE if approved else DecisionKind.REJECT
            else:
                self.outcome = DecisionKind.REJECT
        elif decision == DecisionKind.APPROVE and (single or not view.pending):
            self.outcome = DecisionKind.APPROVE

    async def _record(self, decision: DecisionIn, *, system: bool = False) -> None:
        stage, round_ = self.stage, self.round
        assert stage is not None
        self.in_flight.add(decision.department)
        try:
            await workflow.execute_activity_method(
                ReviewActivities.record_decision,
                DecisionRecord(case_id=self.case_id, round=round_, decision=decision, system=system),
                **DB_STEP,
            )
        finally:
            self.in_flight.discard(decision.department)
        self.progress.decisions.append(
            DecisionView(
                stage_key=decision.stage_key,
                round=round_,
                department=decision.department,
                decision=decision.decision,
                actor=decision.actor,
                comment=decision.comment,
                amount_fen=decision.amount_fen,
            )
        )
        if decision.decision == DecisionKind.APPROVE and decision.amount_fen is not None:
            self.progress.amount_fen = decision.amount_fen
        if self.stage is stage and self.round == round_:
            self._tally(stage, decision.department, decision.decision, decision.comment)

    # -- supplement (补正) --------------------------------------------------------------------------------------

    async def _supplement(self, stage: StagePlan) -> bool:
        """Back to the enterprise with a deadline; True when it resubmitted in time."""
        assert self.plan is not None
        self.progress.supplements += 1
        self.resubmitted = None
        opened = await workflow.execute_activity_method(
            ReviewActivities.request_supplement,
            SupplementRequest(
                case_id=self.case_id,
                stage_key=stage.key,
                round=self.round,
                times=self.progress.supplements,
                comment=self.outcome_reason,
                days=self.plan.supplement_days,
                now=workflow.now(),
            ),
            **DB_STEP,
        )
        self.progress.status = CaseStatus.SUPPLEMENT
        self.progress.awaiting = Awaiting.SUPPLEMENT
        self.progress.stage = None
        self.progress.deadlines[Awaiting.SUPPLEMENT] = opened.due_at
        self.supplement_remind_at = opened.remind_at
        done = lambda: self.resubmitted is not None or self._stopping()  # noqa: E731
        due = lambda: self.progress.deadlines[Awaiting.SUPPLEMENT]  # noqa: E731
        reminded = await self._wait_moving(done, lambda: self.supplement_remind_at, reminder=True)
        if not reminded and self.supplement_remind_at is not None:
            note = StageNote(
                case_id=self.case_id,
                stage_key=Awaiting.SUPPLEMENT,
                round=self.progress.supplements,
                kind="enterprise_reminder",
                due_at=due(),
                task="补正材料",
            )
            await workflow.execute_activity_method(ReviewActivities.note_stage, note, **DB_STEP)
        if not await self._wait_moving(done, due, reminder=False):
            self.closing = CloseRequest(
                case_id=self.case_id,
                kind=CaseStatus.WITHDRAWN,
                actor=SystemActor.TIMEOUT,
                reason="企业逾期未补正材料，视为撤回申报",
                key=CaseStatus.WITHDRAWN,
            )
        self.progress.awaiting = None
        if self._stopping():
            return False
        assert self.resubmitted is not None
        times = self.progress.supplements
        await workflow.execute_activity_method(
            ReviewActivities.record_event,
            EventRecord(
                case_id=self.case_id,
                key=f"resubmitted:{times}",
                kind=EventKind.SUPPLEMENT_RECEIVED,
                actor=self.resubmitted.actor,
                to_status=CaseStatus.REVIEWING,
                reason=self.resubmitted.comment or "企业已补正材料",
                data={"times": times},
            ),
            **DB_STEP,
        )
        return True

    # -- publicity (公示) and objections ------------------------------------------------------------------------

    async def _publicity(self) -> bool:
        """The publicity timer; open objections suspend the case until ruled. False when rejected or closed."""
        assert self.plan is not None
        self.stage = None
        self.progress.stage = None
        opened = await workflow.execute_activity_method(
            ReviewActivities.open_publicity,
            PublicityOpen(case_id=self.case_id, days=self.plan.publicity_days, now=workflow.now()),
            **DB_STEP,
        )
        self.progress.status = CaseStatus.PUBLICITY
        self.progress.deadlines[CaseStatus.PUBLICITY] = opened.due_at
        self.publicity_open = True
        stop = lambda: self.upheld is not None or self._stopping()  # noqa: E731
        self.publicity_due_at = opened.due_at
        if patched(PUBLICITY_DEADLINE_MOVES, self.code_version):
            # The publicity end follows a recomputed deadline (move_deadline), like a stage's due time.
            await self._wait_moving(stop, lambda: self.publicity_due_at, reminder=False)
        else:
            await wait_until(stop, opened.due_at)
        self.publicity_open = False
        if self.progress.objections_open and not stop():
            self.progress.awaiting = Awaiting.OBJECTION_RULING
        await workflow.wait_condition(lambda: stop() or (not self.progress.objections_open and not self.in_flight))
        self.progress.awaiting = None
        if self.upheld is not None:
            comment = f"：{self.upheld.comment}" if self.upheld.comment else ""
            self.outcome_reason = f"公示期异议经核查成立{comment}"
            return False
        return not self._stopping()

    # -- updates -----------------------------------------------------------------------------------------------

    @workflow.update
    async def decide(self, decision: DecisionIn) -> CaseProgress:
        self._check_decision(decision)  # again: another update may have got in between
        await self._record(decision)
        return self.progress

    @decide.validator
    def _validate_decide(self, decision: DecisionIn) -> None:
        self._check_decision(decision)

    def _check_decision(self, d: DecisionIn) -> None:
        stage, view = self.stage, self.progress.stage
        if self.closed or self._stopping():
            raise refuse("case_id", "case_closed", "办件已办结或正在关闭，不能再作出审核决定")
        if stage is None or view is None or self.outcome is not None:
            raise refuse("stage_key", "stage_not_open", "办件当前没有待审核的环节（可能在补正、公示或支付中）")
        if d.stage_key != stage.key:
            raise refuse(
                "stage_key",
                "not_current_stage",
                f"stage_key：当前环节是“{stage.name}”（{stage.key}），不是 {d.stage_key}",
            )
        if d.department in self.votes or d.department in self.in_flight:
            raise refuse(
                "department", "already_decided", f"department：部门 {d.department} 已在本环节作出决定，不能重复"
            )
        if d.department not in view.pending:
            raise refuse(
                "department",
                "not_your_turn",
                f"department：部门 {d.department} 不是“{stage.name}”的待办部门（待办：{'、'.join(view.pending)}）",
            )
        plan = self.plan
        assert plan is not None
        if d.decision == DecisionKind.RETURN:
            if stage.kind == StageKind.FINANCE:
                raise refuse("decision", "finance_no_return", "decision：财政审核环节不能退回补正")
            if plan.supplement_max == 0:
                raise refuse("decision", "supplement_not_configured", "decision：本事项未配置补正，不能退回补正")
            if self.progress.supplements >= plan.supplement_max:
                raise refuse(
                    "decision",
                    "supplement_limit",
                    f"decision：本事项最多退回补正 {plan.supplement_max} 次，已用完",
                )
            if not d.comment.strip():
                raise refuse("comment", "invalid_comment_required", "comment：退回补正须写明需补正的内容")
        if d.decision == DecisionKind.REJECT and not d.comment.strip():
            raise refuse("comment", "invalid_comment_required", "comment：不同意须写明理由")
        if d.amount_fen is not None:
            if d.decision != DecisionKind.APPROVE:
                raise refuse("amount_fen", "invalid_amount_with_decision", "amount_fen：只有同意时才能核定金额")
            if plan.amount_fen is not None:
                raise refuse(
                    "amount_fen",
                    "invalid_amount_quantified",
                    f"amount_fen：扶持标准已完全量化，金额由系统按标准计算为 {plan.amount_fen} 分，不能人工核定",
                )
            if plan.max_fen is not None and d.amount_fen > plan.max_fen:
                raise refuse(
                    "amount_fen",
                    "invalid_amount_over_cap",
                    f"amount_fen：核定金额 {d.amount_fen} 分超过扶持标准上限 {plan.max_fen} 分",
                )
            if d.amount_fen <= 0:
                raise refuse("amount_fen", "invalid_amount", "amount_fen：核定金额须大于 0")
        if (
            stage.kind == StageKind.FINANCE
            and d.decision == DecisionKind.APPROVE
            and d.amount_fen is None
            and not self.progress.amount_fen
        ):
            raise refuse(
                "amount_fen", "invalid_amount_required", "amount_fen：金额尚未核定，财政审核同意时须填写核定金额"
            )

    @workflow.update
    async def resubmit(self, resubmission: Resubmission) -> CaseProgress:
        self.resubmitted = resubmission
        return self.progress

    @resubmit.validator
    def _validate_resubmit(self, resubmission: Resubmission) -> None:
        if self.progress.awaiting != Awaiting.SUPPLEMENT or self.resubmitted is not None:
            raise refuse("case_id", "not_awaiting_supplement", "办件当前不在补正环节，无需补正提交")

    @workflow.update
    async def file_objection(self, filed: ObjectionFiled) -> CaseProgress:
        assert self.plan is not None
        self.known_objections.add(filed.objection_id)
        self.progress.objections_open.append(filed.objection_id)
        self.in_flight.add(f"objection:{filed.objection_id}")
        try:
            await workflow.execute_activity_method(
                ReviewActivities.record_objection,
                ObjectionOpen(
                    case_id=self.case_id,
                    objection_id=filed.objection_id,
                    department=self.plan.objection_department,
                    now=workflow.now(),
                ),
                **DB_STEP,
            )
        finally:
            self.in_flight.discard(f"objection:{filed.objection_id}")
        if not self.upheld:
            self.progress.status = CaseStatus.OBJECTION
        return self.progress

    @file_objection.validator
    def _validate_objection(self, filed: ObjectionFiled) -> None:
        if self.plan is None or not self.plan.objections_allowed:
            raise refuse("case_id", "objections_not_allowed", "本事项公示不接受异议")
        if not self.publicity_open or self._stopping():
            raise refuse("case_id", "publicity_closed", "办件不在公示期内，不能提出异议")
        if filed.objection_id in self.known_objections:
            raise refuse("objection_id", "already_filed", "该异议已登记")

    @workflow.update
    async def rule_objection(self, ruling: ObjectionRuling) -> CaseProgress:
        if ruling.objection_id not in self.progress.objections_open:
            raise refuse(
                "objection_id", "objection_not_open", f"objection_id：异议 {ruling.objection_id} 不是待核查的异议"
            )
        self.progress.objections_open.remove(ruling.objection_id)
        self.in_flight.add(f"ruling:{ruling.objection_id}")
        try:
            await workflow.execute_activity_method(
                ReviewActivities.record_objection_ruling,
                ObjectionRulingRecord(case_id=self.case_id, ruling=ruling),
                **DB_STEP,
            )
        finally:
            self.in_flight.discard(f"ruling:{ruling.objection_id}")
        if ruling.uphold and self.upheld is None:
            self.upheld = ruling
        elif not self.progress.objections_open and self.upheld is None:
            self.progress.status = CaseStatus.PUBLICITY
        return self.progress

    @rule_objection.validator
    def _validate_ruling(self, ruling: ObjectionRuling) -> None:
        if self.plan is None or ruling.objection_id not in self.progress.objections_open:
            raise refuse(
                "objection_id", "objection_not_open", f"objection_id：异议 {ruling.objection_id} 不是待核查的异议"
            )
        if ruling.department != self.plan.objection_department:
            raise refuse(
                "department",
                "not_your_turn",
                f"department：异议由 {self.plan.objection_department} 核查，{ruling.department} 无权作出核查结论",
            )

    @workflow.update
    async def withdraw(self, request: WithdrawIn) -> CaseProgress:
        self.closing = CloseRequest(
            case_id=self.case_id,
            kind=CaseStatus.WITHDRAWN,
            actor=request.actor,
            reason=request.reason,
            key=CaseStatus.WITHDRAWN,
        )
        await workflow.wait_condition(lambda: self.closed)
        return self.progress

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawIn) -> None:
        self._check_closable()

    @workflow.update
    async def revoke(self, request: RevokeIn) -> CaseProgress:
        self.closing = CloseRequest(
            case_id=self.case_id,
            kind=CaseStatus.REVOKED,
            actor=request.actor,
            reason=request.reason,
            key=CaseStatus.REVOKED,
            data={"department": request.department},
        )
        await workflow.wait_condition(lambda: self.closed)
        return self.progress

    @revoke.validator
    def _validate_revoke(self, request: RevokeIn) -> None:
        self._check_closable()
        plan = self.plan
        allowed = set()
        if plan is not None:
            allowed = {plan.owner_department, plan.finance.departments[0], plan.objection_department}
            allowed |= {d for s in plan.stages for d in s.departments}
        if request.department not in allowed:
            raise refuse(
                "department",
                "not_case_department",
                f"department：部门 {request.department} 不是本办件的审核部门，无权撤销",
            )

    def _check_closable(self) -> None:
        if self.closed or self._stopping():
            raise refuse("case_id", "case_closed", "办件已办结或正在关闭")
        if not self.before_payment:
            raise refuse("case_id", "payment_started", "办件已进入拨付环节，不能撤回或撤销")

    @workflow.signal
    def move_deadline(self, move: DeadlineMove) -> None:
        """A provisional deadline recomputed after its year's holidays were imported (computed and recorded
        outside the workflow); applies only to the stage round (or the supplement) it names, while it is open."""
        if move.stage_key == Awaiting.SUPPLEMENT:
            if self.progress.awaiting == Awaiting.SUPPLEMENT and move.round == self.progress.supplements:
                self.progress.deadlines[Awaiting.SUPPLEMENT] = move.due_at
                self.supplement_remind_at = move.remind_at
                self.deadline_moves += 1
            return
        if move.stage_key == CaseStatus.PUBLICITY:
            if self.publicity_open:
                self.publicity_due_at = self.progress.deadlines[CaseStatus.PUBLICITY] = move.due_at
                self.deadline_moves += 1
            return
        view = self.progress.stage
        if view is None or view.key != move.stage_key or view.round != move.round or self.outcome is not None:
            return
        if not set(move.departments) & set(view.departments):
            return  # a move for the departments before an escalation
        view.due_at, view.remind_at, view.provisional = move.due_at, move.remind_at, move.provisional
        self.progress.deadlines[move.stage_key] = move.due_at
        self.deadline_moves += 1

    @workflow.query
    def status(self) -> CaseProgress:
        return self.progress
