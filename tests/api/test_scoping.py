"""Who may call which case-side endpoint, and on whose data: role × endpoint × owner, for every route of the
applications, reviews, enterprises, notices, SMS, treasury, web and health routers (tests/api/scoping.py explains the
table format; tests/api/test_scoping_items.py holds the fund-item side).

The cast: two policy departments (SC-A in 宜昌 owns item A, SC-B in 武汉 owns item B and has asked SC-A to review one
of its cases, 联审), finance bureaus of 宜昌 (420500) and 武汉 (420100), two enterprises, an unknown department and
nobody. Temporal is a stand-in that knows no workflow, so an action that passes the scope check answers 409 (the
workflow is not running) and nothing changes.
"""

from __future__ import annotations

import dataclasses
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.auth import mint
from db.migrate import upgrade
from db.models import ArchiveChange, Case, CaseTask, Department, Enterprise, FundItem, Notice, Policy
from db.repositories import cases
from db.session import engine_for, transaction
from schemas import uscc as uscc_rules
from schemas.vocabulary import EventKind
from settings import Settings
from tests.api.scoping import (
    CALLERS,
    EVERYONE_KNOWN,
    STAFF,
    Row,
    World,
    app_routes,
    cases_of,
    check,
    covered_routes,
    ids_of,
    tables,
)
from tests.api.test_scoping_items import side_routes
from tests.conftest import _drop_postgres_database, _fresh_postgres_database

DEPT_A, DEPT_B, FIN_YC, FIN_WH = "SC-A", "SC-B", "SC-CZ-YC", "SC-CZ-WH"
ADMIN = frozenset({"admin"})
OWNER_A = frozenset({"admin", "dept_a", "finance_yc"})  # item A's department and its region's finance
SEES_A = OWNER_A | {"ent_a"}
NOT_B = EVERYONE_KNOWN - {"ent_b"}  # anyone known but the other enterprise
OBJECTOR = {"name": "张三", "id_number": "11010519491231002X", "evidence": "设备发票与实际不符"}
ACCOUNT = {"acct_no": "6222020200112233", "acct_name": "某公司", "bank_name": "工商银行", "bank_code": "102526000012"}


class _NoWorkflow:
    async def execute_update(self, *args: Any, **kwargs: Any) -> Any:
        raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")

    query = signal = execute_update


class _Health:
    async def check_health(self, *args: Any, **kwargs: Any) -> bool:
        raise RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")


class FakeTemporal:
    """Knows no workflow: starts are accepted, updates, queries and signals find nothing."""

    service_client = _Health()

    def get_workflow_handle(self, workflow_id: str) -> _NoWorkflow:
        return _NoWorkflow()

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        return None


def _decision(world: World, caller: str) -> dict:
    body = {"stage_key": "first_review", "decision": "approve"}
    return body | {"department": DEPT_A} if caller == "admin" else body


def _registration(world: World, caller: str) -> dict:
    """An enterprise registers itself (already registered: 409, in scope); an administrator registers a new one."""
    uscc = uscc_rules.generate(random.Random(), "420500") if caller == "admin" else world.ids["uscc_a"]
    return {"uscc": uscc, "name": "宜昌新登记科技有限公司", "region_code": "420500"}


