"""POST /api/v1/dry-runs over ASGI: department role only, inline body or a fund item's configuration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import mint
from cli.demo import NO_APPLICATION_CONFIG, NO_APPLICATION_ITEM, demo_enterprise_uscc, ensure_demo
from cli.generate import insert_enterprises
from db.migrate import upgrade
from db.models import Enterprise
from db.session import engine_for, transaction
from rules.amounts import compute_amount
from rules.conditions import evaluate
from settings import Settings
from tests.conftest import _drop_postgres_database, _fresh_postgres_database

URL = "/api/v1/dry-runs"
CONDITIONS = {
    "op": "all",
    "items": [
        {"field": "region_code", "op": "prefix", "value": "4205"},
        {"field": "tags", "op": "has_any_tags", "value": ["高新技术企业", "专精特新"]},
    ],
}
STANDARD = {"kind": "rate", "base": "tax_paid_fen", "rate": "0.05", "floor_fen": 100_000, "cap_fen": 5_000_000}


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("dry-run-api")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'api.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="dry-run-test-secret-" + "x" * 24)
    assert ensure_demo(settings)
    with transaction(url) as session:
        insert_enterprises(session=session, n=400, seed=3, progress=False)
    yield settings
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))  # no lifespan: no Temporal connection is needed


def auth(settings: Settings, role: str, subject: str = "YC-JXJ") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings.jwt_key(), role=role, subject=subject)}"}


def python_dry_run(settings: Settings, conditions: dict[str, Any], standard: dict[str, Any]) -> tuple[int, int]:
    with transaction(settings.db_url) as session:
        everyone = list(session.scalars(select(Enterprise)))
        matched = [e for e in everyone if evaluate(conditions, e).eligible]
        return len(matched), sum(compute_amount(standard, e).amount_fen for e in matched)


def test_inline_dry_run_matches_python(client: TestClient, settings: Settings) -> None:
    body = {"conditions": CONDITIONS, "standard": STANDARD, "budget_total_fen": 20_000_000}
    response = client.post(URL, json=body, headers=auth(settings, "department"))
    assert response.status_code == 200, response.text
    data = response.json()
    matched, total = python_dry_run(settings, CONDITIONS, STANDARD)
    assert (data["matched"], data["total_amount_fen"]) == (matched, total)
    assert matched > 10
    assert data["enterprises"] == 440  # 40 demo enterprises + 400 generated
    assert sum(g["matched"] for g in data["by_region"]) == sum(g["matched"] for g in data["by_size"]) == matched
    # by GB/T 4754-2017 section, named, counted as the Python evaluation counts them
    assert sum(g["matched"] for g in data["by_industry"]) == matched
    with transaction(settings.db_url) as session:
        sections = Counter(
            (e.industry_code or "")[:1] for e in session.scalars(select(Enterprise)) if evaluate(CONDITIONS, e).eligible
        )
    assert {g["key"]: g["matched"] for g in data["by_industry"]} == dict(sections)
    names = {g["key"]: g["label"] for g in data["by_industry"]}
    assert names.get("C", "制造业") == "制造业" and all(names.values())
    assert data["budget"]["order_text"].startswith("按成立日期从早到晚")
    assert data["budget"]["covered"] + data["budget"]["uncovered"] == matched
    assert data["fund_item_code"] is None


def test_fund_item_configuration_is_used(client: TestClient, settings: Settings) -> None:
    owner = auth(settings, "department", "YC-RSJ")
    response = client.post(URL, json={"fund_item_code": NO_APPLICATION_ITEM}, headers=owner)
    assert response.status_code == 200, response.text
    data = response.json()
    matched, total = python_dry_run(settings, NO_APPLICATION_CONFIG["conditions"], NO_APPLICATION_CONFIG["standard"])
    assert (data["matched"], data["total_amount_fen"]) == (matched, total)
    assert (data["fund_item_code"], data["version"], data["shortfall_policy"]) == (
        NO_APPLICATION_ITEM,
        1,
        "stop_in_order",
    )
    assert data["budget"]["budget_total_fen"] == NO_APPLICATION_CONFIG["budget"]["total_fen"]
    assert data["budget"]["order_by"] == NO_APPLICATION_CONFIG["no_application"]["shortfall"]["order_by"]
    assert data["budget"]["order_text"].startswith("按从业人数从大到小、成立日期从早到晚")

    # a what-if budget overrides the configuration's
    what_if = client.post(
        URL, json={"fund_item_code": NO_APPLICATION_ITEM, "budget_total_fen": 0}, headers=auth(settings, "admin")
    )
    assert what_if.status_code == 200
    assert what_if.json()["budget"]["budget_total_fen"] == 0
    assert what_if.json()["matched"] == matched

    # another department's item reads as unknown
    other = client.post(URL, json={"fund_item_code": NO_APPLICATION_ITEM}, headers=auth(settings, "department"))
    assert other.status_code == 404 and other.json()["error"]["errors"][0]["field"] == "fund_item_code"


def test_roles(client: TestClient, settings: Settings) -> None:
    body = {"conditions": CONDITIONS, "standard": STANDARD, "budget_total_fen": 1}
    assert client.post(URL, json=body).status_code == 401
    for role, subject in (("enterprise", demo_enterprise_uscc()), ("finance", "YC-CZJ")):
        response = client.post(URL, json=body, headers=auth(settings, role, subject))
        assert response.status_code == 403, role
        assert response.json()["error"]["code"] == "forbidden"
    assert client.post(URL, json=body, headers=auth(settings, "admin", "root")).status_code == 200


def test_errors_name_the_field(client: TestClient, settings: Settings) -> None:
    headers = auth(settings, "department")
    missing = client.post(URL, json={"conditions": CONDITIONS}, headers=headers)
    assert missing.status_code == 422
    assert "standard、budget_total_fen" in missing.json()["error"]["message"]

    unknown = client.post(URL, json={"fund_item_code": "NO-SUCH-ITEM"}, headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["errors"][0]["field"] == "fund_item_code"

    bad_field = {"conditions": {"field": "profit", "op": "ge", "value": 1}, "standard": STANDARD, "budget_total_fen": 1}
    response = client.post(URL, json=bad_field, headers=headers)
    assert response.status_code == 422
    assert "未知的条件字段 field='profit'" in response.json()["error"]["message"]

    bad_order = {**bad_field, "conditions": CONDITIONS, "order_by": [{"key": "name"}]}
    response = client.post(URL, json=bad_order, headers=headers)
    assert response.status_code == 422
    assert "order_by" in response.json()["error"]["message"]

    negative = client.post(URL, json={**bad_order, "order_by": None, "budget_total_fen": -1}, headers=headers)
    assert negative.status_code == 422
    assert negative.json()["error"]["errors"][0]["field"] == "budget_total_fen"


def test_openapi_shows_the_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][URL]["post"]
    assert "dry-runs 政策预匹配" in operation["tags"]
    body = schema["components"]["schemas"]["DryRunIn"]
    assert {"fund_item_code", "conditions", "standard", "budget_total_fen", "order_by"} <= set(body["properties"])
