"""One vocabulary: CHECK constraints keep case, event, payment, notice, task and objection values within it

Revision ID: c8a5e0000008
Revises: c7a5e0000007
Create Date: 2026-12-01 08:00:00

The value lists are written out here (not imported from schemas.vocabulary) so this revision keeps meaning what it
meant when it was written; a later vocabulary change adds its own revision.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c8a5e0000008"
down_revision: str | None = "c7a5e0000007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_STATUSES = (
    "received", "completeness", "reviewing", "supplement", "approved", "matched", "consent_pending", "ready",
    "no_account", "reserved", "publicity", "objection", "objected", "finance_review", "paying", "awaiting_correction",
    "paid", "rejected", "payment_failed", "withdrawn", "revoked", "refunded", "budget_exhausted", "declined", "lapsed",
)  # fmt: skip
EVENT_KINDS = (
    "received", "approved", "rejected", "budget_reserved", "budget_exhausted", "matched", "consent_requested",
    "consent_confirmed", "consent_declined", "consent_on_file", "consent_lapsed", "no_account", "stage_opened",
    "stage_escalated", "stage_reminder", "stage_timeout", "stage_enterprise_reminder", "decision",
    "supplement_requested", "supplement_received", "publicity_started", "objection_filed", "objection_upheld",
    "objection_dismissed", "finance_approved", "finance_rejected", "payment_sent", "paid", "payment_failed",
    "correction_requested", "account_corrected", "budget_decision", "refunded", "withdrawn", "revoked",
    "archive_changed",
    "objection_received",  # the review name before the vocabulary was unified; kept, it is part of the hash chain
)  # fmt: skip
CHECKS: dict[str, list[tuple[str, str]]] = {
    "case": [
        ("status", f"status IN ({','.join(repr(v) for v in CASE_STATUSES)})"),
        ("mode", "mode IN ('no_application','instant','review')"),
        ("consent_status",
         "consent_status IS NULL OR consent_status IN ('pending','confirmed','declined','on_file','lapsed')"),
    ],
    "case_event": [("kind", f"kind IN ({','.join(repr(v) for v in EVENT_KINDS)})")],
    "payment_instruction": [("status", "status IN ('created','accepted','paid','failed','returned')")],
    "notice": [
        ("status", "status IN ('queued','sending','sent','delivered','failed','cancelled')"),
        ("category", "category IN ('case','push')"),
    ],
    "case_task": [("status", "status IN ('open','done','closed','timed_out')")],
    "case_objection": [("status", "status IN ('open','upheld','dismissed')")],
}  # fmt: skip


def upgrade() -> None:
    for table, checks in CHECKS.items():
        # batch mode: SQLite cannot add a constraint to an existing table, so the table is copied with it.
        with op.batch_alter_table(table) as batch:
            for name, condition in checks:
                batch.create_check_constraint(name, condition)


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in checks:
                batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
