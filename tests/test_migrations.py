"""Migrations and models agree, and upgrade → downgrade → upgrade works, on every backend."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
