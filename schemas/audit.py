"""Payloads of the daily audit verification (workflows/audit.py), and the audit note a workflow step carries."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.vocabulary import AuditKind


class AuditCheckIn(BaseModel):
    trigger: str = "schedule"


class AuditCheckOut(BaseModel):
    ok: bool
    cases: int
    records: int
    broken: int
    alert_id: int | None = None


class AuditNote(BaseModel):
    """An audit record (services/audit.py) that a workflow step writes with its own database effect: in the same
    transaction and only when that effect is new, so a retried step writes it once and a crash writes neither."""

    kind: AuditKind
    actor: str
    subject: str
    data: dict = Field(default_factory=dict)
    # A key the record is written under at most once (db/repositories/audit_once.py), for a step whose effect cannot
    # tell a retry from the first run (an operator's collect-now request); empty: the step's effect guards it.
    once: str = ""
