"""A small world for the access tests: one department, one enterprise, an app on a fresh database (no Temporal)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from db.migrate import upgrade
from db.models import Department
from db.session import engine_for, transaction
from settings import Settings
from tests.factories import new_enterprise

SECRET = "security-test-secret-" + "x" * 24
DEPT = "YC-SEC-JXJ"


@dataclass
class World:
    settings: Settings
    uscc: str

    def token(self, role: str = "admin", subject: str = "ops", **kw) -> str:
        return mint(self.settings.jwt_key(), role=role, subject=subject, **kw)

    def bearer(self, role: str = "admin", subject: str = "ops") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject)}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("security")
    url = f"sqlite:///{folder / 'security.db'}"
    upgrade(url)
    with transaction(url) as s:
        s.add(Department(code=DEPT, name="宜昌市经济和信息化局", region_code="420500"))
        uscc = new_enterprise(s).uscc
    settings = Settings(data_dir=folder, database_url=url, jwt_secret=SECRET, sms_receipt_token="receipt-secret")
    yield World(settings=settings, uscc=uscc)
    engine_for(url).dispose()


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)  # no lifespan: no Temporal


@pytest.fixture
def client(world: World) -> TestClient:
    return client_for(world.settings)
