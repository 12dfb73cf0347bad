"""Contracts of reconciliation (对账): workflow inputs and the summary a run returns."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from schemas.vocabulary import ReconTrigger


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