CASE_A = {"case_id": "case_a"}
TABLE: list[Row] = [
    # applications and the case view
    Row("POST", "/api/v1/applications", frozenset({"admin", "ent_a"}), ok=(200, 201),
        body=lambda w, c: {"fund_item_code": w.ids["apply_code"], "uscc": w.ids["uscc_a"]}),
    Row("GET", "/api/v1/cases/{case_id}", SEES_A, fill=CASE_A),
    Row("GET", "/api/v1/cases/{case_id}", frozenset({"admin", "dept_a", "dept_b", "finance_wh", "ent_a"}),
        fill={"case_id": "case_joint"}, note="联审: SC-A reviews a case of SC-B's item"),
    Row("GET", "/api/v1/cases/{case_id}/progress", SEES_A, fill=CASE_A, ok=(409,)),
    # review work
    Row("GET", "/api/v1/tasks", STAFF),
    Row("POST", "/api/v1/cases/{case_id}/decisions", OWNER_A, fill=CASE_A, body=_decision, ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/decisions", frozenset({"admin", "dept_a", "dept_b", "finance_wh"}),
        fill={"case_id": "case_joint"}, body=_decision, ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/supplement", frozenset({"admin", "ent_a"}), fill=CASE_A, body={}, ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/withdraw", frozenset({"admin", "ent_a"}), fill=CASE_A, body={}, ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/revoke", OWNER_A, fill=CASE_A, body={"reason": "材料不实"}, ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/review-objections", EVERYONE_KNOWN, fill=CASE_A, body=OBJECTOR, ok=(409,),
        note="publicity is public: anyone signed in may object (409: case A is not in publicity)"),
    Row("POST", "/api/v1/cases/{case_id}/review-objections/{objection_id}/ruling", OWNER_A,
        fill={"case_id": "case_a", "objection_id": "objection"}, body={"uphold": False}, ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/account", frozenset({"admin", "ent_a"}), fill=CASE_A, body=ACCOUNT,
        ok=(409,)),
    Row("POST", "/api/v1/cases/{case_id}/budget-decision", frozenset({"admin", "finance_yc"}), fill=CASE_A,
        body={"approve": True}, ok=(409,)),
    # enterprises
    Row("POST", "/api/v1/enterprises", frozenset({"admin", "ent_a"}), body=_registration, ok=(201, 409)),
    Row("GET", "/api/v1/enterprises/{uscc}/notices", NOT_B, fill={"uscc": "uscc_a"}),
    Row("GET", "/api/v1/enterprises/{uscc}/cases", NOT_B, fill={"uscc": "uscc_a"}),
    Row("PATCH", "/api/v1/enterprises/{uscc}/archive", ADMIN, fill={"uscc": "uscc_b"}, body={"employees": 120},
        query={"source": "social"}, note="archive data belongs to the administrators, for the field's owning source"),
    # notices and pushes
    Row("GET", "/api/v1/enterprises/{uscc}/push-preference", NOT_B, fill={"uscc": "uscc_a"}),
    Row("PUT", "/api/v1/enterprises/{uscc}/push-preference", frozenset({"admin", "ent_a"}), fill={"uscc": "uscc_a"},
        body={"opt_out": False}),
    Row("GET", "/api/v1/enterprises/{uscc}/notice-list", NOT_B, fill={"uscc": "uscc_a"}),
    Row("GET", "/api/v1/pushes", frozenset({"admin", "finance_yc", "finance_wh"}),
        note="a department asks per fund item"),
    Row("GET", "/api/v1/pushes", OWNER_A, query={"fund_item_id": "{item_a}"}),
    Row("POST", "/api/v1/pushes/listed/{fund_item_id}", OWNER_A, fill={"fund_item_id": "item_a"}, ok=(202,)),
    # SMS: receipts are checked by the configured receipt secret (none in this test: all refused), statistics by scope
    *(Row("POST", f"/api/v1/sms/receipts/{p}", frozenset(), body=[], denied=(401,)) for p in ("aliyun", "tencent",
                                                                                              "http")),
    Row("GET", "/api/v1/sms/stats", STAFF),
    Row("GET", "/api/v1/sms/stats/{fund_item_id}/failures", OWNER_A, fill={"fund_item_id": "item_a"}),
    # the treasury signs its callbacks: no token of ours gets in
    Row("POST", "/api/v1/treasury/callbacks", frozenset(), body={}, denied=(401,)),
    # public
    Row("GET", "/healthz", frozenset(CALLERS)),
    Row("GET", "/readyz", frozenset(CALLERS), ok=(200, 503)),
    Row("GET", "/", frozenset(CALLERS), ok=(307,)),
    Row("GET", "/web/login", frozenset(CALLERS), auth="cookie"),
    Row("POST", "/web/login", frozenset(CALLERS), auth="cookie", ok=(303,),
        form=lambda w, c: {"token": w.headers["admin"]["Authorization"].removeprefix("Bearer ")}),
    # pages: nobody signed in is sent to the login page, an unknown department gets the 401 page
    *(Row(m, p, a, auth="cookie", anonymous=(303,), **kw) for m, p, a, kw in [
        ("GET", "/web/", EVERYONE_KNOWN, {"ok": (200, 303)}),
        ("GET", "/web/cases/{case_id}", SEES_A, {"fill": CASE_A}),
        ("GET", "/web/enterprises/{uscc}", NOT_B, {"fill": {"uscc": "uscc_a"}}),
        ("GET", "/web/enterprises/{uscc}/notices", NOT_B, {"fill": {"uscc": "uscc_a"}}),
        ("POST", "/web/enterprises/{uscc}/push-preference", frozenset({"admin", "ent_a"}),
         {"fill": {"uscc": "uscc_a"}, "form": {"opt_out": "0"}, "ok": (303,)}),
        ("GET", "/web/sms", STAFF, {}),
        ("GET", "/web/sms/{fund_item_id}/failures", OWNER_A, {"fill": {"fund_item_id": "item_a"}}),
    ]),
]  # fmt: skip


