"""Trust: audit written with its action, case events append-only (#15)

Revision ID: f2a5f0000002
Revises: f1a5f0000001
Create Date: 2026-12-01 12:02:00

`case_event` gets the protection `audit_record` has had since e4: the database refuses an UPDATE of any event and a
DELETE of an event younger than the retention (183 days, 等保 2.0 三级), on SQLite and PostgreSQL alike; on
PostgreSQL a TRUNCATE of either table is refused too (row triggers do not see it). Nothing in Zhida updates or
deletes an event (a key rotation re-encrypts no column of case_event), so no code path changes. An attacker who
drops the triggers is still caught by the keyed, anchored chains.

Four audit kinds are added to the audit_record CHECK: `payload_decoded` (an operator read workflow payloads through
the Temporal Web UI's codec endpoint), `key_retired` (`zhida keys retire`), `sign_in_refused` (a sign-in with a
token that was not accepted) and `calendar_imported` (an administrator replaced a year's holidays, which moves
working-day deadlines). The value lists are written out so this revision keeps meaning what it meant.

SQLite rewrites a CHECK by copying the table (batch mode), which drops its triggers: audit_record's are created
again here, and a later migration that copies case_event or audit_record must do the same
(tests/security/test_case_event_guard.py fails at head when a guard is missing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f2a5f0000002"
down_revision: str | None = "f1a5f0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETENTION_DAYS = 183
KINDS = ("sign_in", "sign_out", "fund_item_changed", "fund_item_lifecycle", "archive_edit", "decision",
         "alert_closed", "export", "reanchor", "key_rotation")  # fmt: skip
NEW_KINDS = ("payload_decoded", "key_retired", "sign_in_refused", "calendar_imported")


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
    if _pg():
        op.execute(f"""
            CREATE FUNCTION case_event_guard() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    RAISE EXCEPTION 'case events are append-only';
                END IF;
                IF OLD.created_at > now() - interval '{RETENTION_DAYS} days' THEN
                    RAISE EXCEPTION 'case events are kept at least {RETENTION_DAYS} days';
                END IF;
                RETURN OLD;
            END $$ LANGUAGE plpgsql""")  # fmt: skip
        op.execute("CREATE TRIGGER case_event_guard BEFORE UPDATE OR DELETE ON case_event "
                   "FOR EACH ROW EXECUTE FUNCTION case_event_guard()")  # fmt: skip
        op.execute("""
            CREATE FUNCTION audit_no_truncate() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: TRUNCATE is refused', TG_TABLE_NAME;
            END $$ LANGUAGE plpgsql""")  # fmt: skip
        for table in ("case_event", "audit_record"):
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()")  # fmt: skip
    else:
        op.execute("CREATE TRIGGER case_event_append_only BEFORE UPDATE ON case_event "
                   "BEGIN SELECT RAISE(ABORT, 'case events are append-only'); END")  # fmt: skip
        op.execute(f"CREATE TRIGGER case_event_retention BEFORE DELETE ON case_event "
                   f"WHEN old.created_at > datetime('now', '-{RETENTION_DAYS} days') "
                   f"BEGIN SELECT RAISE(ABORT, 'case events are kept at least {RETENTION_DAYS} days'); END")  # fmt: skip


def downgrade() -> None:
    if _pg():
        for table in ("case_event", "audit_record"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_no_truncate()")
        op.execute("DROP TRIGGER IF EXISTS case_event_guard ON case_event")
        op.execute("DROP FUNCTION IF EXISTS case_event_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS case_event_append_only")
        op.execute("DROP TRIGGER IF EXISTS case_event_retention")
    # Records of the new kinds cannot be rewritten or deleted (append-only): refuse rather than break the chain.
    kinds = ",".join(f"'{k}'" for k in NEW_KINDS)
    held = op.get_bind().execute(sa.text(f"SELECT count(*) FROM audit_record WHERE kind IN ({kinds})")).scalar()
    if held:
        raise RuntimeError(f"audit_record holds {held} records of kinds {NEW_KINDS} (append-only, part of the chain): "
                           "this revision cannot be downgraded without breaking the audit chain")  # fmt: skip
    _set_kinds(KINDS)
