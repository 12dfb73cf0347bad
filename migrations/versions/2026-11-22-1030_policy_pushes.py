"""SMS: policy pushes and opt-out (issue 6)

Revision ID: c6a5e0000006
Revises: c5a5e0000005
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c6a5e0000006"
down_revision: str | None = "c5a5e0000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enterprise", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("push_opted_out_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=8), server_default="case", nullable=False))
        batch_op.add_column(sa.Column("receipt_polls", sa.Integer(), server_default="0", nullable=False))
    pending = sa.text("status IN ('queued', 'sending')")
    op.create_index("ix_notice_pending_id", "notice", ["id"], postgresql_where=pending, sqlite_where=pending)
    op.create_table(
        "policy_push",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fund_item_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("opted_out", sa.Integer(), nullable=False),
        sa.Column("no_phone", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('registered','listed','paid')", name=op.f("ck_policy_push_kind")),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_policy_push_case_id_case")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_policy_push_enterprise_id_enterprise")),
        sa.ForeignKeyConstraint(["fund_item_id"], ["fund_item.id"], name=op.f("fk_policy_push_fund_item_id_fund_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_push")),
        sa.UniqueConstraint("key", name=op.f("uq_policy_push_key")),
    )
    with op.batch_alter_table("policy_push", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_push_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_policy_push_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_policy_push_fund_item_id"), ["fund_item_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_push", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_push_fund_item_id"))
        batch_op.drop_index(batch_op.f("ix_policy_push_enterprise_id"))
        batch_op.drop_index(batch_op.f("ix_policy_push_case_id"))
    op.drop_table("policy_push")
    op.drop_index("ix_notice_pending_id", table_name="notice")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_column("receipt_polls")
        batch_op.drop_column("category")
    with op.batch_alter_table("enterprise", schema=None) as batch_op:
        batch_op.drop_column("push_opted_out_at")
        batch_op.drop_column("push_opt_out")
