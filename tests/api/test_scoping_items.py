"""Who sees and changes what, for fund items, dry runs, the calendar, campaigns and reconciliation: a role × endpoint ×
owner table over every endpoint of those routers (API and pages).

The world: two policy departments each with their own items and campaign (经信局 YC-JXJ, 人社局 YC-RSJ), two
enterprises, the finance bureaus of 宜昌 (420500, the treasury's region) and 武汉 (420100), an unknown department
and an administrator. Outside the caller's scope a thing reads as unknown (404); a visible thing the caller may not
change is 403; a token for a department that does not exist is 401. Temporal is a stand-in that accepts every call,
so the table sees the scoping, not the workflows.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from api.routers.fund_items import listing_today
from cli.demo import DEMO_CONFIG, NO_APPLICATION_CONFIG, NO_APPLICATION_ITEM, add_listed_item, ensure_demo
from db.migrate import upgrade
from db.models import Case, Enterprise
from db.repositories import campaigns, fund_items, reconciliation
from db.session import engine_for, transaction
from schemas.campaigns import CampaignProgress
from schemas.fund_items import FundItemCreate
from schemas.principal import Principal
from services import fund_items as fund_item_service
from settings import Settings
from tests.api.scoping import app_routes, csrf_headers, route_of
from tests.conftest import _drop_postgres_database, _fresh_postgres_database

JXJ_DRAFT = "YC-T-SCOPE-JXJ"  # 经信局's own draft, for the writes
JXJ_FREE = "YC-T-SCOPE-JXJ-WG"  # 经信局's own no-application item, for its campaign
RSJ_ITEM = NO_APPLICATION_ITEM  # 人社局's (demo data)
OK = "ok"  # past the scope: success, or a conflict with the thing's state (409) that only a visible thing can have
PASSED = (200, 201, 202, 303, 409)
ROLE_OR_UNKNOWN = (401, 403)  # refused by role or as unknown: which comes first depends on the check order


class FakeHandle:
    async def execute_update(self, *_: Any, **__: Any) -> str:
        return "dismissed"

    async def signal(self, *_: Any, **__: Any) -> None:
        return None

    async def query(self, *_: Any, **__: Any) -> CampaignProgress:
        return CampaignProgress(campaign_id=0, phase="done")


class FakeTemporal:
    def get_workflow_handle(self, *_: Any, **__: Any) -> FakeHandle:
        return FakeHandle()

    async def start_workflow(self, *_: Any, **__: Any) -> None:
        return None


class World:
    settings: Settings
    ids: dict[str, Any]


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("scoping-items")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'api.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="scoping-items-secret-" + "x" * 24)
    assert ensure_demo(settings)
    ids: dict[str, Any] = {}
    with transaction(url) as s:
        fund_items.add_department(session=s, code="WH-CZJ", name="武汉市财政局", region_code="420100", kind="finance")
        draft = copy.deepcopy(DEMO_CONFIG) | {
            "name": "宜昌市经信局范围测试事项",
            "window": {"start": "2026-10-12", "end": "2026-12-31"},
        }
        fund_item_service.create_item(
            session=s,
            principal=Principal(role="department", subject="YC-JXJ"),
            body=FundItemCreate(code=JXJ_DRAFT, config=draft),
        )
        free = copy.deepcopy(NO_APPLICATION_CONFIG) | {"name": "宜昌市经信局免申即享范围测试"}
        jxj_item = add_listed_item(session=s, code=JXJ_FREE, department_code="YC-JXJ", config=free)
        rsj_item = fund_items.get_by_code(session=s, code=RSJ_ITEM)
        assert rsj_item is not None
        ids["jxj_campaign"] = campaigns.register_listing(session=s, item=jxj_item, version=1, actor="test").id
        rsj_campaign = campaigns.register_listing(session=s, item=rsj_item, version=1, actor="test")
        ids["rsj_campaign"] = rsj_campaign.id
        a, b = [e for e in s.query(Enterprise).order_by(Enterprise.id).limit(2)]
        ids["ent_a"], ids["ent_b"] = a.uscc, b.uscc
        for key, enterprise, status in (("consent_case", a, "consent_pending"), ("publicity_case", b, "publicity")):
            case = Case(
                fund_item_id=rsj_item.id,
                fund_item_version=1,
                enterprise_id=enterprise.id,
                mode="no_application",
                status=status,
                amount_fen=100_000,
                workflow_id=f"scoping-{uuid.uuid4().hex}",
                evidence={"values": {"employees": 10}},
                campaign_id=rsj_campaign.id,
                consent_status="pending" if status == "consent_pending" else None,
            )
            s.add(case)
            s.flush()
            ids[key] = case.id
        run = reconciliation.start_run(session=s, run_key="scoping", statement_date=date(2026, 9, 1), trigger="manual")
        reconciliation.replace_lines(session=s, run=run, lines=[])
        reconciliation.finish_run(session=s, run=run, totals={})
        ids["run"] = run.id
        ids["alert"] = reconciliation.raise_alert(
            session=s, kind="recon_missing_ours", ref="scoping:1", message="测试告警", recon_run_id=run.id
        ).id
    out = World()
    out.settings, out.ids = settings, ids
    yield out
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def client(world: World) -> TestClient:
    app = create_app(world.settings)
    app.dependency_overrides[listing_today] = lambda: date(2026, 9, 1)
    app.state.temporal = FakeTemporal()
    return TestClient(app)  # no lifespan: the campaign starter stays off


def principals(world: World) -> dict[str, tuple[str, str]]:
    return {
        "jxj": ("department", "YC-JXJ"),
        "rsj": ("department", "YC-RSJ"),
        "czj": ("finance", "YC-CZJ"),
        "whf": ("finance", "WH-CZJ"),
        "ent_a": ("enterprise", world.ids["ent_a"]),
        "ent_b": ("enterprise", world.ids["ent_b"]),
        "unknown": ("department", "XX-NONE"),
        "admin": ("admin", "ops"),
    }


NAMES = ("jxj", "rsj", "czj", "whf", "ent_a", "ent_b", "unknown", "admin")
STAFF = ("jxj", "rsj", "czj", "whf")
ENTERPRISES = ("ent_a", "ent_b")


def expect(default: Any = None, **cells: Any) -> dict[str, Any]:
    """Every principal's expected status: `default` for those not named."""
    return {n: cells.get(n, default) for n in NAMES}


