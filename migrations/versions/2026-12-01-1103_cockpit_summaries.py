"""Finance cockpit: summaries kept by triggers in the writing transaction, and indexes of the cockpit's queries (#14)

Revision ID: e3a5e0000003
Revises: e2a5e0000002
Create Date: 2026-12-01 11:03:00

Three summaries serve the cockpit on a million cases: cases and fen per (fund item, enterprise region, case status,
funding source); paid payments per (item, region, source, Beijing month); paid cases per (item, region, source,
working days to pay). Database triggers on case, payment_instruction, budget_entry and enterprise keep them in the
same transaction as the write that changes the figures, whatever code path writes (instant cases, bulk campaign SQL,
imports): a committed figure is never behind the cases. A change of the working-day calendar marks the working-days
histogram stale and the next cockpit read rebuilds it from the cases. The local offset (Beijing, +8 since 1991) is
recorded; the cockpit reads the summaries only while it matches schemas.localtime.

A case's funding source is the source of the budget line of its first reservation ('' before it has one).
"""

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "e3a5e0000003"
down_revision: str | None = "e2a5e0000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The offset the triggers cut local days and months with, as schemas.localtime reads ZHIDA_TIMEZONE.
try:
    from schemas.localtime import LOCAL_TZ
except ImportError:  # pragma: no cover - the migration outside the package
    LOCAL_TZ = ZoneInfo("Asia/Shanghai")
OFFSET = int(datetime(2026, 1, 1, tzinfo=LOCAL_TZ).utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]

SUMMARIES = ("cockpit_case_summary", "cockpit_paid_month", "cockpit_paid_days")


def _dialect() -> str:
    return op.get_bind().dialect.name


# --- expressions, per dialect ---------------------------------------------------------------------------------


def _local_date(moment: str) -> str:
    if _dialect() == "sqlite":
        return f"date({moment}, '{OFFSET:+d} hours')"
    return f"(({moment} AT TIME ZONE 'UTC') + interval '{OFFSET} hours')::date"


def _month(moment: str) -> str:
    if _dialect() == "sqlite":
        return f"coalesce(strftime('%Y-%m', {moment}, '{OFFSET:+d} hours'), '')"
    return f"coalesce(to_char(({moment} AT TIME ZONE 'UTC') + interval '{OFFSET} hours', 'YYYY-MM'), '')"


def _working_days(began: str, paid: str) -> str:
    """Working days in (began, paid] by the weekend rule and calendar_day's holidays and make-up days, at least 0
    (rules.calendar.WorkCalendar.working_days_between, as services/cockpit.py counts timeliness)."""
    a, b = _local_date(began), _local_date(paid)
    if _dialect() == "sqlite":
        # Day numbers from Monday 1900-01-01; weekdays up to day J: 5 per full week plus min(J % 7 + 1, 5).
        def w(d: str) -> str:
            j = f"CAST(julianday({d}) - julianday('1900-01-01') AS INTEGER)"
            return f"(5 * ({j} / 7) + min({j} % 7 + 1, 5))"

        dow = "CAST(strftime('%w', day) AS INTEGER)"
        holidays = f"(SELECT count(*) FROM calendar_day WHERE is_workday = 0 AND day > {a} AND day <= {b} AND {dow} BETWEEN 1 AND 5)"
        makeups = f"(SELECT count(*) FROM calendar_day WHERE is_workday = 1 AND day > {a} AND day <= {b} AND {dow} IN (0, 6))"
        return f"max(0, {w(b)} - {w(a)} - {holidays} + {makeups})"

    def w(d: str) -> str:
        j = f"({d} - DATE '1900-01-01')"
        return f"(5 * ({j} / 7) + LEAST({j} % 7 + 1, 5))"

    dow = "extract(isodow FROM day)"
    holidays = f"(SELECT count(*) FROM calendar_day WHERE NOT is_workday AND day > {a} AND day <= {b} AND {dow} < 6)"
    makeups = f"(SELECT count(*) FROM calendar_day WHERE is_workday AND day > {a} AND day <= {b} AND {dow} >= 6)"
    return f"GREATEST(0, {w(b)} - {w(a)} - {holidays} + {makeups})"


def _region(enterprise_id: str) -> str:
    return f"(SELECT region_code FROM enterprise WHERE id = {enterprise_id})"


def _source(case_id: str) -> str:
    return (
        "coalesce((SELECT bl.source FROM budget_entry be JOIN budget_line bl ON bl.id = be.budget_line_id "
        f"WHERE be.case_id = {case_id} AND be.kind = 'reserve' ORDER BY be.id LIMIT 1), '')"
    )