# -- the world --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("scoping")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'scoping.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    yield Settings(data_dir=folder, database_url=url, jwt_secret="scoping-test-secret-" + "x" * 24)
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


def _item(s, code: str, department: Department, mode: str = "review") -> FundItem:
    policy = Policy(doc_number=f"文号{code}", title="政策", level="city", department_id=department.id)
    s.add(policy)
    s.flush()
    item = FundItem(code=code, policy_id=policy.id, department_id=department.id, name=f"资金事项{code}", mode=mode,
                    status="listed", listed_version=1)  # fmt: skip
    s.add(item)
    s.flush()
    return item


@pytest.fixture(scope="module")
def world(settings: Settings) -> World:
    rng = random.Random(11)
    tag = uuid.uuid4().hex[:6].upper()
    with transaction(settings.db_url) as s:
        a = Department(code=DEPT_A, name="宜昌市经济和信息化局", region_code="420500")
        b = Department(code=DEPT_B, name="武汉市科学技术局", region_code="420100")
        s.add_all([a, b, Department(code=FIN_YC, name="宜昌市财政局", region_code="420500", kind="finance"),
                   Department(code=FIN_WH, name="武汉市财政局", region_code="420100", kind="finance")])  # fmt: skip
        s.flush()
        item_a, item_b = _item(s, f"A-{tag}", a), _item(s, f"B-{tag}", b)
        apply_item = _item(s, f"I-{tag}", a, mode="instant")
        ent_a = Enterprise(uscc=uscc_rules.generate(rng, "420502"), name="宜昌甲科技有限公司", region_code="420502",
                           bank_account_enc="on-file", bank_account_masked="6222****0001")  # applies: needs an account
        ent_b = Enterprise(uscc=uscc_rules.generate(rng, "420102"), name="武汉乙科技有限公司", region_code="420102")
        s.add_all([ent_a, ent_b])
        s.flush()

        def case(item: FundItem, ent: Enterprise) -> Case:
            row = Case(fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id, mode="review",
                       status="reviewing", workflow_id=f"case:{item.code}:{ent.uscc}", paid_fen=0)  # fmt: skip
            s.add(row)
            s.flush()
            cases.record(session=s, case=row, key="received", kind=EventKind.RECEIVED, actor=f"enterprise:{ent.uscc}",
                         to_status="reviewing", reason="申报已受理")  # fmt: skip
            return row

        case_a, case_b, joint = case(item_a, ent_a), case(item_b, ent_b), case(item_b, ent_a)
        s.add(CaseTask(case_id=joint.id, stage_key="joint_review", stage_name="联合审核", department_code=DEPT_A,
                       due_at=datetime.now(UTC) + timedelta(days=5)))  # fmt: skip
        s.add(Notice(dedupe_key=f"scoping:{case_a.id}", enterprise_id=ent_a.id, case_id=case_a.id,
                     template_key="received_review", params={}, content="申报已受理", status="failed",
                     fund_item_id=item_a.id, fail_reason="空号"))  # fmt: skip
        ids = {"case_a": case_a.id, "case_b": case_b.id, "case_joint": joint.id, "item_a": item_a.id,
               "item_b": item_b.id, "apply_code": apply_item.code, "uscc_a": ent_a.uscc, "uscc_b": ent_b.uscc,
               "objection": 1}  # fmt: skip
    key = settings.jwt_key()
    subjects = {"admin": ("admin", "ops"), "dept_a": ("department", DEPT_A), "dept_b": ("department", DEPT_B),
                "finance_yc": ("finance", FIN_YC), "finance_wh": ("finance", FIN_WH),
                "ent_a": ("enterprise", ids["uscc_a"]), "ent_b": ("enterprise", ids["uscc_b"]),
                "unknown": ("department", "NOPE")}  # fmt: skip
    headers = {c: {"Authorization": f"Bearer {mint(key, role=r, subject=s)}"} for c, (r, s) in subjects.items()}
    return World(headers=headers, ids=ids, secret=key)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.state.temporal = FakeTemporal()
    return TestClient(app, follow_redirects=False)  # no lifespan: nothing connects to a real Temporal


