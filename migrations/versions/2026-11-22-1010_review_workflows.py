"""Review workflows: tasks, objections, deadlines (issue 4)

Revision ID: c4a5e0000004
Revises: 5b1e0c7d9a23
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4a5e0000004"
down_revision: str | None = "5b1e0c7d9a23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("stage_key", sa.String(length=32), nullable=False),
        sa.Column("stage_name", sa.String(length=40), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_task_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_task")),
        sa.UniqueConstraint(
            "case_id", "stage_key", "round", "department_code", name="uq_case_task_stage_department"
        ),
    )
    op.create_index(op.f("ix_case_task_case_id"), "case_task", ["case_id"], unique=False)
    op.create_index("ix_case_task_department_status", "case_task", ["department_code", "status"], unique=False)

    op.create_table(
        "case_objection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("objector_name", sa.String(length=60), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=False),
        sa.Column("id_number_masked", sa.String(length=24), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ruling_department", sa.String(length=32), nullable=True),
        sa.Column("ruling_actor", sa.String(length=80), nullable=True),
        sa.Column("ruling_comment", sa.Text(), nullable=True),
        sa.Column("ruled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_objection_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_objection")),
    )
    op.create_index(op.f("ix_case_objection_case_id"), "case_objection", ["case_id"], unique=False)

    op.create_table(
        "payment_return",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("voucher_no", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("returned_on", sa.Date(), nullable=False),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("cross_year", sa.Boolean(), nullable=False),
        sa.Column("handling", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('passive','active')", name=op.f("ck_payment_return_kind")),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_payment_return_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_return")),
        sa.UniqueConstraint("voucher_no", "kind", name="uq_payment_return_voucher_kind"),
    )
    op.create_index(op.f("ix_payment_return_case_id"), "payment_return", ["case_id"], unique=False)
    op.create_index(op.f("ix_payment_return_voucher_no"), "payment_return", ["voucher_no"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payment_return_voucher_no"), table_name="payment_return")
    op.drop_index(op.f("ix_payment_return_case_id"), table_name="payment_return")
    op.drop_table("payment_return")
    op.drop_index(op.f("ix_case_objection_case_id"), table_name="case_objection")
    op.drop_table("case_objection")
    op.drop_index("ix_case_task_department_status", table_name="case_task")
    op.drop_index(op.f("ix_case_task_case_id"), table_name="case_task")
    op.drop_table("case_task")
