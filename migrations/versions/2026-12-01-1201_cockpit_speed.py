"""Cockpit at volume (#14): summaries folded at commit on PostgreSQL, and indexes of the two figures counted from cases

Revision ID: f1a5f0000001
Revises: e8a5e0000008
Create Date: 2026-12-01 12:01:00

PostgreSQL. The row triggers of e3 (cockpit summaries) added each write's share straight to the summary rows, so a
transaction held the row lock of every (item, region, status, source) it touched until it committed: concurrent
payouts of one item and region queued on one row for their whole transaction, and two transactions touching two keys
in opposite orders deadlocked. The triggers now append their deltas to per-summary delta tables (insert only: no
lock on a shared row) and mark the transaction once; a deferred constraint trigger on the mark folds the
transaction's deltas into the summaries at commit, grouped and in key order, the three summaries always in the same
order. Summary row locks are then held only from the fold to the commit, always taken in one global order, so folds
never deadlock, and a statement writing many rows costs one grouped upsert per key instead of one per row. A reader in
the same transaction folds first (SET CONSTRAINTS … IMMEDIATE, db/repositories/cockpit_summaries.settle). The delta
and mark tables are UNLOGGED: they are empty whenever no transaction is open, so a crash loses nothing. SQLite has one
writer at a time: its triggers stay as they are.

Both engines: indexes for the cockpit's two figures still counted from the cases (returns waiting for correction:
the newest cases of one status; overdue stages: open stages by due moment, timed-out stages).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "f1a5f0000001"
down_revision: str | None = "e8a5e0000008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The summaries in the order every fold takes their row locks, with their key and sum columns (as in e3).
SUMMARIES = {
    "cockpit_case_summary": (["fund_item_id", "region_code", "status", "source"], ["cases", "amount_fen", "paid_fen"]),
    "cockpit_paid_days": (["fund_item_id", "region_code", "source", "days"], ["cases"]),
    "cockpit_paid_month": (["fund_item_id", "region_code", "source", "month"], ["payments", "paid_fen"]),
}
KEY_TYPES = {"fund_item_id": "integer", "region_code": "varchar(12)", "status": "varchar(24)", "source": "varchar(64)",
             "days": "integer", "month": "varchar(7)"}  # fmt: skip


def _e3():
    """The e3 migration's trigger builders (the same expressions, only the statement each share goes into differs)."""
    path = Path(__file__).with_name("2026-12-01-1103_cockpit_summaries.py")
    spec = importlib.util.spec_from_file_location("cockpit_summaries_e3", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _delta(table: str, keys: list[str], sums: list[str], select: str) -> str:
    """A share appended to the transaction's deltas (e3's statements add it to the summary row instead)."""
    assert select.startswith("SELECT ")
    columns = ", ".join(["txid", *keys, *sums])
    return f"INSERT INTO {table}_delta ({columns}) SELECT txid_current(), {select[len('SELECT '):]}"


MARK = "INSERT INTO cockpit_delta_mark (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING"


def _fold_body() -> str:
    steps = []
    for table, (keys, sums) in SUMMARIES.items():
        k = ", ".join(keys)
        added = ", ".join(f"{s} = {table}.{s} + excluded.{s}" for s in sums)
        nonzero = " OR ".join(f"sum({s}) <> 0" for s in sums)
        steps.append(
            f"WITH d AS (DELETE FROM {table}_delta WHERE txid = NEW.txid RETURNING *) "
            f"INSERT INTO {table} ({k}, {', '.join(sums)}) "
            f"SELECT {k}, {', '.join(f'sum({s})' for s in sums)} FROM d GROUP BY {k} HAVING {nonzero} ORDER BY {k} "
            f"ON CONFLICT ({k}) DO UPDATE SET {added};"
        )
    steps.append("DELETE FROM cockpit_delta_mark WHERE txid = NEW.txid;")
    return "\n".join(steps)


def _replace_functions(e3, upsert) -> None:
    """Every summary trigger's function with its shares going through `upsert` (e3's own, or _delta plus the mark)."""
    original = e3._upsert
    e3._upsert = upsert
    try:
        triggers = e3._triggers()
    finally:
        e3._upsert = original
    for name, _table, event, condition, statements in triggers:
        if name.startswith("cockpit_calendar_"):
            continue  # they mark the histogram stale: no summary row
        if upsert is _delta:
            statements = [*statements, MARK]
        body = ";\n".join(statements) + ";"
        if condition:
            body = f"IF {condition} THEN\n{body}\nEND IF;"
        result = "OLD" if event == "DELETE" else "NEW"
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}\n"
            f"RETURN {result};\nEND\n$$"
        )


INDEXES = [
    # Returns waiting for correction: the newest cases of one status (ORDER BY id DESC LIMIT n).
    ("ix_case_status_id", "case", ["status", "id"]),
    # Overdue stages: open stages past their due moment, and timed-out stages, without reading every stage.
    ("ix_case_task_status_due", "case_task", ["status", "due_at", "case_id", "department_code"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    postgres = op.get_bind().dialect.name == "postgresql"
    # Created on both engines so the schemas match (db/models.py); only PostgreSQL's triggers write them.
    unlogged = "UNLOGGED " if postgres else ""
    for table, (keys, sums) in SUMMARIES.items():
        columns = ", ".join(["txid bigint NOT NULL", *(f"{k} {KEY_TYPES[k]} NOT NULL" for k in keys),
                             *(f"{s} bigint NOT NULL" for s in sums)])  # fmt: skip
        op.execute(f"CREATE {unlogged}TABLE {table}_delta ({columns})")
        op.execute(f"CREATE INDEX ix_{table}_delta_txid ON {table}_delta (txid)")
    op.execute(f"CREATE {unlogged}TABLE cockpit_delta_mark (txid bigint NOT NULL, "
               "CONSTRAINT pk_cockpit_delta_mark PRIMARY KEY (txid))")  # fmt: skip
    if not postgres:
        return
    op.execute(
        f"CREATE FUNCTION cockpit_fold() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{_fold_body()}\n"
        "RETURN NULL;\nEND\n$$"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER cockpit_fold AFTER INSERT ON cockpit_delta_mark DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION cockpit_fold()"
    )
    _replace_functions(_e3(), _delta)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        e3 = _e3()
        _replace_functions(e3, e3._upsert)
        op.execute("DROP TRIGGER cockpit_fold ON cockpit_delta_mark")
        op.execute("DROP FUNCTION cockpit_fold()")
    op.execute("DROP TABLE cockpit_delta_mark")
    for table in SUMMARIES:
        op.execute(f"DROP TABLE {table}_delta")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
