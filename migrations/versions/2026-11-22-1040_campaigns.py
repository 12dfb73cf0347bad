"""No-application campaigns (issue 7)

Revision ID: c7a5e0000007
Revises: c6a5e0000006
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7a5e0000007"
down_revision: str | None = "c6a5e0000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=160), nullable=False),
        sa.Column("fund_item_id", sa.Integer(), nullable=False),
        sa.Column("fund_item_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("ratio_num", sa.BigInteger(), nullable=True),
        sa.Column("ratio_den", sa.BigInteger(), nullable=True),
        sa.Column("consent_deadline", sa.Date(), nullable=True),
        sa.Column("consent_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('listing','reevaluation')", name=op.f("ck_campaign_kind")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprise.id"], name=op.f("fk_campaign_enterprise_id_enterprise")
        ),
        sa.ForeignKeyConstraint(["fund_item_id"], ["fund_item.id"], name=op.f("fk_campaign_fund_item_id_fund_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_campaign_workflow_id")),
    )
    op.create_index(op.f("ix_campaign_fund_item_id"), "campaign", ["fund_item_id"], unique=False)
    op.create_table(
        "campaign_tranche",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("publicity_until", sa.Date(), nullable=True),
        sa.Column("publicity_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finance_status", sa.String(length=16), nullable=False),
        sa.Column("finance_actor", sa.String(length=80), nullable=True),
        sa.Column("finance_note", sa.Text(), nullable=True),
        sa.Column("finance_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "finance_status IN ('pending','approved','rejected')", name=op.f("ck_campaign_tranche_finance_status")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name=op.f("fk_campaign_tranche_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_tranche")),
        sa.UniqueConstraint("campaign_id", "number", name="uq_campaign_tranche_number"),
    )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tranche", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("consent_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("consent_acct_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("consent_acct_masked", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("consent_acct_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("consent_bank_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("consent_bank_code", sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_case_campaign_id_campaign"), "campaign", ["campaign_id"], ["id"])
        batch_op.create_index("ix_case_campaign_status", ["campaign_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_campaign_status")
        batch_op.drop_constraint(batch_op.f("fk_case_campaign_id_campaign"), type_="foreignkey")
        batch_op.drop_column("consent_bank_code")
        batch_op.drop_column("consent_bank_name")
        batch_op.drop_column("consent_acct_name")
        batch_op.drop_column("consent_acct_masked")
        batch_op.drop_column("consent_acct_enc")
        batch_op.drop_column("consent_at")
        batch_op.drop_column("consent_status")
        batch_op.drop_column("tranche")
        batch_op.drop_column("campaign_id")
    op.drop_table("campaign_tranche")
    op.drop_index(op.f("ix_campaign_fund_item_id"), table_name="campaign")
    op.drop_table("campaign")
