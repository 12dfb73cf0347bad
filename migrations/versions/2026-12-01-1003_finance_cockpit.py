"""Finance cockpit: payouts made outside Zhida (奖补汇聚)

Revision ID: d3a5e0000003
Revises: d2a5e0000002
Create Date: 2026-12-01 10:03:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d3a5e0000003"
down_revision: str | None = "d2a5e0000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_payout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("row_key", sa.String(64), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("enterprise_name", sa.String(200), nullable=False),
        sa.Column("item_name", sa.String(300), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("department_name", sa.String(128), nullable=False),
        sa.Column("region_code", sa.String(12), nullable=False),
        sa.Column("source_document", sa.String(200), nullable=False),
        sa.Column("batch", sa.String(64), nullable=False),
        sa.Column("imported_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_external_payout_positive_amount")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_payout")),
        sa.UniqueConstraint("row_key", name=op.f("uq_external_payout_row_key")),
    )
    op.create_index("ix_external_payout_uscc_purpose", "external_payout", ["uscc", "purpose"])
    op.create_index(op.f("ix_external_payout_batch"), "external_payout", ["batch"])


def downgrade() -> None:
    op.drop_index(op.f("ix_external_payout_batch"), table_name="external_payout")
    op.drop_index("ix_external_payout_uscc_purpose", table_name="external_payout")
    op.drop_table("external_payout")
