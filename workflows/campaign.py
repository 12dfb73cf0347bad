"""免申即享 campaigns: one workflow per listed version (or re-evaluation), working in batches of thousands.

match → reserve (shortfall policy) → [consent waves] → per wave: [publicity] → finance decision → pay →
results → settled. The workflow holds counters and a phase; the database holds every case's state, so the
history stays small and continue-as-new carries a few numbers. Only exceptions get a workflow of their own:
a failed or returned payment (the correction loop) and an objection during publicity.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.campaign import CampaignActivities
    from schemas.audit import AuditNote
    from schemas.campaigns import (
        BatchIn,
        BatchOut,
        CampaignInput,
        CampaignPlan,
        CampaignProgress,
        CampaignRef,
        CampaignState,
        FinanceAck,
        FinanceDecision,
        FinanceRecord,
        ObjectionInput,
        ObjectionOutcome,
        ObjectionRuleIn,
        ObjectionRuling,
        ResultsOut,
        TrancheInfo,
    )
    from schemas.cases import CorrectionInput
    from schemas.vocabulary import CampaignKind, CaseStatus, FinanceStatus, ObjectionStatus, SystemActor
    from workflows.client import CORRECTION_WORKFLOW, correction_workflow_id

_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30))
# A batch heartbeats between chunks of rows: a worker that dies mid-batch is noticed in seconds, not minutes.
BULK = {"start_to_close_timeout": timedelta(minutes=10), "heartbeat_timeout": timedelta(seconds=20), "retry_policy": _RETRY}
# One row or one decision: over in well under a second, so no heartbeat to wait for.
SHORT = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": _RETRY}
TREASURY = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=20),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        non_retryable_error_types=["TreasuryRejected", "CampaignNotFound"],
    ),
}
AUTO_ACTOR = SystemActor.AUTO


def objection_workflow_id(case_id: int) -> str:
    return f"objection:{case_id}"


@workflow.defn
class CampaignWorkflow:
    @workflow.init
    def __init__(self, inp: CampaignInput) -> None:
        self.inp = inp
        self.state: CampaignState = inp.state
        self.plan: CampaignPlan | None = None
        self.decisions: dict[int, FinanceDecision] = {}
        self.awaiting: int | None = None
        self.collect_now = False
        self.steps = 0

    # -- queries, updates, signals -------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> CampaignProgress:
        c = self.state.counters
        return CampaignProgress(
            campaign_id=self.inp.campaign_id,
            fund_item_code=self.plan.fund_item_code if self.plan else "",
            kind=self.plan.kind if self.plan else CampaignKind.LISTING,
            phase=self.state.phase,
            matched=c.matched,
            reserved=c.reserved,
            exhausted=c.exhausted,
            lapsed=c.lapsed,
            instructed=c.instructed,
            paid=c.paid,
            failed=c.failed,
            paid_fen=c.paid_fen,
            tranche=self.state.tranche,
            awaiting_tranche=self.awaiting,
            finished=self.state.phase == "done",
        )

    @workflow.update
    def finance_decision(self, decision: FinanceDecision) -> FinanceAck:
        """The finance bureau decides on the whole wave at once (one decision, with its totals)."""
        self.decisions[decision.tranche] = decision
        return FinanceAck(tranche=decision.tranche, approve=decision.approve)

    @finance_decision.validator
    def _check_decision(self, decision: FinanceDecision) -> None:
        if self.awaiting is None:
            raise ValueError("当前没有等待财政审核的批次")
        if decision.tranche != self.awaiting:
            raise ValueError(f"当前等待财政审核的是第 {self.awaiting} 批，不是第 {decision.tranche} 批")
        if decision.tranche in self.decisions:
            raise ValueError(f"第 {decision.tranche} 批已有审核决定")

    @workflow.signal
    def collect(self, note: AuditNote | None = None) -> None:
        """Collect consent answers now (an operator's extra wave). The request's audit record travels with it and is
        written by the collection it brings forward (or the finish, when no collection comes)."""
        self.collect_now = True
        if note is not None:
            self.state.collect_notes.append(note)

    # -- helpers -------------------------------------------------------------------------------------------

    async def _act(self, fn, arg, options=BULK):
        self.steps += 1
        return await workflow.execute_activity_method(fn, arg, **options)

    def _batch(self, **kw) -> BatchIn:
        return BatchIn(campaign_id=self.inp.campaign_id, limit=self.inp.batch_size, **kw)

    def _maybe_continue(self) -> None:
        info = workflow.info()
        if (self.steps >= self.inp.max_steps_per_run or info.is_continue_as_new_suggested()) and (
            workflow.all_handlers_finished()
        ):
            workflow.continue_as_new(self.inp.model_copy(update={"state": self.state}))

    async def _loop(self, fn, batch: BatchIn) -> int:
        """Run a batch activity until it reports nothing left; returns how many cases it processed."""
        total = 0
        while True:
            out: BatchOut = await self._act(fn, batch)
            total += out.processed
            if out.done or out.processed == 0:
                return total

    # -- the run -------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CampaignInput) -> CampaignProgress:
        ref = CampaignRef(campaign_id=inp.campaign_id)
        self.plan = plan = await self._act(CampaignActivities.campaign_open, ref, SHORT)
        s = self.state
        while True:
            if s.phase == "match":
                out: BatchOut = await self._act(
                    CampaignActivities.campaign_match, self._batch(after_enterprise_id=s.after_enterprise_id)
                )
                s.counters.matched += out.processed
                s.counters.reserved += out.reserved
                s.counters.exhausted += out.exhausted
                s.after_enterprise_id = out.after_enterprise_id
                if out.done:
                    s.phase = "reserve"
            elif s.phase == "reserve":
                out = await self._act(CampaignActivities.campaign_reserve, self._batch())
                s.counters.reserved += out.reserved
                s.counters.exhausted += out.exhausted
                if out.done:
                    if plan.consent:
                        s.phase = "consent"
                    else:
                        s.phase, s.tranche, s.step, s.final_wave = "tranche", 1, "open", True
            elif s.phase == "consent":
                await self._act(CampaignActivities.campaign_consent_open, ref, SHORT)
                await self._loop(CampaignActivities.campaign_consent_notify, self._batch())
                s.phase, s.next_wave_at = "wave", workflow.now() + timedelta(seconds=inp.wave_seconds)
            elif s.phase == "wave":
                await self._wave(ref)
            elif s.phase == "tranche":
                await self._tranche()
            else:
                break
            self._maybe_continue()
        if self.state.collect_notes:  # requests no collection followed (the campaign had no wave left)
            ref = ref.model_copy(update={"audit": list(self.state.collect_notes)})
        return await self._act(CampaignActivities.campaign_finish, ref, SHORT)

    async def _wave(self, ref: CampaignRef) -> None:
        """Wait for the next wave (hourly by default, the deadline last) and collect the answers."""
        s = self.state
        window = await self._act(CampaignActivities.campaign_consent_open, ref, SHORT)  # fixed once; cheap to reread
        due = window.due_at
        now = workflow.now()
        # A collect-now that came while the campaign was not yet waiting (notifying, or paying the previous wave) is
        # kept for this wave; before this patch it was dropped here, silently.
        keep = workflow.patched("campaign-collect-request-kept")
        if now < due:
            wake = min(s.next_wave_at or due, due)
            if not keep:
                self.collect_now = False
            try:
                await workflow.wait_condition(lambda: self.collect_now, timeout=max(wake - now, timedelta(0)))
            except TimeoutError:
                pass
        if keep:
            self.collect_now = False  # this collection answers every request so far
        final = workflow.now() >= due
        batch = self._batch(final=final)
        ready = lapsed = 0
        notes = list(s.collect_notes)
        while True:
            # The first batch writes the collect-now requests' records with its own effect.
            step = batch.model_copy(update={"audit": notes}) if notes else batch
            out: BatchOut = await self._act(CampaignActivities.campaign_collect, step)
            s.collect_notes = s.collect_notes[len(notes) :]
            notes = []
            ready += out.processed - out.lapsed
            lapsed += out.lapsed
            if out.done:
                break
        s.counters.lapsed += lapsed
        s.next_wave_at = workflow.now() + timedelta(seconds=self.inp.wave_seconds)
        if ready:
            s.phase, s.tranche, s.step, s.final_wave = "tranche", s.tranche + 1, "open", final
        elif final:
            s.phase = "done"

    async def _tranche(self) -> None:
        """One wave: open it, publicity, finance decision, approve, pay, collect the results."""
        s, plan = self.state, self.plan
        assert plan is not None
        batch = self._batch(tranche=s.tranche)
        if s.step == "open":
            info: TrancheInfo = await self._act(CampaignActivities.campaign_tranche_open, batch, SHORT)
            s.step = "publicity" if plan.publicity else "finance"
            if info.cases == 0:
                s.step = "results"
        elif s.step == "publicity":
            info = await self._act(CampaignActivities.campaign_publicity_open, batch, SHORT)
            await self._loop(CampaignActivities.campaign_publicity_notify, batch)
            assert info.publicity_due_at is not None
            wait = info.publicity_due_at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            for case_id in await self._act(CampaignActivities.campaign_objected, batch, SHORT):
                await self._start_objection(case_id)
            s.step = "finance"
        elif s.step == "finance":
            if plan.finance_auto:
                decision = FinanceDecision(tranche=s.tranche, approve=True, actor=AUTO_ACTOR, note="扶持标准完全量化")
            else:
                self.awaiting = s.tranche
                await workflow.wait_condition(lambda: s.tranche in self.decisions)
                decision = self.decisions[s.tranche]
                self.awaiting = None
            record = FinanceRecord(campaign_id=self.inp.campaign_id, decision=decision)
            info = await self._act(CampaignActivities.campaign_finance, record, SHORT)
            # an approved wave is approved case by case as its instructions are created (one pass)
            s.step = "pay" if info.finance_status == FinanceStatus.APPROVED else "approve"
        elif s.step == "approve":
            await self._loop(CampaignActivities.campaign_approve, batch)  # a refused wave: budget released
            s.step = "pay"
        elif s.step == "pay":
            # Sending and settling overlap: while the treasury accepts one batch, the last one is settled.
            pay = BatchIn(campaign_id=self.inp.campaign_id, limit=self.inp.pay_batch_size, tranche=s.tranche)
            sending = asyncio.ensure_future(self._pay_all(pay))
            await self._results(pay, sending)
            await sending
            s.step = "results"
        elif s.step == "results":
            await self._results(BatchIn(campaign_id=self.inp.campaign_id, limit=self.inp.pay_batch_size), None)
            s.phase = "wave" if plan.consent and not s.final_wave else "done"
            s.step = "open"

    async def _pay_all(self, pay: BatchIn) -> None:
        while True:
            out: BatchOut = await self._act(CampaignActivities.campaign_pay, pay, TREASURY)
            self.state.counters.failed += out.failed
            if out.done:
                return

    async def _results(self, batch: BatchIn, sending: asyncio.Future | None) -> None:
        """Poll the treasury in batches until no case of the campaign is waiting for its result (and, when
        `sending` runs beside it, until every instruction is sent)."""
        s = self.state
        while True:
            r: ResultsOut = await self._act(CampaignActivities.campaign_results, batch, TREASURY)
            s.counters.instructed += r.settled
            s.counters.paid += r.paid
            s.counters.paid_fen += r.paid_fen
            s.counters.failed += r.failed
            for failure in r.failures:
                await self._start_correction(failure.case_id, failure.voucher_no)
            if r.open == 0 and (sending is None or sending.done()):
                return
            if r.settled == 0 or (sending is not None and not sending.done() and r.settled < batch.limit // 4):
                # nothing (or little) was final yet: give the treasury time instead of asking again at once
                await workflow.sleep(timedelta(seconds=self.inp.poll_seconds))
            if sending is None:
                self._maybe_continue()

    async def _start_correction(self, case_id: int, voucher: str) -> None:
        """A failed or returned line gets the per-enterprise correction loop (it outlives the campaign)."""
        try:
            await workflow.start_child_workflow(
                CORRECTION_WORKFLOW,
                CorrectionInput(case_id=case_id, voucher_no=voucher),
                id=correction_workflow_id(case_id, voucher),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
            self.state.counters.corrections += 1
        except WorkflowAlreadyStartedError:
            pass

    async def _start_objection(self, case_id: int) -> None:
        try:
            await workflow.start_child_workflow(
                CampaignObjectionWorkflow.run,
                ObjectionInput(campaign_id=self.inp.campaign_id, case_id=case_id, poll_seconds=self.inp.poll_seconds),
                id=objection_workflow_id(case_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
            self.state.counters.objections += 1
        except WorkflowAlreadyStartedError:
            pass


@workflow.defn
class CampaignObjectionWorkflow:
    """One objected case of a campaign: wait for the department's ruling, then reject it or pay it alone."""

    @workflow.init
    def __init__(self, inp: ObjectionInput) -> None:
        self.ruling: ObjectionRuling | None = None
        self.outcome: ObjectionOutcome | None = None

    @workflow.update
    def rule(self, ruling: ObjectionRuling) -> str:
        self.ruling = ruling
        return ObjectionStatus.UPHELD if ruling.upheld else ObjectionStatus.DISMISSED

    @rule.validator
    def _check(self, ruling: ObjectionRuling) -> None:
        if self.ruling is not None:
            raise ValueError("该异议已处理")

    @workflow.query
    def status(self) -> str:
        if self.outcome:
            return self.outcome.status
        return "awaiting_ruling" if self.ruling is None else "ruled"

    @workflow.run
    async def run(self, inp: ObjectionInput) -> ObjectionOutcome:
        await workflow.wait_condition(lambda: self.ruling is not None)
        assert self.ruling is not None
        self.outcome = outcome = await workflow.execute_activity_method(
            CampaignActivities.campaign_rule_objection,
            ObjectionRuleIn(campaign_id=inp.campaign_id, case_id=inp.case_id, ruling=self.ruling),
            **SHORT,
        )
        if not outcome.pay:
            return outcome
        one = BatchIn(campaign_id=inp.campaign_id, limit=1, case_ids=[inp.case_id])
        while not (await workflow.execute_activity_method(CampaignActivities.campaign_pay, one, **TREASURY)).done:
            pass
        while True:
            r: ResultsOut = await workflow.execute_activity_method(CampaignActivities.campaign_results, one, **TREASURY)
            for failure in r.failures:
                await workflow.start_child_workflow(
                    CORRECTION_WORKFLOW,
                    CorrectionInput(case_id=failure.case_id, voucher_no=failure.voucher_no),
                    id=correction_workflow_id(failure.case_id, failure.voucher_no),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            if r.open == 0:
                outcome.status = CaseStatus.PAID if r.paid else CaseStatus.PAYMENT_FAILED
                return outcome
            await workflow.sleep(timedelta(seconds=inp.poll_seconds))
