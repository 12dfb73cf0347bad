"""Keyed audit chain, token revocation, encrypted personal fields

Revision ID: d5a5e0000005
Revises: d4a5e0000004
Create Date: 2026-12-01 10:05:00

The denylist of signed-out tokens (by jti, kept until each would have expired), and the anchors of the keyed case
event chains (each case's last seq and hash with a MAC over both); objectors' names encrypted at rest.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5a5e0000005"
down_revision: str | None = "d4a5e0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_revoked_token_expires_at", "revoked_token", ["expires_at"])
    op.create_table(
        "case_chain_head",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("case.id"), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    # Objectors' names: the full name encrypted, the old column keeps what pages show (masked).
    with op.batch_alter_table("case_objection") as batch:
        batch.add_column(sa.Column("objector_name_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_objection") as batch:
        batch.drop_column("objector_name_enc")
    op.drop_table("case_chain_head")
    op.drop_index("ix_revoked_token_expires_at", table_name="revoked_token")
    op.drop_table("revoked_token")
