"""Archive changes recorded with actor and source; listing pushes deferred to the SMS dispatcher

Revision ID: c9a5e0000009
Revises: c8a5e0000008
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c9a5e0000009"
down_revision: str | None = "c8a5e0000008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprise.id"], name=op.f("fk_archive_change_enterprise_id_enterprise")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_change")),
    )
    op.create_index(op.f("ix_archive_change_enterprise_id"), "archive_change", ["enterprise_id"])
    op.create_table(
        "listing_push_due",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_item_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["fund_item_id"], ["fund_item.id"], name=op.f("fk_listing_push_due_fund_item_id_fund_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_push_due")),
    )
    op.create_index(op.f("ix_listing_push_due_fund_item_id"), "listing_push_due", ["fund_item_id"])
    op.create_index(op.f("ix_listing_push_due_done_at"), "listing_push_due", ["done_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_listing_push_due_done_at"), table_name="listing_push_due")
    op.drop_index(op.f("ix_listing_push_due_fund_item_id"), table_name="listing_push_due")
    op.drop_table("listing_push_due")
    op.drop_index(op.f("ix_archive_change_enterprise_id"), table_name="archive_change")
    op.drop_table("archive_change")