def _filled(row: Row, world: World) -> Row:
    """Rows whose query names world ids ({item_a})."""
    if not row.query:
        return row
    query = {k: world.fill(v) if isinstance(v, str) else v for k, v in row.query.items()}
    return dataclasses.replace(row, query=query)


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:
    check(client, _filled(row, world), world, caller)


# -- what each caller sees --------------------------------------------------------------------------------------------


def _get(client: TestClient, world: World, caller: str, path: str) -> Any:
    client.cookies.clear()
    r = client.get(world.fill(path), headers=world.headers[caller])
    assert r.status_code == 200, r.text
    return r.json()


def test_lists_hold_only_what_the_caller_may_see(client: TestClient, world: World) -> None:
    ids = world.ids
    known = {ids["case_a"], ids["case_b"], ids["case_joint"]}  # not the applications the table made
    seen = {c: known & {x["id"] for x in _get(client, world, c, "/api/v1/enterprises/{uscc_a}/cases")} for c in STAFF}
    assert seen == {
        "admin": {ids["case_a"], ids["case_joint"]},
        "dept_a": {ids["case_a"], ids["case_joint"]},  # its own item, and the 联审 it was asked for
        "dept_b": {ids["case_joint"]},
        "finance_yc": {ids["case_a"]},
        "finance_wh": {ids["case_joint"]},
    }
    assert [t["case_id"] for t in _get(client, world, "dept_a", "/api/v1/tasks")] == [ids["case_joint"]]
    assert _get(client, world, "dept_b", "/api/v1/tasks") == []
    notices = {c: len(_get(client, world, c, "/api/v1/enterprises/{uscc_a}/notice-list")) for c in STAFF}
    assert notices == {"admin": 1, "dept_a": 1, "dept_b": 0, "finance_yc": 1, "finance_wh": 0}
    stats = {c: {r["fund_item_id"] for r in _get(client, world, c, "/api/v1/sms/stats")["items"]} for c in STAFF}
    assert stats["dept_a"] == stats["finance_yc"] == stats["admin"] == {ids["item_a"]}
    assert stats["dept_b"] == stats["finance_wh"] == set()


def test_unknown_callers_are_refused_with_401(client: TestClient, world: World, settings: Settings) -> None:
    key = settings.jwt_key()
    for role, subject in [("department", "NOPE"), ("finance", "NOPE"), ("enterprise", "91420500MA00000000"),
                          ("finance", DEPT_A), ("department", FIN_YC)]:  # fmt: skip
        r = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {mint(key, role=role, subject=subject)}"})
        assert r.status_code == 401, (role, subject, r.text)
        assert r.json()["error"]["errors"][0]["rule"] in ("known_department", "known_enterprise")


