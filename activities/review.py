"""Review (申报审批) activities: stage deadlines and department tasks, decisions, supplement, publicity,
objections, finance approval and closing; each one transaction, safe to retry (event keys are idempotent)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.cases import CaseActivities, _conditions, _officer, _standards
from db.repositories import budget, cases, fund_items, lookups, reviews
from db.session import transaction
from rules.amounts import compute_amount, is_fully_quantified
from rules.conditions import evaluate, facts_of
from rules.money import to_capitals
from rules.sms_templates import format_date
from schemas.audit import AuditNote
from schemas.cases import (
    CaseRef,
    CloseRequest,
    DecisionRecord,
    FinanceStep,
    ObjectionOpen,
    ObjectionRulingRecord,
    PublicityOpen,
    ReserveResult,
    ReviewPlan,
    StageOpen,
    StageOpened,
    StagePlan,
    SupplementRequest,
)
from schemas.fund_items import ApprovalFlow
from schemas.localtime import local_date
from schemas.vocabulary import (
    STAGE_CASE_STATUS,
    AuditKind,
    CaseStatus,
    DecisionKind,
    EventKind,
    ObjectionStatus,
    StageKind,
    SystemActor,
    TaskStatus,
    TimeoutPolicy,
)
from services import audit

# Working days the objection department has to rule on a real-name objection.
OBJECTION_RULING_WORKING_DAYS = 5
# The objection department's task is one more stage of the case, keyed apart from the configured ones.
OBJECTION_STAGE = "objection"


class ReviewActivities(CaseActivities):
    """The case activities plus the review steps; the worker registers one instance of this class."""

    @activity.defn
    def load_review_plan(self, ref: CaseRef) -> ReviewPlan:
        """The pinned version's flow as the workflow needs it; the rule check is kept as evidence for reviewers."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, ref.case_id)
            flow = ApprovalFlow.model_validate(config["approval"])
            standard = _standards.validate_python(config["standard"])
            facts = facts_of(enterprise)
            quantified = is_fully_quantified(standard)
            amount = compute_amount(standard, facts)
            evaluation = evaluate(_conditions.validate_python(config["conditions"]), facts)
            # Eligibility at application (#12): the archive as it stood when the application arrived, kept with the
            # case for the reviewers (the review screen shows it beside today's archive).
            unmet = evaluation.unmet_texts()
            case.evidence = {
                "checked_at": datetime.now(UTC).isoformat(),
                "conditions": [r.model_dump(mode="json") for r in evaluation.items],
                "eligible_by_rules": evaluation.eligible,
                "outcome": evaluation.outcome,
                "unmet": unmet,
                "amount": amount.explanation,
                "provenance": enterprise.provenance or {},  # each fact's source, source date and import (issue 18)
            }
            reject_at_application = flow.reject_unmet_at_application and evaluation.outcome == "false"
            case.evidence["rejected_at_once"] = reject_at_application
            if quantified and amount.amount_fen > 0:
                case.amount_fen = amount.amount_fen
            stages: list[StagePlan] = []
            if flow.completeness_check:
                days = flow.completeness_check.deadline_working_days
                stages.append(
                    StagePlan(
                        key=StageKind.COMPLETENESS,
                        name=StageKind.COMPLETENESS.label,
                        kind=StageKind.COMPLETENESS,
                        departments=[flow.completeness_check.department],
                        deadline_working_days=days,
                        remind_before_working_days=1 if days > 1 else 0,
                        # 逾期不告知的，自收到申请材料之日起即为受理 (行政许可法第三十二条).
                        on_timeout=TimeoutPolicy.AUTO_APPROVE,
                    )
                )
            stages += [
                StagePlan(
                    key=s.key,
                    name=s.name,
                    departments=list(s.departments),
                    joint_mode=s.joint_mode,
                    deadline_working_days=s.deadline_working_days,
                    remind_before_working_days=s.remind_before_working_days,
                    on_timeout=s.on_timeout,
                    escalate_to=s.escalate_to,
                )
                for s in flow.stages
            ]
            finance_days = flow.finance.deadline_working_days
            return ReviewPlan(
                stages=stages,
                supplement_max=flow.supplement.max_times if flow.supplement else 0,
                supplement_days=flow.supplement.enterprise_deadline_working_days if flow.supplement else 5,
                publicity_days=flow.publicity.working_days if flow.publicity else 0,
                objections_allowed=bool(flow.publicity and flow.publicity.objections_allowed),
                objection_department=(flow.publicity.objection_department if flow.publicity else None)
                or _owner_code(session, item),
                finance=StagePlan(
                    key=StageKind.FINANCE,
                    name=StageKind.FINANCE.label,
                    kind=StageKind.FINANCE,
                    departments=[flow.finance.department],
                    deadline_working_days=finance_days,
                    remind_before_working_days=1 if finance_days > 1 else 0,
                    on_timeout=TimeoutPolicy.WAIT,
                ),
                finance_auto=flow.finance.auto_when_quantified and quantified,
                amount_fen=case.amount_fen,
                max_fen=getattr(standard, "max_fen", None),
                owner_department=_owner_code(session, item),
                reject_at_application=reject_at_application,
                unmet=unmet if reject_at_application else [],
            )

    @activity.defn
    def open_stage(self, req: StageOpen) -> StageOpened:
        """Deadline from the calendar, one task per department, and the stage_opened event with the due time."""
        with transaction(self.db_url) as session:
            case, _, _, _ = self._load(session, req.case_id)
            stage = req.stage
            departments = req.departments or stage.departments
            due_at, remind_at, provisional, due_day = self._deadline(
                session, req.now, stage.deadline_working_days, stage.remind_before_working_days
            )
            if req.escalated:
                reviews.close_open_tasks(
                    session=session, case_id=case.id, status=TaskStatus.TIMED_OUT, stage_key=stage.key, round_=req.round
                )
            reviews.open_tasks(
                session=session,
                case_id=case.id,
                stage_key=stage.key,
                stage_name=stage.name,
                round_=req.round,
                departments=departments,
                due_at=due_at,
                provisional=provisional,
                start_day=local_date(req.now),
                working_days=stage.deadline_working_days,
                remind_days=stage.remind_before_working_days,
            )
            suffix = ":escalated" if req.escalated else ""
            cases.record(
                session=session,
                case=case,
                key=f"stage:{stage.key}:{req.round}{suffix}",
                kind=EventKind.STAGE_ESCALATED if req.escalated else EventKind.STAGE_OPENED,
                actor=SystemActor.WORKFLOW,
                to_status=STAGE_CASE_STATUS[stage.kind],
                reason=f"{stage.name}：{'、'.join(_named(session, departments))}办理，{format_date(due_day)}前完成"
                + ("（逾期上报）" if req.escalated else ""),
                data={
                    "stage_key": stage.key,
                    "round": req.round,
                    "departments": departments,
                    "due_at": due_at.isoformat(),
                    "remind_at": remind_at.isoformat() if remind_at else None,
                    "provisional": provisional,
                },
            )
            return StageOpened(due_at=due_at, remind_at=remind_at, provisional=provisional)

    @activity.defn
    def record_decision(self, rec: DecisionRecord) -> None:
        d = rec.decision
        with transaction(self.db_url) as session:
            case, _, _, _ = self._load(session, rec.case_id)
            reviews.decide_task(
                session=session,
                case_id=case.id,
                stage_key=d.stage_key,
                round_=rec.round,
                department=d.department,
                decision=d.decision,
                actor=d.actor,
                comment=d.comment,
            )
            if d.decision == DecisionKind.APPROVE and d.amount_fen is not None:
                case.amount_fen = d.amount_fen
            cases.record(
                session=session,
                case=case,
                key=f"decision:{d.stage_key}:{rec.round}:{d.department}",
                kind=EventKind.DECISION,
                actor=d.actor,
                reason=d.decision.label + (f"：{d.comment}" if d.comment else ""),
                data={
                    "stage_key": d.stage_key,
                    "round": rec.round,
                    "department": d.department,
                    "decision": d.decision,
                    "amount_fen": d.amount_fen,
                    "system": rec.system,
                },
            )

    @activity.defn
    def request_supplement(self, req: SupplementRequest) -> StageOpened:
        """补正: the stage's open tasks end, the enterprise gets the items to supplement and its deadline."""
        with transaction(self.db_url) as session:
            case, enterprise, item, _ = self._load(session, req.case_id)
            reviews.close_open_tasks(session=session, case_id=case.id, stage_key=req.stage_key, round_=req.round)
            due_at, remind_at, provisional, due_day = self._deadline(
                session, req.now, req.days, 1 if req.days > 1 else 0
            )
            cases.record(
                session=session,
                case=case,
                key=f"supplement:{req.times}",
                kind=EventKind.SUPPLEMENT_REQUESTED,
                actor=SystemActor.WORKFLOW,
                to_status=CaseStatus.SUPPLEMENT,
                reason=req.comment,
                data={
                    "stage_key": req.stage_key,
                    "times": req.times,
                    "due_at": due_at.isoformat(),
                    "provisional": provisional,
                    # what the deadline is counted from, for the recompute once a provisional year is imported
                    "start_day": local_date(req.now).isoformat(),
                    "working_days": req.days,
                    "remind_days": 1 if req.days > 1 else 0,
                },
            )
            self._notify(
                session,
                case,
                enterprise,
                item,
                "supplement_requested",
                {"reasons": req.comment, "deadline": format_date(due_day)},
                key_suffix=f":{req.times}",
            )
            return StageOpened(due_at=due_at, remind_at=remind_at, provisional=provisional)

    @activity.defn
    def open_publicity(self, req: PublicityOpen) -> StageOpened:
        with transaction(self.db_url) as session:
            case, enterprise, item, _ = self._load(session, req.case_id)
            due_at, _, provisional, due_day = self._deadline(session, req.now, req.days)
            cases.record(
                session=session,
                case=case,
                key="publicity",
                kind=EventKind.PUBLICITY_STARTED,
                actor=SystemActor.WORKFLOW,
                to_status=CaseStatus.PUBLICITY,
                reason=f"公示{req.days}个工作日，至{format_date(due_day)}",
                data={
                    "due_at": due_at.isoformat(),
                    "provisional": provisional,
                    "amount_fen": case.amount_fen,
                    # what the deadline is counted from, for the recompute once a provisional year is imported
                    "start_day": local_date(req.now).isoformat(),
                    "working_days": req.days,
                },
            )
            self._notify(
                session,
                case,
                enterprise,
                item,
                "publicity_started",
                {"amount_caps": to_capitals(case.amount_fen or 0), "deadline": format_date(due_day)},
            )
            return StageOpened(due_at=due_at, provisional=provisional)

    @activity.defn
    def record_objection(self, req: ObjectionOpen) -> StageOpened:
        """The case is suspended; the objection department gets a task with a ruling deadline."""
        with transaction(self.db_url) as session:
            case, enterprise, item, _ = self._load(session, req.case_id)
            due_at, _, provisional, due_day = self._deadline(session, req.now, OBJECTION_RULING_WORKING_DAYS)
            reviews.open_tasks(
                session=session,
                case_id=case.id,
                stage_key=OBJECTION_STAGE,
                stage_name="异议核查",
                round_=req.objection_id,
                departments=[req.department],
                due_at=due_at,
                provisional=provisional,
                start_day=local_date(req.now),  # so the recompute on a year's import moves it like a stage's
                working_days=OBJECTION_RULING_WORKING_DAYS,
                remind_days=0,
            )
            cases.record(
                session=session,
                case=case,
                key=f"objection:{req.objection_id}",
                kind=EventKind.OBJECTION_FILED,
                actor=SystemActor.WORKFLOW,
                to_status=CaseStatus.OBJECTION,
                reason=f"收到实名异议，由{req.department}于{format_date(due_day)}前核查，暂缓拨付",
                data={"objection_id": req.objection_id, "department": req.department, "due_at": due_at.isoformat()},
            )
            self._notify(
                session,
                case,
                enterprise,
                item,
                "objection_received",
                {"deadline": format_date(due_day)},
                key_suffix=f":{req.objection_id}",
            )
            return StageOpened(due_at=due_at, provisional=provisional)

    @activity.defn
    def record_objection_ruling(self, rec: ObjectionRulingRecord) -> None:
        r = rec.ruling
        with transaction(self.db_url) as session:
            case, _, _, _ = self._load(session, rec.case_id)
            reviews.rule_objection(
                session=session,
                objection_id=r.objection_id,
                uphold=r.uphold,
                department=r.department,
                actor=r.actor,
                comment=r.comment,
            )
            reviews.decide_task(
                session=session,
                case_id=case.id,
                stage_key=OBJECTION_STAGE,
                round_=r.objection_id,
                department=r.department,
                decision="uphold" if r.uphold else "dismiss",
                actor=r.actor,
                comment=r.comment,
            )
            ruled = EventKind.OBJECTION_UPHELD if r.uphold else EventKind.OBJECTION_DISMISSED
            still_open = [
                o for o in reviews.objections_for_case(session=session, case_id=case.id) if o.status == ObjectionStatus.OPEN
            ]
            created = cases.record(
                session=session,
                case=case,
                key=f"objection_ruling:{r.objection_id}",
                kind=ruled,
                actor=r.actor,
                to_status=None if r.uphold or still_open else CaseStatus.PUBLICITY,
                reason=ruled.label + (f"：{r.comment}" if r.comment else ""),
                data={"objection_id": r.objection_id, "department": r.department},
            )
            if created:  # the ruling's audit record commits with its effect, once (a retry finds the event)
                audit.record_note(session=session, note=AuditNote(kind=AuditKind.DECISION, actor=r.actor, subject=f"case:{case.id}",
                                              data={"decision": "objection_ruling", "objection_id": r.objection_id,
                                                    "uphold": r.uphold}))  # fmt: skip

    @activity.defn
    def finance_approve(self, step: FinanceStep) -> ReserveResult:
        """财政审核通过: the amount is fixed, the budget reserved (exhaustion rejects), the enterprise told."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, step.case_id)
            if step.amount_fen is not None:
                case.amount_fen = step.amount_fen
            amount = case.amount_fen or 0
            if amount <= 0:
                self._reject(
                    session, case, enterprise, item, config, key="finance", actor=step.actor, reason="核定金额为零"
                )
                return ReserveResult(reserved=False, reason="核定金额为零")
            try:
                budget.reserve(session=session, fund_item_id=item.id, case_id=case.id, amount_fen=amount)
            except budget.BudgetExhausted:
                reason = "本资金事项预算额度已用完"
                self._reject(
                    session, case, enterprise, item, config, key="finance", actor=SystemActor.BUDGET, reason=reason
                )
                return ReserveResult(reserved=False, reason=reason)
            cases.record(
                session=session,
                case=case,
                key="finance",
                kind=EventKind.FINANCE_APPROVED,
                actor=step.actor,
                to_status=CaseStatus.RESERVED,
                reason="财政审核通过，已预留预算额度",
                data={"amount_fen": amount},
            )
            self._notify(session, case, enterprise, item, "approved", self._money(amount))
            return ReserveResult(reserved=True)

    @activity.defn
    def close_case(self, req: CloseRequest) -> None:
        """Rejected, withdrawn or revoked before payment: release the reservation, end the tasks, tell the enterprise."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, req.case_id)
            attempt = budget.open_reservation(session=session, case_id=case.id)
            if attempt is not None:
                budget.release(session=session, case_id=case.id, attempt=attempt)
            reviews.close_open_tasks(session=session, case_id=case.id)
            if req.kind == CaseStatus.REJECTED:
                self._reject(
                    session,
                    case,
                    enterprise,
                    item,
                    config,
                    key=req.key,
                    actor=req.actor,
                    reason=req.reason,
                    data=req.data,
                )
                return
            case.outcome_reason = req.reason
            cases.record(
                session=session,
                case=case,
                key=req.key,
                kind=req.kind,
                actor=req.actor,
                to_status=req.kind,
                reason=req.reason,
                data=(req.data or {}) | {"budget_released": attempt is not None},
            )
            template = "case_withdrawn" if req.kind == CaseStatus.WITHDRAWN else "case_revoked"
            self._notify(session, case, enterprise, item, template, {"reason": req.reason, "officer": _officer(config)})


def _owner_code(session, item) -> str:
    department = fund_items.department(session=session, department_id=item.department_id)
    return department.code if department else ""


def _named(session, codes: list[str]) -> list[str]:
    """Departments as people read them (宜昌市经济和信息化局), the code only for a department not on record."""
    names = lookups.department_names(session=session, codes=codes)
    return [names.get(code, code) for code in codes]