def _upsert(table: str, keys: list[str], sums: list[str], select: str) -> str:
    """Add the selected deltas to the summary rows they name (created at zero when missing)."""
    columns = ", ".join(keys + sums)
    added = ", ".join(f"{s} = {table}.{s} + excluded.{s}" for s in sums)
    return f"INSERT INTO {table} ({columns}) {select} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"


CASE_KEYS = ["fund_item_id", "region_code", "status", "source"]
MONTH_KEYS = ["fund_item_id", "region_code", "source", "month"]
DAYS_KEYS = ["fund_item_id", "region_code", "source", "days"]


def _case_rows(row: str, sign: int, *, region: str | None = None, source: str | None = None) -> list[str]:
    """The statements adding (sign 1) or removing (-1) one case row's share of the case summary and the histogram."""
    region = region or _region(f"{row}.enterprise_id")
    source = source or _source(f"{row}.id")
    return [
        _upsert("cockpit_case_summary", CASE_KEYS, ["cases", "amount_fen", "paid_fen"],
                f"SELECT {row}.fund_item_id, {region}, {row}.status, {source}, {sign}, "
                f"{sign} * coalesce({row}.amount_fen, 0), {sign} * {row}.paid_fen WHERE true"),
        _upsert("cockpit_paid_days", DAYS_KEYS, ["cases"],
                f"SELECT {row}.fund_item_id, {region}, {source}, {_working_days(f'{row}.created_at', f'{row}.closed_at')}, "
                f"{sign} WHERE {row}.status = 'paid' AND {row}.closed_at IS NOT NULL"),
    ]  # fmt: skip


def _payment_row(row: str, sign: int) -> list[str]:
    """One payment instruction's share of the paid-by-month summary (paid instructions only)."""
    return [
        _upsert("cockpit_paid_month", MONTH_KEYS, ["payments", "paid_fen"],
                f"SELECT c.fund_item_id, {_region('c.enterprise_id')}, {_source('c.id')}, {_month(f'{row}.settled_at')}, "
                f"{sign}, {sign} * {row}.paid_amt_fen FROM \"case\" c WHERE c.id = {row}.case_id AND {row}.status = 'paid'"),
    ]  # fmt: skip


def _case_payments(case_row: str, sign: int, *, region: str | None = None, source: str | None = None) -> list[str]:
    """Every paid instruction of one case, added to or removed from the month summary under the given key parts."""
    region = region or _region(f"{case_row}.enterprise_id")
    source = source or _source(f"{case_row}.id")
    return [
        _upsert("cockpit_paid_month", MONTH_KEYS, ["payments", "paid_fen"],
                f"SELECT {case_row}.fund_item_id, {region}, {source}, {_month('p.settled_at')}, {sign} * count(*), "
                f"{sign} * sum(p.paid_amt_fen) FROM payment_instruction p WHERE p.case_id = {case_row}.id "
                f"AND p.status = 'paid' GROUP BY {_month('p.settled_at')}"),
    ]  # fmt: skip


def _enterprise_move(old_region: str, new_region: str, enterprise_id: str) -> list[str]:
    """An enterprise moved: its cases' and payments' shares go from the old region to the new."""
    out = []
    for region, sign in ((old_region, -1), (new_region, 1)):
        source = _source("c.id")
        out += [
            _upsert("cockpit_case_summary", CASE_KEYS, ["cases", "amount_fen", "paid_fen"],
                    f"SELECT c.fund_item_id, {region}, c.status, {source}, {sign} * count(*), "
                    f"{sign} * sum(coalesce(c.amount_fen, 0)), {sign} * sum(c.paid_fen) FROM \"case\" c "
                    f"WHERE c.enterprise_id = {enterprise_id} GROUP BY c.fund_item_id, c.status, {source}"),
            _upsert("cockpit_paid_days", DAYS_KEYS, ["cases"],
                    f"SELECT c.fund_item_id, {region}, {source}, {_working_days('c.created_at', 'c.closed_at')}, "
                    f"{sign} * count(*) FROM \"case\" c WHERE c.enterprise_id = {enterprise_id} AND c.status = 'paid' "
                    f"AND c.closed_at IS NOT NULL GROUP BY c.fund_item_id, {source}, "
                    f"{_working_days('c.created_at', 'c.closed_at')}"),
            _upsert("cockpit_paid_month", MONTH_KEYS, ["payments", "paid_fen"],
                    f"SELECT c.fund_item_id, {region}, {source}, {_month('p.settled_at')}, {sign} * count(*), "
                    f"{sign} * sum(p.paid_amt_fen) FROM payment_instruction p JOIN \"case\" c ON c.id = p.case_id "
                    f"WHERE c.enterprise_id = {enterprise_id} AND p.status = 'paid' "
                    f"GROUP BY c.fund_item_id, {source}, {_month('p.settled_at')}"),
        ]  # fmt: skip
    return out


