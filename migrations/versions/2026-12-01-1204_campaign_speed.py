"""Speed: campaign hot path (#16) — SQLite checks the hot tables' vocabulary without an IN list; one case index less

Revision ID: f4a5f0000004
Revises: f3a5f0000003
Create Date: 2026-12-01 12:04:00

SQLite evaluates `col IN ('a', 'b', …)` in a CHECK by filling a temporary index with the list for every row it
writes: with the 38 event kinds and 25 case statuses that was 5–15 µs per row, a fifth of a 免申即享 campaign's work
(each case writes about twenty rows across case, case_event, payment_instruction, notice, budget_entry and
indicator_entry). The same condition written as `(col = 'a' OR col = 'b' OR …)` is compared in place.

Only the text of the CHECK changes: the values are the same, every row already satisfies it, so the table is not
copied. The new text is written into sqlite_schema the way SQLite documents for changing a CHECK in place
(writable_schema, then a new schema_version so every connection reloads the schema). PostgreSQL evaluates IN lists
as an array comparison and keeps them. A later revision that rewrites one of these CHECKs (a new vocabulary value)
writes it in the same form; tests/test_migrations.py holds the hot tables to it.

ix_case_status (status) goes: ix_case_status_id (status, id) serves every lookup by status, and on SQLite the two are
the same index (every index ends in the rowid). Each status change of a case cost a delete and an insert in both.
"""

import re
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "f4a5f0000004"
down_revision: str | None = "f3a5f0000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables a campaign writes for every case.
HOT = ("case", "case_event", "payment_instruction", "notice", "budget_entry", "indicator_entry")

_IN_LIST = re.compile(r"(\w+) IN \(((?:'[^']*'\s*,\s*)*'[^']*')\)")
_OR_CHAIN = re.compile(r"\(((\w+) = '[^']*'(?: OR \2 = '[^']*')*)\)")


def in_to_or(sql: str) -> str:
    """Every `col IN ('a','b')` of a CREATE TABLE's CHECKs as `(col = 'a' OR col = 'b')`."""

    def chain(m: re.Match[str]) -> str:
        column, values = m.group(1), re.findall(r"'[^']*'", m.group(2))
        return "(" + " OR ".join(f"{column} = {v}" for v in values) + ")"

    return _IN_LIST.sub(chain, sql)


def or_to_in(sql: str) -> str:
    """The inverse of `in_to_or`."""

    def listed(m: re.Match[str]) -> str:
        column, values = m.group(2), re.findall(r"'[^']*'", m.group(1))
        return f"{column} IN ({','.join(values)})"

    return _OR_CHAIN.sub(listed, sql)


def _rewrite(convert) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    changed = {}
    for table in HOT:
        sql = bind.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}).scalar()
        if sql is None:
            continue
        head, _, body = sql.partition("(")  # the table's name and columns stay as they are
        new = head + "(" + convert(body)
        if new != sql:
            changed[table] = new
    if not changed:
        return
    version = bind.execute(text("PRAGMA schema_version")).scalar()
    bind.execute(text("PRAGMA writable_schema = ON"))
    try:
        for table, sql in changed.items():
            bind.execute(
                text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"), {"sql": sql, "t": table}
            )
        bind.execute(text(f"PRAGMA schema_version = {int(version) + 1}"))
    finally:
        bind.execute(text("PRAGMA writable_schema = OFF"))
    problems = [row[0] for row in bind.execute(text("PRAGMA quick_check"))]
    if problems != ["ok"]:
        raise RuntimeError(f"schema rewrite left the database inconsistent: {problems[:5]}")


def upgrade() -> None:
    _rewrite(in_to_or)
    # ix_case_status (status) duplicates ix_case_status_id (status, id) — exactly on SQLite, where every index ends in
    # the rowid — and a campaign moves each case's status three times.
    op.drop_index("ix_case_status", table_name="case")


def downgrade() -> None:
    op.create_index("ix_case_status", "case", ["status"], unique=False)
    _rewrite(or_to_in)