def each(names: tuple[str, ...], status: Any) -> dict[str, Any]:
    return dict.fromkeys(names, status)


def new_item_body() -> dict[str, Any]:
    config = copy.deepcopy(DEMO_CONFIG) | {"window": {"start": "2026-10-12", "end": "2026-12-31"}}
    return {"code": f"YC-T-{uuid.uuid4().hex[:8].upper()}", "department_code": "YC-JXJ", "config": config}


def item_rows() -> list[dict[str, Any]]:
    """Fund items: 经信局's draft and 人社局's listed item; finance of 宜昌 reads both, of 武汉 neither."""
    config = copy.deepcopy(DEMO_CONFIG) | {
        "name": "宜昌市经信局范围测试事项",
        "window": {"start": "2026-10-12", "end": "2026-12-31"},
    }
    reads = expect(OK, rsj=404, whf=404, **each(ENTERPRISES, 403), unknown=401)
    rsj_reads = expect(OK, jxj=404, whf=404, **each(ENTERPRISES, 403), unknown=401)
    writes = expect(OK, rsj=404, czj=403, whf=403, **each(ENTERPRISES, 403), unknown=ROLE_OR_UNKNOWN)
    base = f"/api/v1/fund-items/{JXJ_DRAFT}"
    return [
        {"method": "POST", "path": "/api/v1/fund-items", "body": new_item_body,
         "expect": expect(OK, rsj=403, czj=403, whf=403, **each(ENTERPRISES, 403), unknown=ROLE_OR_UNKNOWN)},
        {"method": "GET", "path": "/api/v1/fund-items", "expect": expect(OK, **each(ENTERPRISES, 403), unknown=401)},
        {"method": "GET", "path": base, "expect": reads},
        {"method": "GET", "path": f"{base}/versions", "expect": reads},
        {"method": "GET", "path": f"{base}/versions/1", "expect": reads},
        {"method": "GET", "path": f"/api/v1/fund-items/{RSJ_ITEM}", "expect": rsj_reads},
        {"method": "GET", "path": f"/api/v1/fund-items/{RSJ_ITEM}/versions", "expect": rsj_reads},
        {"method": "PUT", "path": f"{base}/draft", "body": config, "expect": writes},
        {"method": "POST", "path": f"{base}/submit", "expect": writes},
        {"method": "POST", "path": f"{base}/list", "expect": writes},
        {"method": "POST", "path": f"{base}/close", "body": {"reason": "测试结束"}, "expect": writes},
        {"method": "POST", "path": f"{base}/delist", "body": {"reason": "测试下架"}, "expect": writes},
        {"method": "POST", "path": f"/api/v1/fund-items/{RSJ_ITEM}/close", "body": {"reason": "测试"},
         "expect": expect(403, jxj=404, rsj=OK, admin=OK, unknown=ROLE_OR_UNKNOWN)},
        {"method": "GET", "path": "/api/v1/condition-fields",
         "expect": expect(OK, **each(ENTERPRISES, 403), unknown=401)},
    ]  # fmt: skip


