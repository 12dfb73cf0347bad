"""Who may use the finance cockpit: finance bureaus (each sees its own region) and administrators; departments and
enterprises are refused. The reconciliation alerts are those of the deployment's treasury (宜昌 420500), so 武汉's
finance bureau cannot close one (it reads as unknown)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from settings import Settings
from tests.api import cockpit_world
from tests.api.scoping import Row, World, cases_of, check, ids_of
from tests.api.test_scoping import FakeTemporal

FINANCE = frozenset({"admin", "finance_yc", "finance_wh"})
PAGE = {"auth": "cookie", "anonymous": (303,), "denied": (403,)}

TABLE: list[Row] = [
    Row("GET", "/web/cockpit", FINANCE, **PAGE),
    Row("GET", "/web/cockpit/cases", FINANCE, query={"status": "paid"}, **PAGE),
    Row("GET", "/web/cockpit/performance", FINANCE, **PAGE),
    Row("GET", "/api/v1/cockpit/exports/{table}", FINANCE, fill={"table": "table"}, query={"format": "csv"},
        denied=(403,)),
    Row("GET", "/web/cockpit/exports/{table}", FINANCE, fill={"table": "table"}, query={"format": "csv"}, **PAGE),
    Row("POST", "/web/cockpit/alerts/{alert_id}/close", frozenset({"admin", "finance_yc"}), fill={"alert_id": "alert"},
        form={"note": "已与国库核实，系国库重复记账"}, ok=(303,), auth="cookie", anonymous=(303,)),
    Row("GET", "/web/cockpit/payouts", FINANCE, **PAGE),
    # No file: the caller in scope is told to choose one (422); the others never get that far.
    Row("POST", "/web/cockpit/payouts", FINANCE, ok=(422,), form={"x": "1"}, **PAGE),
    # Decisions reach the case's workflow, which the stand-in Temporal does not know: in scope answers 409.
    Row("POST", "/web/cockpit/cases/{case_id}/finance-decision", frozenset({"admin", "finance_yc"}),
        fill={"case_id": "c7"}, form={"stage_key": "finance", "decision": "approve", "comment": "同意"},
        ok=(409, 422), auth="cookie", anonymous=(303,)),
    Row("POST", "/web/cockpit/cases/{case_id}/budget-decision", frozenset({"admin", "finance_yc"}),
        fill={"case_id": "c4"}, form={"approve": "yes", "comment": "安排2027年预算"}, ok=(409,), auth="cookie",
        anonymous=(303,)),
]


@pytest.fixture(scope="module")
def built(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, World]]:
    for settings, world, _ in cockpit_world.build(db_url, tmp_path_factory.mktemp("cockpit-scoping")):
        world.ids["table"] = "fund_item"
        yield settings, world


@pytest.fixture(scope="module")
def client(built: tuple[Settings, World]) -> TestClient:
    app = create_app(built[0])
    app.state.temporal = FakeTemporal()
    return TestClient(app, follow_redirects=False)


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, built: tuple[Settings, World], row: Row, caller: str) -> None:
    check(client, row, built[1], caller)


def test_each_finance_bureau_sees_only_its_region(client: TestClient, built: tuple[Settings, World]) -> None:
    world = built[1]

    def rows(caller: str) -> list[str]:
        client.cookies.clear()
        r = client.get("/api/v1/cockpit/exports/cases", params={"format": "csv"}, headers=world.headers[caller])
        assert r.status_code == 200, r.text
        return r.content.decode("utf-8-sig").splitlines()[1:]

    yc, wh = rows("finance_yc"), rows("finance_wh")
    assert len(yc) == 9 and len(wh) == 1  # c1–c8 and the rejected r1 (tests/api/cockpit_world.py)
    assert all("武汉市中小企业奖补" not in line for line in yc) and "武汉市中小企业奖补" in wh[0]
