"""Trust: the audit chain beyond case events (configuration, archive edits, decisions, sign-ins, exports) (#15)

Revision ID: e4a5e0000004
Revises: e3a5e0000003
Create Date: 2026-12-01 11:04:00

`audit_record` is append-only and kept at least 183 days (等保 2.0 三级 asks for six months): the database itself
refuses an UPDATE of any record and a DELETE of a record younger than that, on SQLite and PostgreSQL alike, so
there is no delete path in the application or outside it (short of dropping the trigger, which the keyed chain
then detects). `audit_head` anchors each chain (last seq and hash, with a MAC).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e4a5e0000004"
down_revision: str | None = "e3a5e0000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETENTION_DAYS = 183
KINDS = ("sign_in", "sign_out", "fund_item_changed", "fund_item_lifecycle", "archive_edit", "decision",
         "alert_closed", "export", "reanchor", "key_rotation")  # fmt: skip
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_record",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("kind IN (" + ",".join(f"'{k}'" for k in KINDS) + ")", name=op.f("ck_audit_record_kind")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_record_seq")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_record")),
    )
    op.create_index(op.f("ix_audit_record_subject"), "audit_record", ["subject"])
    op.create_index(op.f("ix_audit_record_created_at"), "audit_record", ["created_at"])
    op.create_table(
        "audit_head",
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_head")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_record_guard() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    RAISE EXCEPTION 'audit records are append-only';
                END IF;
                IF OLD.created_at > now() - interval '{RETENTION_DAYS} days' THEN
                    RAISE EXCEPTION 'audit records are kept at least {RETENTION_DAYS} days';
                END IF;
                RETURN OLD;
            END $$ LANGUAGE plpgsql""")  # fmt: skip
        op.execute("CREATE TRIGGER audit_record_guard BEFORE UPDATE OR DELETE ON audit_record "
                   "FOR EACH ROW EXECUTE FUNCTION audit_record_guard()")  # fmt: skip
    else:
        op.execute("CREATE TRIGGER audit_record_append_only BEFORE UPDATE ON audit_record "
                   "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END")  # fmt: skip
        op.execute(f"CREATE TRIGGER audit_record_retention BEFORE DELETE ON audit_record "
                   f"WHEN old.created_at > datetime('now', '-{RETENTION_DAYS} days') "
                   f"BEGIN SELECT RAISE(ABORT, 'audit records are kept at least {RETENTION_DAYS} days'); END")  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_record_guard ON audit_record")
        op.execute("DROP FUNCTION IF EXISTS audit_record_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_record_append_only")
        op.execute("DROP TRIGGER IF EXISTS audit_record_retention")
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_audit_record_created_at"), table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_subject"), table_name="audit_record")
    op.drop_table("audit_record")
