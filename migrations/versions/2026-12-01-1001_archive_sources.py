"""Archive sources, imports and value history (企档)

Revision ID: d1a5e0000001
Revises: c9a5e0000009
Create Date: 2026-12-01 10:01:00

archive_import: one import of a data source's file (kept when it fails, for its error report); archive_value: each
value an archive field took, with its source, source date, the import or manual change that brought it, and when it
was recorded; tag_rule: the departments' tags as conditions, kept on enterprise.rule_tags.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d1a5e0000001"
down_revision: str | None = "c9a5e0000009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SOURCES = "'manual','market','tax','social','tech','credit','tag_rules'"


def upgrade() -> None:
    op.create_table(
        "archive_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("changed_enterprises", sa.Integer(), nullable=False),
        sa.Column("changed_values", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("reevaluations", sa.Integer(), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_archive_import_source")),
        sa.CheckConstraint("status IN ('succeeded','failed')", name=op.f("ck_archive_import_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_import")),
    )
    op.create_index("ix_archive_import_source_hash", "archive_import", ["source", "content_hash"])
    op.create_table(
        "archive_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_date", sa.Date(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("archive_change_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_archive_value_source")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprise.id"], name=op.f("fk_archive_value_enterprise_id_enterprise")
        ),
        sa.ForeignKeyConstraint(
            ["import_id"], ["archive_import.id"], name=op.f("fk_archive_value_import_id_archive_import")
        ),
        sa.ForeignKeyConstraint(
            ["archive_change_id"],
            ["archive_change.id"],
            name=op.f("fk_archive_value_archive_change_id_archive_change"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_value")),
    )
    op.create_index(
        "ix_archive_value_enterprise_field", "archive_value", ["enterprise_id", "field", "recorded_at"]
    )
    op.create_index(op.f("ix_archive_value_import_id"), "archive_value", ["import_id"])
    op.create_table(
        "tag_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_rule")),
        sa.UniqueConstraint("name", name=op.f("uq_tag_rule_name")),
    )
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("enterprise") as batch:
        batch.add_column(sa.Column("rule_tags", json_type, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enterprise") as batch:
        batch.drop_column("rule_tags")
    op.drop_table("tag_rule")
    op.drop_index(op.f("ix_archive_value_import_id"), table_name="archive_value")
    op.drop_index("ix_archive_value_enterprise_field", table_name="archive_value")
    op.drop_table("archive_value")
    op.drop_index("ix_archive_import_source_hash", table_name="archive_import")
    op.drop_table("archive_import")
