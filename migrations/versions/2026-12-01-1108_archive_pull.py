"""Archive: data-sharing pull and schedules (#18)

Revision ID: e8a5e0000008
Revises: e7a5e0000007
Create Date: 2026-12-01 11:08:00

archive_pull: each pull of a source's dataset from the data-sharing platform (watermark, pages, records, the import
that stored them or why nothing was stored); enterprise.provenance: the source, source date and import of each
field's current value, frozen with a case's evidence; tag_rule.kind and members: a tag from an imported list;
the unused index on archive_value.import_id is dropped (imports write hundreds of thousands of values).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e8a5e0000008"
down_revision: str | None = "e7a5e0000007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = "'manual','market','tax','social','tech','credit','tag_rules'"


def upgrade() -> None:
    op.create_table(
        "archive_pull",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.String(length=40), nullable=False),
        sa.Column("watermark", sa.String(length=40), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_archive_pull_source")),
        sa.CheckConstraint("status IN ('succeeded','failed')", name=op.f("ck_archive_pull_status")),
        sa.CheckConstraint(
            "failure IS NULL OR failure IN ('timeout','partial_page','schema_drift','refused','invalid_rows')",
            name=op.f("ck_archive_pull_failure"),
        ),
        sa.ForeignKeyConstraint(["import_id"], ["archive_import.id"], name=op.f("fk_archive_pull_import_id_archive_import")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_pull")),
    )
    op.create_index("ix_archive_pull_source_status", "archive_pull", ["source", "status", "id"])
    # Nothing reads archive_value by import; the index cost every import a third of its history writes.
    op.drop_index(op.f("ix_archive_value_import_id"), table_name="archive_value")
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("enterprise") as batch:
        batch.add_column(sa.Column("provenance", json_type, nullable=True))
    with op.batch_alter_table("tag_rule") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=8), server_default="rule", nullable=False))
        batch.add_column(sa.Column("members", sa.JSON(), nullable=True))
        batch.create_check_constraint("kind", "kind IN ('rule','list')")


def downgrade() -> None:
    with op.batch_alter_table("tag_rule") as batch:
        batch.drop_constraint(op.f("ck_tag_rule_kind"), type_="check")
        batch.drop_column("members")
        batch.drop_column("kind")
    # A plain DROP COLUMN (SQLite ≥ 3.35), not a batch copy: renaming a copied enterprise table breaks the cockpit's
    # summary triggers (e3), which name the enterprise table.
    op.execute("ALTER TABLE enterprise DROP COLUMN provenance")
    op.create_index(op.f("ix_archive_value_import_id"), "archive_value", ["import_id"])
    op.drop_index("ix_archive_pull_source_status", table_name="archive_pull")
    op.drop_table("archive_pull")
