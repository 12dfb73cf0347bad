"""Contracts of cases: API bodies and the workflow/activity payloads (IDs and amounts only, no personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

CaseStatus = Literal[
    "received",
    "approved",
    "rejected",
    "reserved",
    "paying",
    "paid",
    "payment_failed",
    "withdrawn",
]


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
    status: str
    provider: str
    created_at: datetime


class PaymentOut(BaseModel):
    voucher_no: str
    attempt: int
    pay_amt_fen: int
    paid_amt_fen: int
    payee_acct_no_masked: str
    payee_acct_name: str
    status: str
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
    mode: str
    status: str
    amount_fen: int | None
    paid_fen: int
    outcome_reason: str | None
    created_at: datetime
    events: list[CaseEventOut] = []
    notices: list[NoticeOut] = []
    payments: list[PaymentOut] = []


# Workflow and activity payloads: one input model each, so fields can be added without breaking histories.


class CaseInput(BaseModel):
    case_id: int
    fund_item_id: int
    fund_item_version: int
    payment_poll_seconds: float = 15.0


class CaseRef(BaseModel):
    case_id: int


class EligibilityResult(BaseModel):
    eligible: bool
    amount_fen: int = 0
    unmet: list[str] = []


class ReserveResult(BaseModel):
    reserved: bool
    reason: str | None = None


class PaymentRequest(BaseModel):
    case_id: int
    attempt: int = 1


class PaymentState(BaseModel):
    voucher_no: str
    status: Literal["created", "accepted", "paid", "failed", "returned"]
    paid_amt_fen: int = 0
    reason: str | None = None

    @property
    def final(self) -> bool:
        return self.status in ("paid", "failed", "returned")


class PaymentSignal(BaseModel):
    """Sent by the callback endpoint once the result is stored; the workflow rereads the database."""

    voucher_no: str
    status: str


class CaseProgress(BaseModel):
    """What the workflow's `progress` query returns."""

    case_id: int
    status: str
    amount_fen: int | None = None
    voucher_no: str | None = None
    payment_status: str | None = None
    payment_attempt: int = 0


class CorrectionInput(BaseModel):
    """Input of PaymentCorrectionWorkflow: the case and the failed or returned instruction."""

    case_id: int
    voucher_no: str
