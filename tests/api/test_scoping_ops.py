"""Who may read /metrics: the bearer of the configured metrics token only (no user token, whatever its role);
without a token configured only callers on this host (tests/ops/test_metrics.py). The row's callers carry user
tokens, so all of them are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from settings import Settings
from tests.api.scoping import CALLERS, Row, World, cases_of, check, ids_of

TABLE = [
    Row("GET", "/metrics", frozenset(), denied=(401,), unknown=(401,), anonymous=(401,),
        note="user tokens are not the metrics token"),
]  # fmt: skip
ROLES = {"admin": "admin", "dept_a": "department", "dept_b": "department", "finance_yc": "finance",
         "finance_wh": "finance", "ent_a": "enterprise", "ent_b": "enterprise", "unknown": "department"}  # fmt: skip


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder: Path = tmp_path_factory.mktemp("scoping-ops")
    # The refusal comes before any query: the database need not be migrated.
    return Settings(data_dir=folder, database_url=f"sqlite:///{folder / 'ops.db'}", metrics_token="m" * 40,
                    jwt_secret="ops-scoping-secret-" + "x" * 24)  # fmt: skip


@pytest.fixture
def world(settings: Settings) -> World:
    key = settings.jwt_key()
    headers = {c: {"Authorization": f"Bearer {mint(key, role=r, subject=c)}"} for c, r in ROLES.items()}
    assert set(headers) | {"anonymous"} == set(CALLERS)
    return World(headers=headers, secret=key)


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(settings: Settings, world: World, row: Row, caller: str) -> None:
    check(TestClient(create_app(settings), follow_redirects=False), row, world, caller)