def test_every_route_is_in_a_scoping_table() -> None:
    """No route of the app (API or page) escapes the role × endpoint × owner tables."""
    all_tables = tables()
    app = create_app(Settings())
    # The fund-item side's routes are proven by tests/api/test_scoping_items.py (its rows need that world's ids).
    missing = app_routes(app) - covered_routes(*all_tables.values()) - side_routes(app)
    assert not missing, sorted(missing)


# -- archive edits ----------------------------------------------------------------------------------------------------


def test_archive_edit_is_recorded_and_shows_in_open_cases(client: TestClient, world: World, settings: Settings) -> None:
    path = world.fill("/api/v1/enterprises/{uscc_a}/archive")
    body = {"tags": ["专精特新"]}
    assert client.patch(path, json=body, headers=world.headers["dept_a"]).status_code == 403
    # The qualification list owns tags: a manual edit of them is refused, an edit made for the list is kept.
    refused = client.patch(path, json=body, headers=world.headers["admin"])
    assert refused.status_code == 403 and "数据来源归属规则" in refused.text
    r = client.patch(path, json=body, params={"source": "tech"}, headers=world.headers["admin"])
    assert r.status_code == 200 and r.json()["updated"] == ["tags"]
    with transaction(settings.db_url) as s:
        ent_id = s.scalar(select(Enterprise.id).where(Enterprise.uscc == world.ids["uscc_a"]))
        [change] = s.scalars(select(ArchiveChange).where(ArchiveChange.enterprise_id == ent_id)).all()
        assert (change.actor, change.source) == ("admin:ops", "tech")
        assert change.changes["tags"] == {"from": [], "to": ["专精特新"]}
    for case_key in ("case_a", "case_joint"):  # both open cases of the enterprise
        events = _get(client, world, "admin", f"/api/v1/cases/{{{case_key}}}")["events"]
        last = events[-1]
        assert (last["kind"], last["actor"]) == (EventKind.ARCHIVE_CHANGED, "admin:ops")
        assert last["data"]["changes"]["tags"]["to"] == ["专精特新"]
    client.cookies.clear()
    page = client.get(world.fill("/web/cases/{case_a}"), headers={"Cookie": _cookie(world, "admin")})
    assert "企业档案变更" in page.text and "admin:ops" not in page.text


# -- datetimes carry their offset -------------------------------------------------------------------------------------

MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _moments(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _moments(v)
    elif isinstance(value, list):
        for v in value:
            yield from _moments(v)
    elif isinstance(value, str) and MOMENT.match(value):
        yield value


def test_every_api_datetime_carries_its_offset(client: TestClient, world: World) -> None:
    responses = [
        _get(client, world, "admin", "/api/v1/cases/{case_a}"),
        _get(client, world, "dept_a", "/api/v1/tasks"),
        _get(client, world, "ent_a", "/api/v1/enterprises/{uscc_a}/notices"),
        _get(client, world, "ent_a", "/api/v1/enterprises/{uscc_a}/notice-list"),
        _get(client, world, "ent_a", "/api/v1/enterprises/{uscc_a}/cases"),
        _get(client, world, "dept_a", "/api/v1/sms/stats/{item_a}/failures"),
    ]
    found = [m for r in responses for m in _moments(r)]
    assert len(found) >= 6, found
    assert all(OFFSET.search(m) for m in found), [m for m in found if not OFFSET.search(m)]


def _cookie(world: World, caller: str) -> str:
    return f"zhida_token={world.headers[caller]['Authorization'].removeprefix('Bearer ')}"


def test_pages_show_names_not_codes(client: TestClient, world: World) -> None:
    client.cookies.clear()
    page = client.get(world.fill("/web/cases/{case_a}"), headers={"Cookie": _cookie(world, "ent_a")}).text
    assert "宜昌甲科技有限公司" in page and "enterprise:" not in page and "case:" not in page
    assert "审核中" in page and "reviewing" not in page.replace('class="status reviewing"', "")
    home = client.get("/web/", headers={"Cookie": _cookie(world, "dept_b")}).text
    assert "资金事项B-" in home and "资金事项A-" not in home  # another department's item is not on its home page
