"""Who may push replies from phones (上行短信): the providers, checked by the receipt token like delivery receipts,
so every caller of the standard cast gets through when no token is set, and nobody without it when one is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.auth import mint
from db.migrate import upgrade
from db.session import engine_for
from settings import Settings
from tests.api.scoping import CALLERS, Row, World, cases_of, check, ids_of

TABLE: list[Row] = [
    Row("POST", f"/api/v1/sms/uplink/{provider}", frozenset(CALLERS), body=[]) for provider in ("aliyun", "tencent")
]


RECEIPT = "uplink-receipt-secret"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("scoping-uplink")
    url = f"sqlite:///{folder / 'uplink.db'}"
    upgrade(url)
    yield Settings(
        data_dir=folder, database_url=url, jwt_secret="scoping-test-secret-" + "x" * 24, sms_receipt_token=RECEIPT
    )
    engine_for(url).dispose()


@pytest.fixture(scope="module")
def world(settings: Settings) -> World:
    key = settings.jwt_key()
    subjects = {"admin": ("admin", "ops"), "dept_a": ("department", "YC-JXJ"), "dept_b": ("department", "WH-KJJ"),
                "finance_yc": ("finance", "YC-CZJ"), "finance_wh": ("finance", "WH-CZJ"),
                "ent_a": ("enterprise", "91420500MA00000001"), "ent_b": ("enterprise", "91420100MA00000002"),
                "unknown": ("department", "NOPE")}  # fmt: skip
    return World(headers={c: {"Authorization": f"Bearer {mint(key, role=r, subject=s)}"} for c, (r, s) in subjects.items()})


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    # A carrier's callback carries the configured secret, whoever else's token rides along.
    return TestClient(create_app(settings), follow_redirects=False, headers={"X-Zhida-Receipt-Token": RECEIPT})


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:
    check(client, row, world, caller)


def test_with_a_receipt_token_only_the_provider_gets_through(settings: Settings) -> None:
    guarded = settings.model_copy(update={"sms_receipt_token": SecretStr("uplink-secret")})
    with TestClient(create_app(guarded)) as client:
        for provider in ("aliyun", "tencent"):
            assert client.post(f"/api/v1/sms/uplink/{provider}", json=[]).status_code == 401
            assert client.post(f"/api/v1/sms/uplink/{provider}?token=wrong", json=[]).status_code == 401
            assert client.post(f"/api/v1/sms/uplink/{provider}?token=uplink-secret", json=[]).status_code == 200
