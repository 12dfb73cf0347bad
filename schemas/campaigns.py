"""Contracts of no-application campaigns (免申即享批量兑付): workflow state, activity payloads, API bodies.

Workflow payloads carry IDs, counts and amounts only; per-case state lives in the database.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.audit import AuditNote
from schemas.conditions import Evaluation
from schemas.text import BasisPoints, Fen, Headcount, LongText, Name
from schemas.vocabulary import ObjectionStatus

Phase = Literal["match", "reserve", "consent", "wave", "tranche", "done"]
TrancheStep = Literal["open", "publicity", "finance", "approve", "pay", "results"]


class CampaignCounters(BaseModel):
    """What the workflow has done so far (the database has the per-case truth)."""

    matched: int = 0
    reserved: int = 0
    exhausted: int = 0
    lapsed: int = 0
    approved: int = 0
    instructed: int = 0
    paid: int = 0
    failed: int = 0
    paid_fen: int = 0
    corrections: int = 0
    objections: int = 0


class CampaignState(BaseModel):
    """Where a campaign run stands; passed whole through continue-as-new."""

    phase: Phase = "match"
    after_enterprise_id: int = 0
    tranche: int = 0
    step: TrancheStep = "open"
    final_wave: bool = False
    next_wave_at: datetime | None = None
    counters: CampaignCounters = Field(default_factory=CampaignCounters)
    # Audit records of operators' collect-now requests (signals) not written yet: the next collection of consent
    # answers writes them in its transaction (or, when none comes, the campaign's finish).
    collect_notes: list[AuditNote] = Field(default_factory=list)


class CampaignInput(BaseModel):
    campaign_id: int
    batch_size: int = 5000
    pay_batch_size: int = 5000
    poll_seconds: float = 2.0
    wave_seconds: float = 3600.0
    # continue-as-new after this many activities in one run (history stays small)
    max_steps_per_run: int = 400
    state: CampaignState = Field(default_factory=CampaignState)


class CampaignRef(BaseModel):
    campaign_id: int
    audit: list[AuditNote] = Field(default_factory=list)  # written with the step's effect (campaign_finish)


class CampaignPlan(BaseModel):
    """The campaign's configuration as the workflow needs it (from the frozen fund item version)."""

    campaign_id: int
    fund_item_code: str
    fund_item_version: int
    kind: Literal["listing", "reevaluation"]
    consent: bool
    on_no_answer: Literal["pay_on_file", "lapse"] | None = None
    publicity: bool
    finance_auto: bool


class BatchIn(BaseModel):
    campaign_id: int
    limit: int = 5000
    tranche: int = 0
    final: bool = False
    after_enterprise_id: int = 0
    case_ids: list[int] | None = None  # a child workflow's own case instead of the campaign's batch
    audit: list[AuditNote] = Field(default_factory=list)  # written with the batch's effect (campaign_collect)


class BatchOut(BaseModel):
    processed: int = 0
    done: bool = True
    after_enterprise_id: int = 0
    amount_fen: int = 0
    reserved: int = 0
    exhausted: int = 0
    lapsed: int = 0
    failed: int = 0


class ConsentWindow(BaseModel):
    deadline: date
    due_at: datetime
    provisional: bool = False


class TrancheInfo(BaseModel):
    number: int
    cases: int
    amount_fen: int
    publicity_until: date | None = None
    publicity_due_at: datetime | None = None
    finance_status: str = "pending"


class FinanceDecision(BaseModel):
    """One decision of the finance bureau on a whole wave (批次), with its totals shown before deciding."""

    tranche: int = Field(ge=1, title="批次")
    approve: bool = Field(title="是否同意拨付")
    actor: str = Field(min_length=1, max_length=80, title="审核人")
    note: str = Field("", max_length=500, title="审核意见")


class FinanceAck(BaseModel):
    tranche: int
    approve: bool


class CaseVoucher(BaseModel):
    case_id: int
    voucher_no: str


class ResultsOut(BaseModel):
    """One round of result polling and settlement."""

    settled: int = 0
    paid: int = 0
    paid_fen: int = 0
    failed: int = 0
    open: int = 0
    failures: list[CaseVoucher] = Field(default_factory=list)


class ObjectionInput(BaseModel):
    campaign_id: int
    case_id: int
    poll_seconds: float = 2.0


class ObjectionRuling(BaseModel):
    """The department's ruling on an objection: upheld (不予兑付) or dismissed (继续兑付)."""

    upheld: bool = Field(title="异议是否成立")
    actor: str = Field(min_length=1, max_length=80, title="处理人")
    reason: str = Field(min_length=2, max_length=500, title="处理意见")


