"""Shared fixtures: every database test runs on SQLite and, when ZHIDA_TEST_POSTGRES_URL is set, PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db.migrate import upgrade
from db.session import engine_for

# The embedded-stack fixtures, shared by tests/e2e and tests/web (one Temporal dev server per session).
pytest_plugins = ["tests.stack"]

POSTGRES_URL = os.environ.get("ZHIDA_TEST_POSTGRES_URL", "")
# One keys folder for the whole run (payload codec, decision tokens): the session's Temporal clients, the workers and
# the stacks of different tests must read each other's payloads. Child processes inherit it.
os.environ.setdefault("ZHIDA_KEYS_DIR", tempfile.mkdtemp(prefix="zhida-test-keys-"))

# Fixtures that start a process or a server, and the mark every test using them (directly or through another
# fixture) gets, so `make test-fast` (-m "not e2e and not browser and not servers") can leave them out.
SLOW_FIXTURES = {
    "temporal_env": "e2e",  # the Temporal dev server (tests.stack: stack, bare_stack, worker processes)
    "ts_env": "e2e",  # the time-skipping test server (tests/workflows)
    "waves_env": "e2e",  # a time-skipping test server per test (tests/campaigns/test_campaign_waves.py)
    "browser_thread": "browser",  # chromium (tests/web)
    "treasury_url": "servers",  # the treasury stand-in on a loopback port (tests/gateways)
    "receiver": "servers",  # the callback receiver on a loopback port (tests/gateways)
    "fake": "servers",  # the fake SMS providers on a loopback port (tests/sms)
    "datashare": "servers",  # the data-sharing platform stand-in on a loopback port (tests/archive)
}
# Modules whose tests start loopback HTTP servers inline (not through a fixture).
SERVER_HELPERS = ("ServerThread", "serving", "FakeSmsServer")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests that start processes or servers (see SLOW_FIXTURES), whatever their folder; run the modules that
    declare `ONE_ENGINE` (a sentence saying why) on SQLite alone, and tests marked `postgresql_only` on PostgreSQL
    alone."""
    one_engine = [item for item in items if _engine_of(item) == "postgresql" and hasattr(getattr(item, "module", None), "ONE_ENGINE")]
    # What only PostgreSQL has (concurrent writers): the SQLite variant is left out, and without CI's PostgreSQL
    # nothing of it runs (CI sets ZHIDA_TEST_POSTGRES_URL, so there it always runs).
    one_engine += [item for item in items if item.get_closest_marker("postgresql_only") and _engine_of(item) == "sqlite"]
    if one_engine:
        config.hook.pytest_deselected(items=one_engine)
        items[:] = [item for item in items if item not in set(one_engine)]
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        marks = {mark for fixture, mark in SLOW_FIXTURES.items() if fixture in names}
        module = getattr(item, "module", None)
        if module is not None and any(hasattr(module, helper) for helper in SERVER_HELPERS):
            marks.add("servers")
        for mark in sorted(marks):
            item.add_marker(mark)
    _slowest_files_first(items)


# The slowest files, measured (pytest --durations), slowest first. pytest-xdist's loadfile hands files to the two
# processes in collection order, so a slow file collected last kept one process busy alone for a minute at the end;
# sent first, the many short files fill in around them. A stale entry costs nothing; a missing one only balance.
SLOWEST_FILES = (
    "tests/campaigns/test_campaign_waves.py",
    "tests/ops/test_soak.py",
    "tests/reconciliation/test_reconciliation_e2e.py",
    "tests/web/test_cockpit_page.py",
    "tests/e2e/test_worker_crash.py",
    "tests/api/test_scoping_items.py",
    "tests/api/test_scoping_cockpit.py",
    "tests/archive/test_import.py",
    "tests/campaigns/test_campaign_crash.py",
    "tests/cli/test_bench_notices.py",
    "tests/web/test_pages.py",
    "tests/web/test_workbench_items.py",
    "tests/api/test_fund_items.py",
    "tests/ops/test_fuzz.py",
    "tests/campaigns/test_campaign_stack.py",
    "tests/archive/test_reevaluation_stack.py",
    "tests/sms/test_pushes.py",
    "tests/web/test_workbench_review.py",
)


def _slowest_files_first(items: list[pytest.Item]) -> None:
    """Reorder whole files (a file's own order is kept: module-scoped stacks are built once per file)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    root = Path(__file__).resolve().parent.parent

    def key(indexed: tuple[int, pytest.Item]) -> tuple[int, int]:
        index, item = indexed
        try:
            name = Path(str(item.path)).resolve().relative_to(root).as_posix()
        except ValueError:
            name = str(item.path)
        return (rank.get(name, len(rank)), 0 if name in rank else index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def _engine_of(item: pytest.Item) -> str | None:
    """The backend a test item is parametrized with (BACKENDS), or None when it is not."""
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("db_url")


def _fresh_postgres_database() -> tuple[str, str]:
    """Create an empty database on the CI server; fails loudly (never skips) when it is unreachable."""
    admin_url = make_url(POSTGRES_URL)
    name = f"zhida_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - exercised only when PostgreSQL is down
        pytest.fail(f"ZHIDA_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}")
    finally:
        admin.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False), name


def _drop_postgres_database(name: str) -> None:
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database per backend for the whole session (migrations applied once)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'zhida.db'}"
        upgrade(url)
        yield url
        engine_for(url).dispose()
    else:
        url, name = _fresh_postgres_database()
        upgrade(url)
        yield url
        engine_for(url).dispose()
        _drop_postgres_database(name)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session inside a transaction that is rolled back at the end of the test."""
    engine = engine_for(db_url)
    with engine.connect() as conn:
        trans = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            yield s
        trans.rollback()


@pytest.fixture
def empty_db_url(db_url: str, tmp_path: os.PathLike) -> Iterator[str]:
    """An unmigrated database of the same backend as db_url, for migration tests."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/empty.db"
    else:
        url, name = _fresh_postgres_database()
        yield url
        engine_for(url).dispose()
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def module_db_url(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of db_url's backend for one module, for code that commits (activities, the API)."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'zhida.db'}"
        upgrade(url)
        yield url
        engine_for(url).dispose()
    else:
        url, name = _fresh_postgres_database()
        upgrade(url)
        yield url
        engine_for(url).dispose()
        _drop_postgres_database(name)
