"""Contracts of cases: API bodies and the workflow/activity payloads (IDs and amounts only, no personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.audit import AuditNote
from schemas.vocabulary import (
    Awaiting,
    CaseStatus,
    DecisionKind,
    EventKind,
    FundItemMode,
    JointMode,
    NoticeStatus,
    PaymentStatus,
    ReturnKind,
    StageKind,
    TimeoutPolicy,
)


class ApplicationIn(BaseModel):
    """An enterprise's application (申报) for an instant or review fund item."""

    fund_item_code: str = Field(min_length=1, max_length=40, examples=["YC-2026-ZJTX-001"])
    uscc: str = Field(min_length=18, max_length=18, examples=["91420500MA4F0Q1X5K"])


class CaseEventOut(BaseModel):
    seq: int
    kind: str
    from_status: str | None
    to_status: str | None
    actor: str
    reason: str | None
    data: dict | None
    created_at: datetime
    hash: str


class NoticeOut(BaseModel):
    id: int
    template_key: str
    content: str
    phone_masked: str | None
    status: NoticeStatus
    provider: str
    created_at: datetime


class PaymentOut(BaseModel):
    voucher_no: str
    attempt: int
    pay_amt_fen: int
    paid_amt_fen: int
    payee_acct_no_masked: str
    payee_acct_name: str
    status: PaymentStatus
    fail_reason: str | None
    settled_at: datetime | None


class CaseOut(BaseModel):
    id: int
    workflow_id: str
    fund_item_code: str
    fund_item_name: str
    fund_item_version: int
    uscc: str
    enterprise_name: str
    mode: FundItemMode
    status: CaseStatus
    amount_fen: int | None
    paid_fen: int
    outcome_reason: str | None
    created_at: datetime
    consent_status: str | None = Field(None, description="免申即享：企业的意愿确认（待确认、已确认、已放弃……）")
    events: list[CaseEventOut] = []
    notices: list[NoticeOut] = []
    payments: list[PaymentOut] = []


# Workflow and activity payloads: one input model each, so fields can be added without breaking histories.


class CaseInput(BaseModel):
    case_id: int
    fund_item_id: int
    fund_item_version: int
    payment_poll_seconds: float = 15.0
    # The workflow code's version when the case started (workflows/versions.py); 0 in inputs recorded before.
    code_version: int = 0


class CaseRef(BaseModel):
    case_id: int


class EligibilityResult(BaseModel):
    eligible: bool
    amount_fen: int = 0
    unmet: list[str] = []


class InstantDecision(BaseModel):
    """Outcome of accept_instant: the rules check and, when eligible, the budget reservation; of accept_and_send
    also the first send of a reserved case's payment: its state, or why it failed (`send_error`, an error type:
    NoAccount and TreasuryRejected are refusals, anything else is sent again by the durable activity)."""

    eligible: bool
    amount_fen: int = 0
    unmet: list[str] = []
    reserved: bool = False
    reason: str | None = None
    sent: PaymentState | None = None
    send_error: str | None = None
    send_reason: str | None = None


class ReserveResult(BaseModel):
    reserved: bool
    reason: str | None = None


class PaymentRequest(BaseModel):
    case_id: int
    attempt: int = 1


class PaymentState(BaseModel):
    voucher_no: str
    status: PaymentStatus
    paid_amt_fen: int = 0
    reason: str | None = None
    # Set by settle_if_paid: the paid attempt is already settled (budget committed, case paid, notice queued).
    settled: bool = False

    @property
    def final(self) -> bool:
        return self.status.is_final


class PaymentSignal(BaseModel):
    """Sent by the callback endpoint once the result is stored; the workflow rereads the database."""

    voucher_no: str
    status: PaymentStatus


class DecisionView(BaseModel):
    stage_key: str
    round: int
    department: str
    decision: DecisionKind
    actor: str
    comment: str = ""
    amount_fen: int | None = None


class StageView(BaseModel):
    """The open stage as the `status` query shows it: who still has to decide, and by when."""

    key: str
    name: str
    round: int = 1
    departments: list[str] = []
    pending: list[str] = []
    joint_mode: JointMode = JointMode.ALL
    due_at: datetime | None = None
    remind_at: datetime | None = None
    provisional: bool = False
    escalated: bool = False


class CaseProgress(BaseModel):
    """What the workflow's `status` query returns."""

    case_id: int
    status: CaseStatus
    amount_fen: int | None = None
    voucher_no: str | None = None
    payment_status: PaymentStatus | None = None
    payment_attempt: int = 0
    stage: StageView | None = None
    deadlines: dict[str, datetime] = {}
    decisions: list[DecisionView] = []
    supplements: int = 0
    objections_open: list[int] = []
    awaiting: Awaiting | None = None
    reason: str | None = None


class CorrectionInput(BaseModel):
    """Input of PaymentCorrectionWorkflow: the case and the failed or returned instruction."""

    case_id: int
    voucher_no: str


class CorrectionOpened(BaseModel):
    """The account-correction loop of a failed or returned attempt: its deadline and budget handling."""

    attempt: int
    voucher_no: str
    due_at: datetime
    remind_at: datetime | None = None
    cross_year: bool = False
    status: PaymentStatus = PaymentStatus.FAILED
    reason: str | None = None


class CorrectionOutcome(BaseModel):
    """What PaymentCorrectionWorkflow did: nothing when the case workflow still runs, else the payment result."""

    case_id: int
    voucher_no: str
    result: Literal["handled_by_case", "not_applicable", CaseStatus.PAID, CaseStatus.PAYMENT_FAILED, "closed"]
    attempt: int = 0