def dry_run_rows() -> list[dict[str, Any]]:
    inline = {"conditions": DEMO_CONFIG["conditions"], "standard": DEMO_CONFIG["standard"], "budget_total_fen": 1}
    refused = {**each(("czj", "whf"), 403), **each(ENTERPRISES, 403), "unknown": ROLE_OR_UNKNOWN}
    return [
        {"method": "POST", "path": "/api/v1/dry-runs", "body": {"fund_item_code": JXJ_DRAFT},
         "expect": expect(OK, rsj=404, **refused)},
        {"method": "POST", "path": "/api/v1/dry-runs", "body": {"fund_item_code": RSJ_ITEM},
         "expect": expect(OK, jxj=404, **refused)},
        {"method": "POST", "path": "/api/v1/dry-runs", "body": inline, "expect": expect(OK, **refused)},
    ]  # fmt: skip


def calendar_rows() -> list[dict[str, Any]]:
    reads = expect(OK, unknown=401)
    notice = "日期,类型,名称\n2027-01-01,放假,元旦\n"
    return [
        {"method": "GET", "path": "/api/v1/calendar/years", "expect": reads},
        {"method": "GET", "path": "/api/v1/calendar/years/2026", "expect": reads},
        {"method": "GET", "path": "/api/v1/calendar/deadline?start=2026-09-30&days=5", "expect": reads},
        {"method": "PUT", "path": "/api/v1/calendar/years/2027", "content": notice,
         "expect": expect(403, unknown=ROLE_OR_UNKNOWN, admin=OK)},
    ]  # fmt: skip


