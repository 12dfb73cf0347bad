"""The fund item API over ASGI (TestClient): roles, lifecycle, Chinese validation errors, OpenAPI, demo data.

The module gets its own migrated database per backend with the demo data loaded, since the API commits.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from api.routers.fund_items import listing_today
from cli.demo import (
    DEMO_ITEM,
    NO_APPLICATION_ITEM,
    REVIEW_CONFIG,
    REVIEW_ITEM,
    demo_enterprise_uscc,
    ensure_demo,
)
from db.migrate import upgrade
from db.repositories import enterprises, fund_items
from db.session import engine_for, transaction
from rules.amounts import compute_amount
from rules.conditions import evaluate
from settings import Settings
from tests.conftest import _drop_postgres_database, _fresh_postgres_database

API = "/api/v1/fund-items"


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("fund-items-api")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'api.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="fund-items-test-secret-" + "x" * 24)
    assert ensure_demo(settings)
    yield settings
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


class Today:
    value = date(2026, 9, 1)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.dependency_overrides[listing_today] = lambda: Today.value
    return TestClient(app)  # no lifespan: no Temporal connection is needed here


@pytest.fixture
def today() -> Iterator[type[Today]]:
    yield Today
    Today.value = date(2026, 9, 1)


def auth(settings: Settings, role: str, subject: str = "YC-JXJ") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings.jwt_key(), role=role, subject=subject)}"}


def review_config(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(REVIEW_CONFIG)
    data["window"] = {"start": "2026-10-12", "end": "2026-12-31"}
    data.update(changes)
    return data


def new_code() -> str:
    return f"YC-T-{uuid.uuid4().hex[:8].upper()}"


def errors_by_field(response: Any) -> dict[str, dict[str, Any]]:
    body = response.json()["error"]
    return {e["field"]: e for e in body["errors"]}


# ---------------------------------------------------------------- demo data


def test_demo_has_one_listed_item_of_each_mode_with_budgets(client: TestClient, settings: Settings) -> None:
    items = {i["code"]: i for i in client.get(API, headers=auth(settings, "finance", "YC-CZJ")).json()}
    demo = {code: items[code] for code in (DEMO_ITEM, REVIEW_ITEM, NO_APPLICATION_ITEM)}
    assert {code: (i["mode"], i["status"], i["listed_version"]) for code, i in demo.items()} == {
        DEMO_ITEM: ("instant", "listed", 1),
        REVIEW_ITEM: ("review", "listed", 1),
        NO_APPLICATION_ITEM: ("no_application", "listed", 1),
    }
    instant = client.get(f"{API}/{DEMO_ITEM}", headers=auth(settings, "finance", "YC-CZJ")).json()
    assert instant["version"]["config"]["standard"] == {"kind": "fixed", "amount_fen": 10_000_000}
    assert instant["version"]["frozen"] and instant["version"]["finance_auto_approval"]
    assert [(b["source"], b["total_fen"]) for b in instant["budget_lines"]] == [("市级财政", 500_000_000)]

    review = client.get(f"{API}/{REVIEW_ITEM}", headers=auth(settings, "department")).json()
    stages = review["version"]["config"]["approval"]["stages"]
    assert [(s["name"], s["departments"], s["joint_mode"]) for s in stages] == [
        ("初审", ["YC-JXJ"], "all"),
        ("联合审核", ["YC-CZJ", "YC-FGW"], "all"),
    ]
    assert review["version"]["config"]["approval"]["publicity"]["working_days"] == 5
    assert not review["version"]["finance_auto_approval"]  # amounts set by reviewers
    assert [(b["source"], b["total_fen"]) for b in review["budget_lines"]] == [
        ("市级财政", 1_200_000_000),
        ("区级财政", 800_000_000),
    ]
    stable = client.get(f"{API}/{NO_APPLICATION_ITEM}", headers=auth(settings, "department", "YC-RSJ")).json()
    assert stable["version"]["config"]["no_application"]["shortfall"]["policy"] == "stop_in_order"
    assert sum(b["total_fen"] for b in stable["budget_lines"]) == 1_000_000_000

    # The instant item still pays the demo enterprise 100,000 yuan, from the stored version.
    with transaction(settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=DEMO_ITEM)
        config = fund_items.version(session=session, fund_item_id=item.id, number=1).config
        ent = enterprises.get_by_uscc(session=session, uscc=demo_enterprise_uscc())
        assert evaluate(config["conditions"], ent).eligible
        assert compute_amount(config["standard"], ent).amount_fen == 10_000_000


# ---------------------------------------------------------------- lifecycle over HTTP


def test_lifecycle_over_http(client: TestClient, settings: Settings, today: type[Today]) -> None:
    dept = auth(settings, "department")
    code = new_code()
    r = client.post(API, json={"code": code, "config": review_config()}, headers=dept)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["current_version"], r.json()["department_code"]) == ("draft", 1, "YC-JXJ")
    assert r.json()["policy_doc_number"] == "宜府办发〔2026〕9号"  # the demo's policy, found by its 文号

    r = client.put(f"{API}/{code}/draft", json=review_config(name="宜昌市2026年度技术改造补贴（第二批）"), headers=dept)
    assert r.status_code == 200 and r.json()["current_version"] == 1 and r.json()["name"].endswith("（第二批）")

    r = client.post(f"{API}/{code}/submit", headers=dept)
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert r.json()["listing"]["latest_listing_date"] == "2026-09-29"

    today.value = date(2026, 9, 29)
    r = client.post(f"{API}/{code}/list", headers=dept)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["listed_version"]) == ("listed", 1)
    assert r.json()["listing"]["ok"] and not r.json()["listing"]["provisional"]

    r = client.put(f"{API}/{code}/draft", json=review_config(guide={**REVIEW_CONFIG["guide"], "notes": "新增注意事项"}),
                   headers=dept)  # fmt: skip
    assert (r.json()["current_version"], r.json()["listed_version"], r.json()["pending_version"]) == (2, 1, 2)
    versions = client.get(f"{API}/{code}/versions", headers=auth(settings, "finance", "YC-CZJ")).json()
    assert [(v["version"], v["frozen"], v["listed"]) for v in versions] == [(1, True, True), (2, False, False)]
    v1 = client.get(f"{API}/{code}/versions/1", headers=dept).json()
    v2 = client.get(f"{API}/{code}/versions/2", headers=dept).json()
    assert v1["config"]["guide"]["notes"] != "新增注意事项" and v2["config"]["guide"]["notes"] == "新增注意事项"

    today.value = date(2026, 10, 20)
    r = client.post(f"{API}/{code}/list", headers=dept)
    assert r.status_code == 200 and r.json()["listed_version"] == 2 and r.json()["version"]["frozen"]

    r = client.post(f"{API}/{code}/delist", json={"reason": "资金已拨付完毕"}, headers=dept)
    assert r.status_code == 200 and r.json()["status"] == "delisted"
    listed = client.get(API, params={"status": "delisted", "department": "YC-JXJ"}, headers=dept).json()
    assert code in [i["code"] for i in listed]


def test_listing_too_late_is_a_409_naming_the_earliest_start(
    client: TestClient, settings: Settings, today: type[Today]
) -> None:
    dept = auth(settings, "department")
    code = new_code()
    assert client.post(API, json={"code": code, "config": review_config()}, headers=dept).status_code == 201
    today.value = date(2026, 9, 30)
    assert client.post(f"{API}/{code}/submit", headers=dept).status_code == 200
    r = client.post(f"{API}/{code}/list", headers=dept)
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "conflict" and error["errors"][0]["field"] == "config.window.start"
    assert "最迟上架日为 2026-09-29" in error["message"] and "最早可设为 2026-10-13" in error["message"]
    assert client.get(f"{API}/{code}", headers=dept).json()["status"] == "submitted"


def test_illegal_transition_is_a_409(client: TestClient, settings: Settings) -> None:
    dept = auth(settings, "department")
    code = new_code()
    client.post(API, json={"code": code, "config": review_config()}, headers=dept)
    r = client.post(f"{API}/{code}/list", headers=dept)
    assert r.status_code == 409 and r.json()["error"]["errors"] == [
        {"field": "status", "message": f"资金事项 {code} 还是草稿：请先提交（submit）再上架"}
    ]
    r = client.post(f"{API}/{code}/delist", json={"reason": "测试"}, headers=dept)
    assert r.status_code == 409
    r = client.post(API, json={"code": code, "config": review_config()}, headers=dept)
    assert r.status_code == 409 and r.json()["error"]["errors"][0]["field"] == "code"


# ---------------------------------------------------------------- validation errors


def test_validation_errors_name_field_and_rule_in_chinese(client: TestClient, settings: Settings) -> None:
    dept = auth(settings, "department")
    bad = review_config(mode="instant", window={"start": "2026-12-01", "end": "2026-11-01"})
    r = client.post(API, json={"code": new_code(), "config": bad}, headers=dept)
    assert r.status_code == 422
    errors = errors_by_field(r)
    assert errors["config.window.end"]["rule"] == "window_order"
    assert "截止日不得早于起始日" in errors["config.window.end"]["message"]

    fixed_window = review_config(mode="instant")
    r = client.post(API, json={"code": new_code(), "config": fixed_window}, headers=dept)
    errors = errors_by_field(r)
    assert errors["config.approval.stages"]["rule"] == "instant_no_stages"
    assert errors["config.approval.stages"]["message"].startswith("即申即享事项不设部门审核环节")
    assert errors["config.standard"]["rule"] == "standard_not_quantified"

    no_stages = review_config()
    no_stages["approval"] = {**no_stages["approval"], "stages": []}
    no_stages["budget"] = {**no_stages["budget"], "sources": [{"name": "市级财政", "share_bp": 6000}]}
    errors = errors_by_field(client.put(f"{API}/{REVIEW_ITEM}/draft", json=no_stages, headers=dept))
    assert errors["budget.sources"]["rule"] == "shares_sum" and "10000（100%）" in errors["budget.sources"]["message"]

    incomplete = review_config()
    del incomplete["guide"]
    incomplete["colour"] = "red"
    r = client.post(API, json={"code": "bad code", "config": incomplete}, headers=dept)
    errors = errors_by_field(r)
    assert errors["config.guide"]["message"] == "申报指南（config.guide）：缺少必填项（规则：missing）"
    assert errors["config.colour"]["rule"] == "extra_forbidden"
    assert errors["code"]["message"].startswith("事项编码（code）：格式不正确")
    assert "请求参数有误" in r.json()["error"]["message"]

    unknown = review_config()
    unknown["approval"] = copy.deepcopy(REVIEW_CONFIG["approval"])
    unknown["approval"]["stages"][1]["departments"] = ["YC-CZJ", "YC-XXX"]
    r = client.post(API, json={"code": new_code(), "config": unknown}, headers=dept)
    assert r.status_code == 422
    assert errors_by_field(r) == {
        "config.approval.stages.1.departments.1": {
            "field": "config.approval.stages.1.departments.1",
            "message": "配置中有未登记的部门：config.approval.stages.1.departments.1：部门编码“YC-XXX”未登记",
        }
    }


# ---------------------------------------------------------------- roles


def test_roles(client: TestClient, settings: Settings) -> None:
    body = {"code": new_code(), "config": review_config()}
    assert client.get(API).status_code == 401
    assert client.get(API, headers=auth(settings, "enterprise", demo_enterprise_uscc())).status_code == 403
    assert client.get(API, headers=auth(settings, "finance", "YC-CZJ")).status_code == 200
    assert client.post(API, json=body, headers=auth(settings, "finance", "YC-CZJ")).status_code == 403
    r = client.post(
        f"{API}/{REVIEW_ITEM}/delist", json={"reason": "测试下架"}, headers=auth(settings, "department", "YC-RSJ")
    )
    assert r.status_code == 404  # another department's item reads as unknown: no probing
    assert client.get(API, headers=auth(settings, "department", "YC-NONE")).status_code == 401
    r = client.post(API, json=body, headers=auth(settings, "admin", "ops"))
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["field"] == "department_code"
    r = client.post(API, json={**body, "department_code": "YC-JXJ"}, headers=auth(settings, "admin", "ops"))
    assert r.status_code == 201 and r.json()["department_name"] == "宜昌市经济和信息化局"
    assert client.get(f"{API}/NOPE-1", headers=auth(settings, "department")).status_code == 404
    assert client.get(f"{API}/{DEMO_ITEM}/versions/7", headers=auth(settings, "department")).status_code == 404


# ---------------------------------------------------------------- catalogue and OpenAPI


def test_condition_field_catalogue(client: TestClient, settings: Settings) -> None:
    fields = {f["name"]: f for f in client.get("/api/v1/condition-fields", headers=auth(settings, "department")).json()}
    assert fields["employees"]["label"] == "从业人数" and fields["employees"]["unit"] == "人"
    assert {o["op"] for o in fields["tags"]["operators"]} == {"has_tag", "has_any_tags", "has_all_tags"}
    assert [c["value"] for c in fields["credit_status"]["choices"]] == ["good", "warning", "dishonest"]


def test_openapi_shows_the_condition_tree_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    config = schemas.get("FundItemConfig-Input") or schemas["FundItemConfig"]
    conditions = config["properties"]["conditions"]
    assert {ref["$ref"].rsplit("/", 1)[-1] for ref in conditions["oneOf"]} >= {"Leaf"}
    assert conditions["examples"][0]["op"] == "all"
    assert schemas["Leaf"]["examples"] and "op" in schemas["Leaf"]["properties"]
    create = spec["paths"][API]["post"]["requestBody"]["content"]["application/json"]
    assert set(create["examples"]) == {"instant", "review", "no_application"}
    draft = spec["paths"][f"{API}/{{code}}/draft"]["put"]["requestBody"]["content"]["application/json"]
    assert draft["examples"]["review"]["value"]["approval"]["stages"][1]["departments"] == ["YC-CZJ", "YC-FGW"]
    assert "/api/v1/condition-fields" in spec["paths"]
