"""Enterprise portal: application materials (#13)

Revision ID: e2a5e0000002
Revises: e1a5e0000001
Create Date: 2026-12-01 11:02:00

The files an enterprise uploads to its case (with the application or answering a 补正): kept outside the database in
the material store; here their name, type told from the content, size, SHA-256 and the store's key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e2a5e0000002"
down_revision: str | None = "e1a5e0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out (not imported): a migration keeps the values it was written with.
CONTENT_TYPES = ("pdf", "jpeg", "png", "ofd")
PURPOSES = ("application", "supplement")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "case_material",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=8), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("uploaded_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(_one_of("content_type", CONTENT_TYPES), name=op.f("ck_case_material_content_type")),
        sa.CheckConstraint(_one_of("purpose", PURPOSES), name=op.f("ck_case_material_purpose")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_case_material_positive_size")),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_material_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_material")),
    )
    op.create_index("ix_case_material_case_id", "case_material", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_material_case_id", table_name="case_material")
    op.drop_table("case_material")
