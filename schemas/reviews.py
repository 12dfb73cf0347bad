"""Contracts of the review work (申报审批) API: work lists, decisions, objections, account corrections, budget."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.text import Fen, LongText, Name


class TaskOut(BaseModel):
    id: int
    case_id: int
    stage_key: str
    stage_name: str
    round: int
    department_code: str
    status: str
    due_at: datetime | None
    provisional: bool
    reminded_at: datetime | None
    decision: str | None
    comment: str | None


class DecisionBody(BaseModel):
    """A department's decision on the current stage: approve / reject / return for supplement (补正)."""

    stage_key: str = Field(min_length=1, max_length=32, examples=["first_review"])
    decision: str = Field(pattern="^(approve|reject|return)$", examples=["approve"])
    comment: LongText = Field("", max_length=2000)
    amount_fen: Fen | None = Field(None, ge=1, description="核定金额（分），同意时可填")
    department: str | None = Field(None, description="仅管理员代部门办理时填写")


class CommentBody(BaseModel):
    comment: LongText = Field("", max_length=2000)


class ReasonBody(BaseModel):
    reason: LongText = Field(min_length=2, max_length=500)


class ObjectionBody(BaseModel):
    """A real-name objection during publicity (实名异议): name, resident ID number, evidence."""

    name: Name = Field(min_length=2, max_length=60)
    id_number: str = Field(min_length=18, max_length=18, description="居民身份证号码")
    phone: str | None = Field(None, max_length=20)
    evidence: LongText = Field(min_length=5, max_length=4000, description="异议事实和证据")


class ObjectionOut(BaseModel):
    id: int
    case_id: int
    objector_name: str
    id_number_masked: str
    status: str


class RulingBody(BaseModel):
    uphold: bool
    comment: str = Field("", max_length=2000)


class AccountBody(BaseModel):
    """The corrected payout account (收款账户); stored encrypted."""

    acct_no: str = Field(pattern=r"^\d{6,32}$")
    acct_name: Name = Field(min_length=1, max_length=200)
    bank_name: Name = Field(min_length=1, max_length=200)
    bank_code: str = Field(pattern=r"^\d{12}$", description="开户行联行号")


class BudgetBody(BaseModel):
    approve: bool
    comment: str = Field("", max_length=500)