def campaign_rows(ids: dict[str, Any]) -> list[dict[str, Any]]:
    """人社局's campaign and its cases: ent_a's consent case, ent_b's case in publicity."""
    rsj, jxj = ids["rsj_campaign"], ids["jxj_campaign"]
    consent_case, publicity_case = ids["consent_case"], ids["publicity_case"]
    reads = expect(OK, jxj=404, whf=404, **each(ENTERPRISES, 403), unknown=401)
    jxj_reads = expect(OK, rsj=404, whf=404, **each(ENTERPRISES, 403), unknown=401)
    finance_only = expect(403, czj=OK, whf=404, unknown=ROLE_OR_UNKNOWN, admin=OK)
    owner_only = expect(403, rsj=OK, jxj=404, unknown=ROLE_OR_UNKNOWN, admin=OK)
    case_reads = expect(OK, jxj=404, whf=404, ent_b=404, unknown=401)
    ruling = {"upheld": False, "actor": "x", "reason": "核查不成立"}
    return [
        {"method": "GET", "path": "/api/v1/campaigns", "expect": expect(OK, **each(ENTERPRISES, 403), unknown=401)},
        {"method": "GET", "path": f"/api/v1/campaigns/{rsj}", "expect": reads},
        {"method": "GET", "path": f"/api/v1/campaigns/{rsj}?source=workflow", "expect": reads},
        {"method": "GET", "path": f"/api/v1/campaigns/{jxj}", "expect": jxj_reads},
        {"method": "POST", "path": f"/api/v1/campaigns/{rsj}/finance-decisions",
         "body": {"tranche": 1, "approve": True}, "expect": finance_only},
        {"method": "POST", "path": f"/api/v1/campaigns/{rsj}/collect", "expect": owner_only},
        {"method": "POST", "path": f"/api/v1/cases/{consent_case}/consent", "body": {"accept": True},
         "expect": expect(403, ent_a=OK, ent_b=404, unknown=ROLE_OR_UNKNOWN)},
        # The publicity list is public: any enterprise may object; staff within their scope.
        {"method": "POST", "path": f"/api/v1/cases/{publicity_case}/objections",
         "body": {"objector_name": "张三", "reason": "该企业不符合条件"},
         "expect": expect(OK, jxj=404, whf=404, unknown=401)},
        {"method": "POST", "path": f"/api/v1/cases/{publicity_case}/objection-ruling", "body": ruling,
         "expect": owner_only},
        {"method": "GET", "path": f"/api/v1/cases/{consent_case}/evidence", "expect": case_reads},
    ]  # fmt: skip


def reconciliation_rows(ids: dict[str, Any]) -> list[dict[str, Any]]:
    """The treasury is 宜昌's (420500): 武汉's finance bureau sees no run and no alert."""
    run, alert = ids["run"], ids["alert"]
    lists = expect(403, czj=OK, whf=OK, unknown=ROLE_OR_UNKNOWN, admin=OK)
    reads = expect(403, czj=OK, whf=404, unknown=ROLE_OR_UNKNOWN, admin=OK)
    return [
        {"method": "GET", "path": "/api/v1/reconciliation/runs", "expect": lists},
        {"method": "POST", "path": "/api/v1/reconciliation/runs", "body": {"statement_date": "2026-09-01"},
         "expect": expect(403, czj=OK, unknown=ROLE_OR_UNKNOWN, admin=OK)},
        {"method": "GET", "path": f"/api/v1/reconciliation/runs/{run}", "expect": reads},
        {"method": "GET", "path": f"/api/v1/reconciliation/runs/{run}/export.xlsx", "expect": reads},
        {"method": "GET", "path": "/api/v1/alerts", "expect": lists},
        {"method": "POST", "path": f"/api/v1/alerts/{alert}/close", "body": {"note": "已核实"}, "expect": reads},
    ]  # fmt: skip