def _source_set(entry: str) -> list[str]:
    """A case's first reservation: its shares move from source '' to the line's source."""
    out = []
    for source, sign in (("''", -1), (_source("c.id"), 1)):
        out += [
            _upsert("cockpit_case_summary", CASE_KEYS, ["cases", "amount_fen", "paid_fen"],
                    f"SELECT c.fund_item_id, {_region('c.enterprise_id')}, c.status, {source}, {sign}, "
                    f"{sign} * coalesce(c.amount_fen, 0), {sign} * c.paid_fen FROM \"case\" c WHERE c.id = {entry}.case_id"),
            _upsert("cockpit_paid_days", DAYS_KEYS, ["cases"],
                    f"SELECT c.fund_item_id, {_region('c.enterprise_id')}, {source}, "
                    f"{_working_days('c.created_at', 'c.closed_at')}, {sign} FROM \"case\" c "
                    f"WHERE c.id = {entry}.case_id AND c.status = 'paid' AND c.closed_at IS NOT NULL"),
            _upsert("cockpit_paid_month", MONTH_KEYS, ["payments", "paid_fen"],
                    f"SELECT c.fund_item_id, {_region('c.enterprise_id')}, {source}, {_month('p.settled_at')}, "
                    f"{sign} * count(*), {sign} * sum(p.paid_amt_fen) FROM payment_instruction p "
                    f"JOIN \"case\" c ON c.id = p.case_id WHERE c.id = {entry}.case_id AND p.status = 'paid' "
                    f"GROUP BY c.id, c.fund_item_id, c.enterprise_id, {_month('p.settled_at')}"),
        ]  # fmt: skip
    return out


def _first_reservation(entry: str) -> str:
    return (
        f"{entry}.kind = 'reserve' AND {entry}.case_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM budget_entry x "
        f"WHERE x.case_id = {entry}.case_id AND x.kind = 'reserve' AND x.id < {entry}.id)"
    )


CASE_COLUMNS = "status, amount_fen, paid_fen, created_at, closed_at, fund_item_id, enterprise_id"


def _triggers() -> list[tuple[str, str, str, str, list[str]]]:
    """(name, table, event, condition on NEW/OLD or '', statements) of every trigger."""
    moved = "OLD.fund_item_id <> NEW.fund_item_id OR OLD.enterprise_id <> NEW.enterprise_id"
    return [
        ("cockpit_case_insert", "case", "INSERT", "", _case_rows("NEW", 1)),
        ("cockpit_case_update", "case", f"UPDATE OF {CASE_COLUMNS}", "",
         _case_rows("OLD", -1) + _case_rows("NEW", 1)),
        ("cockpit_case_moved", "case", "UPDATE OF fund_item_id, enterprise_id", moved,
         _case_payments("OLD", -1) + _case_payments("NEW", 1)),
        ("cockpit_case_delete", "case", "DELETE", "", _case_rows("OLD", -1)),
        ("cockpit_payment_insert", "payment_instruction", "INSERT", "", _payment_row("NEW", 1)),
        ("cockpit_payment_update", "payment_instruction", "UPDATE OF status, paid_amt_fen, settled_at, case_id", "",
         _payment_row("OLD", -1) + _payment_row("NEW", 1)),
        ("cockpit_payment_delete", "payment_instruction", "DELETE", "", _payment_row("OLD", -1)),
        ("cockpit_reservation", "budget_entry", "INSERT", _first_reservation("NEW"), _source_set("NEW")),
        ("cockpit_enterprise_region", "enterprise", "UPDATE OF region_code", "OLD.region_code <> NEW.region_code",
         _enterprise_move("OLD.region_code", "NEW.region_code", "NEW.id")),
        ("cockpit_calendar_insert", "calendar_day", "INSERT", "", [_stale()]),
        ("cockpit_calendar_update", "calendar_day", "UPDATE", "", [_stale()]),
        ("cockpit_calendar_delete", "calendar_day", "DELETE", "", [_stale()]),
    ]  # fmt: skip


def _stale() -> str:
    return "UPDATE cockpit_summary_state SET stale = true WHERE name = 'cockpit_paid_days'"


