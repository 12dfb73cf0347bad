"""Who may use the codec server of the Temporal Web UI (api/routers/codec.py): administrators only; the CORS
preflight answers everyone (it reveals nothing and carries no credentials)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from db.models import Base, Department
from db.session import engine_for, transaction
from settings import Settings
from tests.api.scoping import CALLERS, Row, World, cases_of, check, ids_of
from tests.factories import new_enterprise

EMPTY = {"payloads": []}
TABLE = [
    Row("POST", "/codec/decode", frozenset({"admin"}), body=EMPTY, denied=(403,)),
    Row("POST", "/codec/encode", frozenset({"admin"}), body=EMPTY, denied=(403,)),
    Row("OPTIONS", "/codec/{operation}", frozenset(CALLERS), fill={"operation": "op"}, ok=(204,), unknown=(204,),
        anonymous=(204,)),
]  # fmt: skip
SUBJECTS = {"admin": ("admin", "ops"), "dept_a": ("department", "YC-T-KEYS-A"),
            "dept_b": ("department", "WH-T-KEYS-B"), "finance_yc": ("finance", "YC-T-KEYS-CZ"),
            "finance_wh": ("finance", "WH-T-KEYS-CZ"), "unknown": ("department", "NOPE")}  # fmt: skip


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder = tmp_path_factory.mktemp("scoping-keys")
    url = f"sqlite:///{folder / 'keys.db'}"
    Base.metadata.create_all(engine_for(url))  # the tables suffice (migrating takes seconds)
    with transaction(url) as s:
        for caller, region, kind in (
            ("dept_a", "420500", "policy"),
            ("dept_b", "420100", "policy"),
            ("finance_yc", "420500", "finance"),
            ("finance_wh", "420100", "finance"),
        ):
            s.add(Department(code=SUBJECTS[caller][1], name=f"部门{caller}", region_code=region, kind=kind))
        for caller in ("ent_a", "ent_b"):
            SUBJECTS[caller] = ("enterprise", new_enterprise(s).uscc)
    yield Settings(data_dir=folder, database_url=url, jwt_secret="keys-scoping-secret-" + "x" * 24)
    engine_for(url).dispose()


@pytest.fixture(scope="module")
def world(settings: Settings) -> World:
    key = settings.jwt_key()
    headers = {c: {"Authorization": f"Bearer {mint(key, role=r, subject=s)}"} for c, (r, s) in SUBJECTS.items()}
    return World(headers=headers, secret=key, ids={"op": "decode"})


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:
    check(client, row, world, caller)