def page_rows(ids: dict[str, Any]) -> list[dict[str, Any]]:
    rsj, consent_case, run = ids["rsj_campaign"], ids["consent_case"], ids["run"]
    return [
        {"method": "GET", "path": "/web/campaigns", "page": True,
         "expect": expect(OK, **each(ENTERPRISES, 403), unknown=401)},
        {"method": "GET", "path": f"/web/campaigns/{rsj}", "page": True,
         "expect": expect(OK, jxj=404, whf=404, **each(ENTERPRISES, 403), unknown=401)},
        {"method": "POST", "path": f"/web/campaigns/{rsj}/decision", "page": True,
         "form": {"tranche": "1", "approve": "yes"},
         "expect": expect(403, czj=OK, whf=404, unknown=401, admin=OK)},
        {"method": "GET", "path": f"/web/cases/{consent_case}/consent", "page": True,
         "expect": expect(OK, jxj=404, whf=404, ent_b=404, unknown=401)},
        # Only the enterprise answers its consent; staff are sent to sign in as an enterprise.
        {"method": "POST", "path": f"/web/cases/{consent_case}/consent", "page": True, "form": {"accept": "yes"},
         "expect": expect(303, ent_a=OK, ent_b=404, unknown=401)},
        {"method": "GET", "path": "/web/reconciliation", "page": True,
         "expect": expect(403, czj=OK, whf=OK, unknown=401, admin=OK)},
        {"method": "GET", "path": f"/web/reconciliation/{run}", "page": True,
         "expect": expect(403, czj=OK, whf=404, unknown=401, admin=OK)},
        {"method": "GET", "path": f"/web/reconciliation/{run}/export.xlsx", "page": True,
         "expect": expect(403, czj=OK, whf=404, unknown=401, admin=OK)},
    ]  # fmt: skip


def call(client: TestClient, world: World, row: dict[str, Any], who: str) -> int:
    role, subject = principals(world)[who]
    token = mint(world.settings.jwt_key(), role=role, subject=subject)
    headers = {"Cookie": f"zhida_token={token}"} if row.get("page") else {"Authorization": f"Bearer {token}"}
    if row.get("page") and row["method"] != "GET":
        headers |= csrf_headers(world.settings.jwt_key(), token)
    body = row.get("body")
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if body is not None:
        kwargs["json"] = body() if isinstance(body, Callable) else body
    if "content" in row:
        kwargs["content"] = row["content"].encode()
        headers["Content-Type"] = "text/csv"
    if "form" in row:
        kwargs["data"] = row["form"]
    return client.request(row["method"], row["path"], **kwargs).status_code


def matches(expected: Any, status: int) -> bool:
    if expected == OK:
        return status in PASSED
    if isinstance(expected, tuple):
        return status in expected
    return status == expected


def run_table(client: TestClient, world: World, rows: list[dict[str, Any]]) -> None:
    wrong = []
    for row in rows:
        for who in NAMES:
            status = call(client, world, row, who)
            if not matches(row["expect"][who], status):
                wrong.append(f"{row['method']} {row['path']} as {who}: {status}, expected {row['expect'][who]}")
    assert not wrong, "\n".join(wrong)


def test_fund_items(client: TestClient, world: World) -> None:
    run_table(client, world, item_rows())


def test_dry_runs(client: TestClient, world: World) -> None:
    run_table(client, world, dry_run_rows())


def test_calendar(client: TestClient, world: World) -> None:
    run_table(client, world, calendar_rows())


def test_campaigns(client: TestClient, world: World) -> None:
    run_table(client, world, campaign_rows(world.ids))


def test_reconciliation(client: TestClient, world: World) -> None:
    run_table(client, world, reconciliation_rows(world.ids))


def test_pages(client: TestClient, world: World) -> None:
    run_table(client, world, page_rows(world.ids))


# The routes this side's routers serve; tests/api/test_scoping.py proves every other route is in its table.
SIDE = ("/api/v1/fund-items", "/api/v1/dry-runs", "/api/v1/condition-fields", "/api/v1/calendar", "/api/v1/campaigns",
        "/web/campaigns", "/api/v1/reconciliation", "/web/reconciliation", "/api/v1/alerts")  # fmt: skip
CAMPAIGN_CASE = re.compile(r"^/(api/v1|web)/cases/\{case_id\}/(consent|objections|objection-ruling|evidence)$")


def side_routes(app) -> set[tuple[str, str]]:
    return {(m, p) for m, p in app_routes(app) if p.startswith(SIDE) or CAMPAIGN_CASE.match(p)}


