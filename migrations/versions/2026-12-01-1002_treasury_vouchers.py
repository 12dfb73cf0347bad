"""Budget indicators and treasury electronic vouchers; provisional deadlines that follow the calendar; SMS replies

Revision ID: d2a5e0000002
Revises: d1a5e0000001
Create Date: 2026-12-01 10:02:00

A case task keeps what its deadline was counted from (start day, working days, reminder days), so a deadline that
was provisional for a year without holiday data can be recomputed once that year is imported; the recompute is a
case event of its own kind (deadline_moved), added to the event kind CHECK. The value list is written out here so
this revision keeps meaning what it meant when it was written. Replies from phones (上行短信) are kept in sms_reply,
the record of an opt-out (R / TD / 退订).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d2a5e0000002"
down_revision: str | None = "d1a5e0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_KINDS = (
    "received", "approved", "rejected", "budget_reserved", "budget_exhausted", "matched", "consent_requested",
    "consent_confirmed", "consent_declined", "consent_on_file", "consent_lapsed", "no_account", "stage_opened",
    "stage_escalated", "stage_reminder", "stage_timeout", "stage_enterprise_reminder", "decision",
    "supplement_requested", "supplement_received", "publicity_started", "objection_filed", "objection_upheld",
    "objection_dismissed", "finance_approved", "finance_rejected", "payment_sent", "paid", "payment_failed",
    "correction_requested", "account_corrected", "budget_decision", "refunded", "withdrawn", "revoked",
    "archive_changed",
)  # fmt: skip
LEGACY = "objection_received"  # the review name before the vocabulary was unified; part of the hash chain


def _kind_check(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({','.join(repr(v) for v in kinds)}) OR kind IN ('{LEGACY}')"


def upgrade() -> None:
    op.create_table(
        "sms_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_masked", sa.String(length=20), nullable=False),
        sa.Column("content", sa.String(length=500), nullable=False),
        sa.Column("opt_out_word", sa.String(length=8), nullable=True),
        sa.Column("sign_name", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_reply")),
    )
    op.create_index(op.f("ix_sms_reply_phone_hash"), "sms_reply", ["phone_hash"])
    with op.batch_alter_table("case_task") as batch:
        batch.add_column(sa.Column("start_day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("working_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remind_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("case_event") as batch:
        batch.drop_constraint(op.f("ck_case_event_kind"), type_="check")
        batch.create_check_constraint("kind", _kind_check((*EVENT_KINDS, "deadline_moved")))


def downgrade() -> None:
    with op.batch_alter_table("case_event") as batch:
        batch.drop_constraint(op.f("ck_case_event_kind"), type_="check")
        batch.create_check_constraint("kind", _kind_check(EVENT_KINDS))
    with op.batch_alter_table("case_task") as batch:
        batch.drop_column("remind_days")
        batch.drop_column("working_days")
        batch.drop_column("start_day")
    op.drop_index(op.f("ix_sms_reply_phone_hash"), table_name="sms_reply")
    op.drop_table("sms_reply")
