"""SMS dispatch: attempts, next try, phone hash, fund item, delivery receipt on notices

Revision ID: 5b1e0c7d9a23
Revises: 7804e9f4f800
Create Date: 2026-11-23 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1e0c7d9a23"
down_revision: str | None = "7804e9f4f800"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("fund_item_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("receipt_code", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_notice_fund_item_id_fund_item"), "fund_item", ["fund_item_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_notice_fund_item_id"), ["fund_item_id"], unique=False)
        batch_op.create_index("ix_notice_status_next_attempt", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_notice_phone_hash_sent", ["phone_hash", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_phone_hash_sent")
        batch_op.drop_index("ix_notice_status_next_attempt")
        batch_op.drop_index(batch_op.f("ix_notice_fund_item_id"))
        batch_op.drop_constraint(batch_op.f("fk_notice_fund_item_id_fund_item"), type_="foreignkey")
        batch_op.drop_column("receipt_code")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("fund_item_id")
        batch_op.drop_column("phone_hash")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