def _create_triggers() -> None:
    for name, table, event, condition, statements in _triggers():
        quoted = f'"{table}"'
        if _dialect() == "sqlite":
            when = f"WHEN {condition} " if condition else ""
            body = ";\n".join(statements)
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {quoted} FOR EACH ROW {when}BEGIN\n{body};\nEND")
        else:
            # PostgreSQL allows no subquery in a trigger's WHEN: the condition is the function's IF.
            body = ";\n".join(statements) + ";"
            if condition:
                body = f"IF {condition} THEN\n{body}\nEND IF;"
            result = "OLD" if event == "DELETE" else "NEW"
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}\n"
                f"RETURN {result};\nEND\n$$"
            )
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {quoted} FOR EACH ROW EXECUTE FUNCTION {name}()")


def _drop_triggers() -> None:
    for name, table, *_ in _triggers():
        op.execute(f'DROP TRIGGER IF EXISTS {name}' + ("" if _dialect() == "sqlite" else f' ON "{table}"'))
        if _dialect() != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def _rebuild() -> None:
    """The summaries from the rows already there (a database upgraded with cases in it)."""
    source = _source("c.id")
    region = "e.region_code"
    days = _working_days("c.created_at", "c.closed_at")
    month = _month("p.settled_at")
    op.execute(
        "INSERT INTO cockpit_case_summary (fund_item_id, region_code, status, source, cases, amount_fen, paid_fen) "
        f"SELECT c.fund_item_id, {region}, c.status, {source}, count(*), sum(coalesce(c.amount_fen, 0)), "
        f"sum(c.paid_fen) FROM \"case\" c JOIN enterprise e ON e.id = c.enterprise_id "
        f"GROUP BY c.fund_item_id, {region}, c.status, {source}"
    )
    op.execute(
        "INSERT INTO cockpit_paid_days (fund_item_id, region_code, source, days, cases) "
        f"SELECT c.fund_item_id, {region}, {source}, {days}, count(*) FROM \"case\" c "
        f"JOIN enterprise e ON e.id = c.enterprise_id WHERE c.status = 'paid' AND c.closed_at IS NOT NULL "
        f"GROUP BY c.fund_item_id, {region}, {source}, {days}"
    )
    op.execute(
        "INSERT INTO cockpit_paid_month (fund_item_id, region_code, source, month, payments, paid_fen) "
        f"SELECT c.fund_item_id, {region}, {source}, {month}, count(*), sum(p.paid_amt_fen) "
        f"FROM payment_instruction p JOIN \"case\" c ON c.id = p.case_id JOIN enterprise e ON e.id = c.enterprise_id "
        f"WHERE p.status = 'paid' GROUP BY c.fund_item_id, {region}, {source}, {month}"
    )


def _key_columns(*extra: sa.Column) -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_item_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(12), nullable=False),
        *extra,
    ]


def upgrade() -> None:
    op.create_table(
        "cockpit_case_summary",
        *_key_columns(
            sa.Column("status", sa.String(24), nullable=False),
            sa.Column("source", sa.String(64), nullable=False),
            sa.Column("cases", sa.BigInteger(), nullable=False),
            sa.Column("amount_fen", sa.BigInteger(), nullable=False),
            sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cockpit_case_summary")),
        sa.UniqueConstraint("fund_item_id", "region_code", "status", "source", name="uq_cockpit_case_summary_key"),
    )
    op.create_table(
        "cockpit_paid_month",
        *_key_columns(
            sa.Column("source", sa.String(64), nullable=False),
            sa.Column("month", sa.String(7), nullable=False),
            sa.Column("payments", sa.BigInteger(), nullable=False),
            sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cockpit_paid_month")),
        sa.UniqueConstraint("fund_item_id", "region_code", "source", "month", name="uq_cockpit_paid_month_key"),
    )
    op.create_table(
        "cockpit_paid_days",
        *_key_columns(
            sa.Column("source", sa.String(64), nullable=False),
            sa.Column("days", sa.Integer(), nullable=False),
            sa.Column("cases", sa.BigInteger(), nullable=False),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cockpit_paid_days")),
        sa.UniqueConstraint("fund_item_id", "region_code", "source", "days", name="uq_cockpit_paid_days_key"),
    )
    op.create_table(
        "cockpit_summary_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("offset_hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cockpit_summary_state")),
    )
    op.bulk_insert(
        sa.table("cockpit_summary_state", sa.column("name"), sa.column("stale"), sa.column("offset_hours")),
        [{"name": name, "stale": False, "offset_hours": OFFSET} for name in SUMMARIES],
    )
    _rebuild()
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    for table in ("cockpit_summary_state", *reversed(SUMMARIES)):
        op.drop_table(table)
