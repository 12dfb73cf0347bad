"""Who may sign out, use the development sign-in and check the audit chain: the rows for api/routers/sessions.py,
api/routers/audit.py and the sign-in pages. Signing out revokes the caller's token, so every call gets freshly minted tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from db.migrate import upgrade
from db.models import Department
from db.session import engine_for, transaction
from settings import Settings
from tests.api.scoping import CALLERS, EVERYONE_KNOWN, Row, World, cases_of, check, ids_of
from tests.factories import new_enterprise

TABLE = [
    Row("GET", "/api/v1/audit/verify", frozenset({"admin"}), denied=(403,)),
    Row("POST", "/api/v1/sessions/logout", EVERYONE_KNOWN, ok=(204,)),
    # Signing out needs no valid session (it only ends one); the CSRF token and Origin check still apply.
    Row("POST", "/web/logout", frozenset(CALLERS), auth="cookie", ok=(303,)),
    # The development sign-in is off unless ZHIDA_DEV_SIGN_IN is set: refused to everyone here.
    Row("POST", "/web/dev-login", frozenset(), auth="cookie", form={"identity": "admin|admin"}, denied=(403,),
        unknown=(403,), anonymous=(403,)),
]  # fmt: skip
SUBJECTS = {"admin": ("admin", "ops"), "dept_a": ("department", "YC-T-TRUST-A"),
            "dept_b": ("department", "WH-T-TRUST-B"), "finance_yc": ("finance", "YC-T-TRUST-CZ"),
            "finance_wh": ("finance", "WH-T-TRUST-CZ"), "unknown": ("department", "NOPE")}  # fmt: skip


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder = tmp_path_factory.mktemp("scoping-trust")
    url = f"sqlite:///{folder / 'trust.db'}"
    upgrade(url)
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
    yield Settings(data_dir=folder, database_url=url, jwt_secret="trust-scoping-secret-" + "x" * 24)
    engine_for(url).dispose()


@pytest.fixture
def world(settings: Settings) -> World:
    key = settings.jwt_key()
    headers = {c: {"Authorization": f"Bearer {mint(key, role=r, subject=s)}"} for c, (r, s) in SUBJECTS.items()}
    return World(headers=headers, secret=key)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:
    check(client, row, world, caller)