def test_every_route_of_these_routers_is_in_a_table(world: World) -> None:
    routes = side_routes(create_app(world.settings))
    rows = [*item_rows(), *dry_run_rows(), *calendar_rows(), *campaign_rows(world.ids),
            *reconciliation_rows(world.ids), *page_rows(world.ids)]  # fmt: skip
    hit = {route_of(routes, row["method"], row["path"]) for row in rows}
    assert routes - hit == set(), sorted(routes - hit)


def test_lists_hold_only_what_the_caller_may_see(client: TestClient, world: World) -> None:
    def get(who: str, path: str) -> Any:
        role, subject = principals(world)[who]
        headers = {"Authorization": f"Bearer {mint(world.settings.jwt_key(), role=role, subject=subject)}"}
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (who, path, response.text)
        return response.json()

    items = {who: {i["department_code"] for i in get(who, "/api/v1/fund-items")} for who in STAFF}
    assert items["jxj"] == {"YC-JXJ"} and items["rsj"] == {"YC-RSJ"}
    assert items["czj"] >= {"YC-JXJ", "YC-RSJ"} and items["whf"] == set()
    assert {i["code"] for i in get("rsj", "/api/v1/fund-items?department=YC-JXJ")} == set()

    shown = {who: {c["campaign_id"] for c in get(who, "/api/v1/campaigns")} for who in STAFF}
    ids = world.ids
    assert ids["jxj_campaign"] in shown["jxj"] and ids["rsj_campaign"] not in shown["jxj"]
    assert ids["rsj_campaign"] in shown["rsj"] and ids["jxj_campaign"] not in shown["rsj"]
    assert {ids["jxj_campaign"], ids["rsj_campaign"]} <= shown["czj"] and shown["whf"] == set()

    assert [r["id"] for r in get("czj", "/api/v1/reconciliation/runs")] == [ids["run"]]
    assert get("whf", "/api/v1/reconciliation/runs") == [] and get("whf", "/api/v1/alerts?status=all") == []
    closed = get("czj", "/api/v1/alerts?status=all")
    assert [a["closed_by"] for a in closed if a["id"] == ids["alert"]] in ([None], ["finance:YC-CZJ"], ["admin:ops"])


def test_pages_show_labels_not_codes(client: TestClient, world: World) -> None:
    def page(who: str, path: str) -> str:
        role, subject = principals(world)[who]
        token = mint(world.settings.jwt_key(), role=role, subject=subject)
        response = client.get(path, headers={"Cookie": f"zhida_token={token}"})
        assert response.status_code == 200, (who, path, response.text)
        # Each sign-in has its own CSRF token: the rest of the page must not depend on it.
        return re.sub(r'(csrf_token" value="|X-CSRF-Token": ")[0-9a-f]+', r"\1…", response.text)

    ids = world.ids
    campaign = page("czj", f"/web/campaigns/{ids['rsj_campaign']}")
    assert "上架比对" in campaign and "待企业确认" in campaign
    listing = page("rsj", "/web/campaigns")
    consent = page("ent_a", f"/web/cases/{ids['consent_case']}/consent")
    # The form shows until the enterprise answers (the table's consent rows may have answered already).
    assert "待企业确认" in consent and ("确认兑付" in consent or "已无需操作" in consent)
    recon = page("czj", "/web/reconciliation")
    assert "手工" in recon
    run = page("czj", f"/web/reconciliation/{ids['run']}")
    for text in (campaign, listing, consent, recon, run):
        visible = re.sub(r"<[^>]+>", " ", text)  # class names may carry codes; what users read may not
        for code in ("consent_pending", "publicity", "listing", "recon_missing_ours", "manual", "pending", "元 元"):
            assert code not in visible, code
    # The labels do not depend on which page was opened first.
    assert page("czj", f"/web/campaigns/{ids['rsj_campaign']}") == campaign
