"""Trust: the audit's last gaps — tokens' first use, push settings, collect-now, refused sign-ins throttled (#15)

Revision ID: f5a5f0000005
Revises: f4a5f0000004
Create Date: 2026-12-01 12:05:00

Five audit kinds join the audit_record CHECK: `token_first_used` (the API saw a token's jti for the first time:
`zhida token` mints without a database, so the issue is recorded at first use), `push_preference_changed` (an
enterprise opted out of policy pushes or back in), `push_listed_again` (a listed item's push scheduled again),
`campaign_collect_now` (a department collected a campaign's consent answers early) and `sign_in_refused_suppressed`
(refused sign-ins above the per-minute limit of one client, counted into one summary record).

Two tables: `audit_once` (keys of records written at most once: insert-if-absent in the record's transaction) and
`sign_in_throttle` (refused sign-ins per client and minute, shared by every API process).

SQLite rewrites the CHECK by copying audit_record (batch mode), which drops its triggers: they are created again
here, as in f2. The value lists are written out so this revision keeps meaning what it meant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f5a5f0000005"
down_revision: str | None = "f4a5f0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETENTION_DAYS = 183
KINDS = ("sign_in", "sign_out", "fund_item_changed", "fund_item_lifecycle", "archive_edit", "decision",
         "alert_closed", "export", "reanchor", "key_rotation", "payload_decoded", "key_retired", "sign_in_refused",
         "calendar_imported")  # fmt: skip
NEW_KINDS = ("token_first_used", "push_preference_changed", "push_listed_again", "campaign_collect_now",
             "sign_in_refused_suppressed")  # fmt: skip


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _kind_check(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ",".join(f"'{k}'" for k in kinds) + ")"


def _set_kinds(kinds: tuple[str, ...]) -> None:
    if _pg():
        op.drop_constraint(op.f("ck_audit_record_kind"), "audit_record", type_="check")
        op.create_check_constraint("kind", "audit_record", _kind_check(kinds))
        return
    with op.batch_alter_table("audit_record", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_audit_record_kind"), type_="check")
        batch.create_check_constraint("kind", _kind_check(kinds))
    # The copy has no triggers: the guards of e4, again.
    op.execute("CREATE TRIGGER audit_record_append_only BEFORE UPDATE ON audit_record "
               "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END")  # fmt: skip
    op.execute(f"CREATE TRIGGER audit_record_retention BEFORE DELETE ON audit_record "
               f"WHEN old.created_at > datetime('now', '-{RETENTION_DAYS} days') "
               f"BEGIN SELECT RAISE(ABORT, 'audit records are kept at least {RETENTION_DAYS} days'); END")  # fmt: skip


def upgrade() -> None:
    _set_kinds((*KINDS, *NEW_KINDS))
    op.create_table(
        "audit_once",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_audit_once_expires_at", "audit_once", ["expires_at"])
    op.create_table(
        "sign_in_throttle",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")
    op.drop_index("ix_audit_once_expires_at", table_name="audit_once")
    op.drop_table("audit_once")
    # Records of the new kinds cannot be rewritten or deleted (append-only): refuse rather than break the chain.
    kinds = ",".join(f"'{k}'" for k in NEW_KINDS)
    held = op.get_bind().execute(sa.text(f"SELECT count(*) FROM audit_record WHERE kind IN ({kinds})")).scalar()
    if held:
        raise RuntimeError(f"audit_record holds {held} records of kinds {NEW_KINDS} (append-only, part of the chain): "
                           "this revision cannot be downgraded without breaking the audit chain")  # fmt: skip
    _set_kinds(KINDS)
