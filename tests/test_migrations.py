"""Migrations and models agree, and upgrade → downgrade → upgrade works, on every backend."""

import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect, text

from db.migrate import downgrade, upgrade
from db.models import Base
from db.session import engine_for


def _diff(url: str) -> list:
    with engine_for(url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_autogenerate_finds_no_difference(db_url: str) -> None:
    assert _diff(db_url) == []


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    tables = set(inspect(engine_for(empty_db_url)).get_table_names())
    assert {"case", "case_event", "payment_instruction", "notice", "budget_line", "fund_item_version"} <= tables
    downgrade(empty_db_url)
    assert set(inspect(engine_for(empty_db_url)).get_table_names()) <= {"alembic_version"}
    upgrade(empty_db_url)
    assert _diff(empty_db_url) == []


def _quoted(text: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", text))


def _database_checks(url: str) -> dict[str, str]:
    """Constraint name → its SQL, as the migrated database holds it."""
    with engine_for(url).connect() as conn:
        if url.startswith("sqlite"):
            found = {}
            for (table_sql,) in conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table'")):
                for name, body in re.findall(r"CONSTRAINT (\w+) CHECK \((.*?)\)(?:,\s*\n|\s*\n\))", table_sql or ""):
                    found[name] = body
            return found
        rows = conn.execute(text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'"))
        return dict(rows.all())


def test_every_check_constraint_holds_the_whole_vocabulary(db_url: str) -> None:
    """A migration that rewrites a CHECK must list every value the models allow (a later one must not drop any)."""
    held = _database_checks(db_url)
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint) and "IN (" in str(constraint.sqltext):
                name = f"ck_{table.name}_{constraint.name}".replace("ck_" + table.name + "_ck_", "ck_")
                assert name in held, f"{name} missing in the database"
                assert _quoted(str(constraint.sqltext)) <= _quoted(held[name]), name


def test_sqlite_checks_of_the_hot_tables_compare_in_place(db_url: str) -> None:
    """f4: on SQLite the campaign's hot tables keep their vocabulary CHECKs as OR chains (an IN list costs a temporary
    index per written row there), and they still refuse a value outside the vocabulary."""
    if not db_url.startswith("sqlite"):
        return
    import importlib

    f4 = importlib.import_module("migrations.versions.2026-12-01-1204_campaign_speed")
    held = _database_checks(db_url)

    def table_of(name: str) -> str:  # the longest table name the constraint's name starts with (case_task, not case)
        return max((t for t in Base.metadata.tables if name.startswith(f"ck_{t}_")), key=len, default="")

    hot = [name for name in held if table_of(name) in f4.HOT]
    assert {"ck_case_status", "ck_case_event_kind", "ck_payment_instruction_status", "ck_notice_status",
            "ck_budget_entry_kind", "ck_indicator_entry_kind"} <= set(hot)  # fmt: skip
    for name in hot:
        assert " IN (" not in held[name], name
        assert f4.in_to_or(f4.or_to_in(held[name])) == held[name], name  # what the downgrade writes back converts again
    with engine_for(db_url).connect() as conn:
        try:
            conn.execute(text("INSERT INTO budget_entry (budget_line_id, case_id, kind, attempt, amount_fen) "
                              "VALUES (1, NULL, 'not-a-kind', 1, 1)"))  # fmt: skip
        except Exception as exc:
            assert "CHECK constraint failed" in str(exc)
        else:
            raise AssertionError("a value outside the vocabulary was stored")
        finally:
            conn.rollback()