class AccountCorrection(BaseModel):
    """Enterprise corrected its payout account (already stored, encrypted, by the API)."""

    actor: str
    acct_masked: str = ""


class BudgetDecision(BaseModel):
    """Finance decides on new budget for a cross-year return before it is paid again."""

    department: str
    approve: bool
    actor: str
    comment: str = ""


# Review workflow (申报审批) payloads.


class StagePlan(BaseModel):
    key: str
    name: str
    kind: StageKind = StageKind.REVIEW
    departments: list[str]
    joint_mode: JointMode = JointMode.ALL
    deadline_working_days: int
    remind_before_working_days: int = 0
    on_timeout: TimeoutPolicy = TimeoutPolicy.ESCALATE
    escalate_to: str | None = None


class ReviewPlan(BaseModel):
    """The pinned version's approval flow as the workflow needs it (read once, kept in history)."""

    stages: list[StagePlan]
    supplement_max: int = 0
    supplement_days: int = 5
    publicity_days: int = 0
    objections_allowed: bool = False
    objection_department: str = ""
    finance: StagePlan
    finance_auto: bool = False
    amount_fen: int | None = None
    max_fen: int | None = None
    owner_department: str = ""
    # Eligibility at application: set when the item rejects at once and the quantified conditions are definitely
    # unmet (missing data is left to the reviewers); `unmet` holds the 不足之处 for the notice.
    reject_at_application: bool = False
    unmet: list[str] = Field(default_factory=list)


class StageOpen(BaseModel):
    case_id: int
    stage: StagePlan
    round: int
    now: datetime
    departments: list[str] | None = None  # who gets a task (default: the stage's departments)
    escalated: bool = False


class StageOpened(BaseModel):
    due_at: datetime
    remind_at: datetime | None = None
    provisional: bool = False


class StageNote(BaseModel):
    """A reminder or timeout of a stage, recorded as a case event (and a notice when the enterprise must act)."""

    case_id: int
    stage_key: str
    round: int
    kind: Literal["reminder", "timeout", "enterprise_reminder"]
    policy: str = ""
    pending: list[str] = []
    due_at: datetime | None = None
    task: str = ""
    escalated: bool = False


class DecisionIn(BaseModel):
    """A department's decision (update `decide`)."""

    stage_key: str
    department: str
    decision: DecisionKind
    actor: str
    comment: str = Field("", max_length=2000)
    amount_fen: int | None = Field(None, ge=0)


class DecisionRecord(BaseModel):
    case_id: int
    round: int
    decision: DecisionIn
    system: bool = False


class SupplementRequest(BaseModel):
    case_id: int
    stage_key: str
    round: int
    times: int
    comment: str
    days: int
    now: datetime


class Resubmission(BaseModel):
    """Enterprise resubmits after 补正 (update `resubmit`)."""

    actor: str
    comment: str = Field("", max_length=2000)


class PublicityOpen(BaseModel):
    case_id: int
    days: int
    now: datetime


class ObjectionFiled(BaseModel):
    """An objection stored by the API (real name, encrypted ID number); the workflow gets its id only."""

    objection_id: int


class ObjectionOpen(BaseModel):
    case_id: int
    objection_id: int
    department: str
    now: datetime


class ObjectionRuling(BaseModel):
    """The objection department's ruling (update `rule_objection`): uphold → reject, dismiss → continue."""

    objection_id: int
    department: str
    uphold: bool
    actor: str
    comment: str = Field("", max_length=2000)


class ObjectionRulingRecord(BaseModel):
    case_id: int
    ruling: ObjectionRuling


class FinanceStep(BaseModel):
    case_id: int
    actor: str
    amount_fen: int | None = None
    attempt: int = 1


class CloseRequest(BaseModel):
    """Close a case: rejected, withdrawn or revoked, releasing any budget reserved."""

    case_id: int
    kind: Literal[CaseStatus.REJECTED, CaseStatus.WITHDRAWN, CaseStatus.REVOKED]
    actor: str
    reason: str
    key: str
    data: dict | None = None


class WithdrawIn(BaseModel):
    actor: str
    reason: str = Field("企业主动撤回申报", max_length=500)


class RevokeIn(BaseModel):
    department: str
    actor: str
    reason: str = Field(min_length=2, max_length=500)


class PaymentStep(BaseModel):
    """One step of the payment stage for an attempt (reserve, open a correction, close as failed)."""

    case_id: int
    attempt: int
    now: datetime | None = None
    reason: str | None = None
    actor: str | None = None


class EventRecord(BaseModel):
    """One case event the workflow knows whole (a resubmission, finance's budget decision), recorded once by its key."""

    case_id: int
    key: str
    kind: EventKind
    actor: str
    reason: str
    to_status: CaseStatus | None = None
    data: dict | None = None
    # A person's decision (finance's budget decision) is an audit record too, written with the event.
    audit: AuditNote | None = None


class CorrectionCheck(BaseModel):
    """Whether a correction loop applies to the voucher, and what it needs to run."""

    applicable: bool
    attempt: int = 0
    kind: Literal[ReturnKind.PASSIVE, ReturnKind.ACTIVE, PaymentStatus.FAILED, ""] = ""
    finance_department: str = ""
    reason: str | None = None
    committed: bool = False  # the case workflow settled this attempt as paid: it will not see the return