class ObjectionOutcome(BaseModel):
    case_id: int
    status: str
    pay: bool = False


class CampaignProgress(BaseModel):
    """The campaign's progress, from the workflow query or counted in the database."""

    campaign_id: int
    fund_item_code: str = ""
    fund_item_name: str = ""
    kind: str = "listing"
    phase: str
    phase_label: str = ""
    matched: int = Field(0, description="匹配企业数（生成办件）")
    reserved: int = Field(0, description="已预留额度的办件数")
    exhausted: int = Field(0, description="预算不足未能预留的办件数")
    consent_pending: int = Field(0, description="待企业确认")
    lapsed: int = Field(0, description="逾期未确认或放弃")
    awaiting_finance: int = Field(0, description="待财政审核")
    objected: int = Field(0, description="异议处理中")
    instructed: int = Field(0, description="已发送支付指令")
    paid: int = Field(0, description="已拨付")
    failed: int = Field(0, description="拨付失败（转账户更正）")
    amount_reserved_fen: int = 0
    paid_fen: int = 0
    budget_total_fen: int = 0
    budget_left_fen: int = Field(0, description="预算余额（未预留、未拨付）")
    tranche: int = 0
    awaiting_tranche: int | None = Field(None, description="等待财政审核的批次")
    tranches: list[TrancheInfo] = Field(default_factory=list)
    consent_deadline: date | None = None
    finished: bool = False


class ConsentIn(BaseModel):
    """An enterprise's consent (意愿确认): accept the payout, optionally to another account."""

    accept: bool = Field(True, title="是否同意兑付")
    acct_no: str | None = Field(None, pattern=r"^\d{6,32}$", title="收款账号", description="不填则用企业档案登记的账户")
    acct_name: str | None = Field(None, min_length=1, max_length=200, title="收款户名")
    bank_name: str | None = Field(None, min_length=1, max_length=200, title="开户银行")
    bank_code: str | None = Field(None, pattern=r"^\d{12}$", title="开户行联行号")


class ConsentOut(BaseModel):
    case_id: int
    consent_status: str
    acct_masked: str | None
    deadline: date | None


class ObjectionIn(BaseModel):
    """A real-name objection (实名异议) against one case on the publicity list."""

    objector_name: Name = Field(min_length=2, max_length=60, title="异议人姓名")
    reason: LongText = Field(min_length=2, max_length=1000, title="异议内容及证据")


class EnterpriseUpdate(BaseModel):
    """Archive fields a data update (new qualification, tax data) changes; each one is optional."""

    employees: Headcount | None = Field(None, title="从业人数")
    revenue_fen: Fen | None = Field(None, title="营业收入（分）")
    tax_paid_fen: Fen | None = Field(None, title="纳税额（分）")
    rd_ratio_bp: BasisPoints | None = Field(None, title="研发投入占比（基点）")
    tags: list[Name] | None = Field(None, max_length=50, title="资质标签")
    credit_status: Literal["good", "warning", "dishonest"] | None = Field(None, title="信用状态")
    size_class: Literal["large", "medium", "small", "micro"] | None = Field(None, title="企业规模")


class FinanceRecord(BaseModel):
    campaign_id: int
    decision: FinanceDecision


class ObjectionRuleIn(BaseModel):
    campaign_id: int
    case_id: int
    ruling: ObjectionRuling


class FinanceDecisionAccepted(BaseModel):
    """A finance decision on a wave, handed to the campaign workflow (202: the wave is paid or released after)."""

    campaign_id: int
    tranche: int
    approve: bool


class CollectAccepted(BaseModel):
    campaign_id: int


class ObjectionFiled(BaseModel):
    case_id: int
    status: str = Field(description="办件状态（离开所在批次，待主管部门处理异议）")


class ObjectionRuled(BaseModel):
    case_id: int
    ruling: ObjectionStatus = Field(description="upheld：异议成立，不予兑付；dismissed：不成立，随批次兑付")


class CaseEvidenceOut(BaseModel):
    """A campaign case's frozen evidence and the condition-by-condition explanation on those values."""

    case_id: int
    evidence: dict[str, Any] = Field(description="办件创建时冻结的企业数据（values）及其来源（provenance）")
    evaluation: Evaluation


class ArchiveUpdated(BaseModel):
    uscc: str
    updated: list[str] = Field(description="修改的字段")
    reevaluations: list[str] = Field(description="因此重新比对的免申即享工作流")
