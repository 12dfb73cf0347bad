"""Payloads of the daily audit verification (workflows/audit.py)."""

from __future__ import annotations

from pydantic import BaseModel


class AuditCheckIn(BaseModel):
    trigger: str = "schedule"


class AuditCheckOut(BaseModel):
    ok: bool
    cases: int
    records: int
    broken: int
    alert_id: int | None = None
