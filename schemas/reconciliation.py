"""Contracts of reconciliation (对账): workflow inputs, the summary a run returns, and the finance bureau's API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.vocabulary import AlertStatus, ReconLineType, ReconTrigger


class ReconRequest(BaseModel):
    """What starts a reconciliation: a given day, or (None) yesterday in Beijing time, decided in an activity."""

    statement_date: date | None = None
    trigger: ReconTrigger = ReconTrigger.SCHEDULE


class ReconInput(BaseModel):
    run_key: str = Field(max_length=120)
    statement_date: date
    trigger: ReconTrigger = ReconTrigger.SCHEDULE


class ReconSummary(BaseModel):
    run_id: int
    statement_date: date
    statement_lines: int
    matched: int
    missing_ours: int
    missing_theirs: int
    amount_mismatch: int
    status_mismatch: int
    alerts: int


# The finance bureau's API: runs, their lines and alerts.


class ReconRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    statement_date: date
    trigger: str
    status: str
    statement_lines: int
    matched: int
    missing_ours: int
    missing_theirs: int
    amount_mismatch: int
    status_mismatch: int
    their_paid_fen: int
    their_returned_fen: int
    our_paid_fen: int
    our_returned_fen: int
    started_at: datetime
    finished_at: datetime | None


class ReconLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    voucher_no: str
    line_type: ReconLineType
    outcome: str
    our_status: str | None
    their_status: str | None
    our_amt_fen: int | None
    their_amt_fen: int | None
    treasury_ref: str | None
    settled_at: datetime | None
    note: str


class ReconRunDetail(ReconRunOut):
    lines: list[ReconLineOut]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    ref: str
    message: str
    status: AlertStatus
    recon_run_id: int | None
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    close_note: str | None


class ReconStartIn(BaseModel):
    statement_date: date = Field(description="对账日期（当地时间）")


class ReconStarted(BaseModel):
    workflow_id: str


class AlertCloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=500, description="处理说明")
