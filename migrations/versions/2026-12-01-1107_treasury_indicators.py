"""Chinese practice: indicator draw-down and voucher channel (#17)

Revision ID: e7a5e0000007
Revises: e6a5e0000006
Create Date: 2026-12-01 11:07:00

Budget indicator lines (指标): one per funding source of a fund item, with its share (市区分担) and the balance
payments drew from it; indicator_entry holds each draw (a payment's part, at budget commit) and each restore (a
same-year return). The entry kinds are the budget ledger's (commit, restore), so the CHECK lists that vocabulary.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7a5e0000007"
down_revision: str | None = "e6a5e0000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BUDGET_ENTRY_KINDS = ("reserve", "commit", "release", "restore")


def upgrade() -> None:
    op.create_table(
        "budget_indicator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_item_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("indicator_no", sa.String(length=64), nullable=True),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("drawn_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("drawn_fen >= 0", name=op.f("ck_budget_indicator_drawn_non_negative")),
        sa.CheckConstraint("share_bp >= 0 AND share_bp <= 10000", name=op.f("ck_budget_indicator_share_range")),
        sa.ForeignKeyConstraint(
            ["fund_item_id"], ["fund_item.id"], name=op.f("fk_budget_indicator_fund_item_id_fund_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_indicator")),
        sa.UniqueConstraint("fund_item_id", "source", name="uq_budget_indicator_item_source"),
    )
    op.create_index(op.f("ix_budget_indicator_fund_item_id"), "budget_indicator", ["fund_item_id"])
    op.create_table(
        "indicator_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            f"kind IN ({','.join(repr(k) for k in BUDGET_ENTRY_KINDS)})", name=op.f("ck_indicator_entry_kind")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_indicator_entry_case_id_case")),
        sa.ForeignKeyConstraint(
            ["indicator_id"], ["budget_indicator.id"], name=op.f("fk_indicator_entry_indicator_id_budget_indicator")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_entry")),
        sa.UniqueConstraint("indicator_id", "case_id", "kind", "attempt", name="uq_indicator_entry_case_kind"),
    )
    op.create_index(op.f("ix_indicator_entry_case_id"), "indicator_entry", ["case_id"])
    op.create_index(op.f("ix_indicator_entry_indicator_id"), "indicator_entry", ["indicator_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_indicator_entry_indicator_id"), table_name="indicator_entry")
    op.drop_index(op.f("ix_indicator_entry_case_id"), table_name="indicator_entry")
    op.drop_table("indicator_entry")
    op.drop_index(op.f("ix_budget_indicator_fund_item_id"), table_name="budget_indicator")
    op.drop_table("budget_indicator")
