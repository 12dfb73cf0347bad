"""Treasury: returns, reconciliation, alerts (issue 5)

Revision ID: c5a5e0000005
Revises: c4a5e0000004
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5a5e0000005"
down_revision: str | None = "c4a5e0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_instruction", schema=None) as batch_op:
        batch_op.add_column(sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("return_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("return_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("returned_amt_fen", sa.BigInteger(), server_default="0", nullable=False))

    op.create_table(
        "recon_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=120), nullable=False),
        sa.Column("statement_date", sa.Date(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("statement_lines", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("missing_ours", sa.Integer(), nullable=False),
        sa.Column("missing_theirs", sa.Integer(), nullable=False),
        sa.Column("amount_mismatch", sa.Integer(), nullable=False),
        sa.Column("status_mismatch", sa.Integer(), nullable=False),
        sa.Column("their_paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("their_returned_fen", sa.BigInteger(), nullable=False),
        sa.Column("our_paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("our_returned_fen", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('running','done')", name=op.f("ck_recon_run_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_run")),
        sa.UniqueConstraint("run_key", name=op.f("uq_recon_run_run_key")),
    )
    op.create_index(op.f("ix_recon_run_statement_date"), "recon_run", ["statement_date"], unique=False)

    op.create_table(
        "recon_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("voucher_no", sa.String(length=40), nullable=False),
        sa.Column("line_type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("our_status", sa.String(length=16), nullable=True),
        sa.Column("their_status", sa.String(length=16), nullable=True),
        sa.Column("our_amt_fen", sa.BigInteger(), nullable=True),
        sa.Column("their_amt_fen", sa.BigInteger(), nullable=True),
        sa.Column("treasury_ref", sa.String(length=64), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('matched','missing_ours','missing_theirs','amount_mismatch','status_mismatch')",
            name=op.f("ck_recon_line_outcome"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["recon_run.id"], name=op.f("fk_recon_line_run_id_recon_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_line")),
        sa.UniqueConstraint("run_id", "voucher_no", "line_type", name="uq_recon_line_run_voucher_type"),
    )
    op.create_index(op.f("ix_recon_line_run_id"), "recon_line", ["run_id"], unique=False)
    op.create_index(op.f("ix_recon_line_voucher_no"), "recon_line", ["voucher_no"], unique=False)

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=120), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recon_run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=80), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open','closed')", name=op.f("ck_alert_status")),
        sa.ForeignKeyConstraint(["recon_run_id"], ["recon_run.id"], name=op.f("fk_alert_recon_run_id_recon_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("kind", "ref", name="uq_alert_kind_ref"),
    )
    op.create_index("ix_alert_status_created", "alert", ["status", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alert_status_created", table_name="alert")
    op.drop_table("alert")
    op.drop_index(op.f("ix_recon_line_voucher_no"), table_name="recon_line")
    op.drop_index(op.f("ix_recon_line_run_id"), table_name="recon_line")
    op.drop_table("recon_line")
    op.drop_index(op.f("ix_recon_run_statement_date"), table_name="recon_run")
    op.drop_table("recon_run")
    with op.batch_alter_table("payment_instruction", schema=None) as batch_op:
        batch_op.drop_column("returned_amt_fen")
        batch_op.drop_column("return_reason")
        batch_op.drop_column("return_kind")
        batch_op.drop_column("returned_at")
