"""Who may open the department workbench (待办, the review screen) and decide on it: role × endpoint × owner over
its pages, on the world of tests/api/test_scoping.py (two departments, 联审 of one of B's cases by A, two finance
bureaus, two enterprises). Temporal there knows no workflow, so a decision that passes the scope answers 409."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from cli.demo import DEMO_CONFIG
from db.models import FundItem, FundItemVersion
from db.session import transaction
from settings import Settings
from tests.api.scoping import STAFF, Row, World, cases_of, check, ids_of, page_headers
from tests.api.test_scoping import client, settings, world  # noqa: F401  (the shared app and world)

OWNER_A = frozenset({"admin", "dept_a", "finance_yc"})
ITEM_A = {"code": "item_a_code"}
EDITORS = frozenset({"admin", "dept_a", "dept_b"})
RENAMED = "宜昌市2026年度专精特新中小企业一次性奖励（第二版）"


@pytest.fixture(scope="module")
def wb(world: World, settings: Settings) -> World:  # noqa: F811
    """The case world, with item A given a listed version 1 and a changed draft version 2 (a real configuration)."""
    with transaction(settings.db_url) as s:
        item = s.get(FundItem, world.ids["item_a"])
        assert item is not None
        s.add(FundItemVersion(fund_item_id=item.id, version=1, config=DEMO_CONFIG, frozen=True))
        s.add(FundItemVersion(fund_item_id=item.id, version=2, config=DEMO_CONFIG | {"name": RENAMED}))
        item.current_version = 2
        world.ids["item_a_code"] = item.code
    return world


CASE_A = {"case_id": "case_a"}
DECISION = {"stage_key": "first_review", "decision": "reject", "comment": "不符合条件"}

# fmt: off
TABLE: list[Row] = [
    Row("GET", "/web/workbench/tasks", STAFF, auth="cookie", anonymous=(303,)),
    Row("GET", "/web/workbench/cases/{case_id}", OWNER_A, fill=CASE_A, auth="cookie", anonymous=(303,)),
    # past the scope the stand-in Temporal knows no workflow (409); an administrator must name the department (422)
    Row("POST", "/web/workbench/cases/{case_id}/decision", OWNER_A, fill=CASE_A, form=DECISION, auth="cookie",
        ok=(409, 422), anonymous=(303,)),
    Row("POST", "/web/workbench/cases/{case_id}/objections/{objection_id}/ruling", OWNER_A,
        fill=CASE_A | {"objection_id": "objection"}, form={"uphold": "dismiss", "comment": "经核查不成立"},
        auth="cookie", ok=(409,), anonymous=(303,)),
    Row("GET", "/web/workbench/items", STAFF, auth="cookie", anonymous=(303,)),
    Row("GET", "/web/workbench/items/{code}", OWNER_A, fill=ITEM_A, auth="cookie", anonymous=(303,)),
    Row("GET", "/web/workbench/items/{code}/edit", frozenset({"admin", "dept_a"}), fill=ITEM_A, auth="cookie",
        anonymous=(303,)),
    Row("POST", "/web/workbench/items/{code}/edit", frozenset({"admin", "dept_a"}), fill=ITEM_A,
        form={"mode": "instant"}, auth="cookie", ok=(422,), anonymous=(303,)),
    Row("GET", "/web/workbench/items/{code}/dry-run", OWNER_A, fill=ITEM_A, auth="cookie", anonymous=(303,)),
    # a listed item cannot be submitted again: past the scope the owner is refused by the item's state (409)
    Row("POST", "/web/workbench/items/{code}/lifecycle", frozenset({"admin", "dept_a"}), fill=ITEM_A,
        form={"action": "submit"}, auth="cookie", ok=(409,), anonymous=(303,)),
    # the editor is the policy departments': an empty form is refused field by field (422), never saved
    Row("GET", "/web/workbench/editor/new", EDITORS, auth="cookie", anonymous=(303,), denied=(403,)),
    Row("GET", "/web/workbench/editor/row", EDITORS, query={"kind": "cond"}, auth="cookie", anonymous=(303,),
        denied=(403,)),
    Row("POST", "/web/workbench/editor/new", EDITORS, form={"mode": "instant"}, auth="cookie", ok=(422,),
        anonymous=(303,), denied=(403,)),
    # the editor's htmx helpers read the form and answer a fragment; they save nothing
    Row("POST", "/web/workbench/editor/conditions-text", EDITORS, form={"mode": "instant"}, auth="cookie",
        anonymous=(303,), denied=(403,)),
    Row("POST", "/web/workbench/editor/example", EDITORS, form={"mode": "instant", "standard_kind": "fixed",
        "standard_amount_yuan": "50,000.00"}, auth="cookie", anonymous=(303,), denied=(403,)),
    Row("POST", "/web/workbench/editor/validate", EDITORS, query={"section": "window"}, form={"mode": "instant"},
        auth="cookie", anonymous=(303,), denied=(403,)),
    Row("POST", "/web/workbench/editor/sms-preview", EDITORS, form={"mode": "instant"}, auth="cookie",
        anonymous=(303,), denied=(403,)),
]
# fmt: on
PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, wb: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, wb, caller)


def _cookie(w: World, caller: str) -> dict[str, str]:
    return page_headers(w, caller)


def test_work_lists_hold_only_the_departments_own_tasks(client: TestClient, wb: World) -> None:  # noqa: F811
    client.cookies.clear()
    r = client.get("/api/v1/tasks", headers=wb.headers["dept_a"])
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
    (task,) = r.json()
    assert task["case_id"] == wb.ids["case_joint"]
    assert task["enterprise_name"] == "宜昌甲科技有限公司" and task["fund_item_name"].startswith("资金事项B-")
    assert re.search(r"(Z|[+-]\d{2}:\d{2})$", task["due_at"])  # a moment with its offset
    assert isinstance(task["working_days_left"], int) and task["working_days_left"] >= 0 and not task["overdue"]
    assert client.get("/api/v1/tasks", headers=wb.headers["dept_b"]).json() == []
    assert client.get("/api/v1/tasks", params={"limit": 0}, headers=wb.headers["dept_a"]).status_code == 422
    paged = client.get("/api/v1/tasks", params={"offset": 1}, headers=wb.headers["dept_a"])
    assert paged.json() == [] and paged.headers["X-Total-Count"] == "1"  # the total counts every page
    other_item = client.get("/api/v1/tasks", params={"fund_item": "A-NONE"}, headers=wb.headers["dept_a"])
    assert other_item.json() == [] and other_item.headers["X-Total-Count"] == "0"
    assert (
        len(client.get("/api/v1/tasks", params={"stage_key": "joint_review"}, headers=wb.headers["dept_a"]).json()) == 1
    )

    mine = client.get("/web/workbench/tasks", headers=_cookie(wb, "dept_a")).text
    assert (
        "宜昌甲科技有限公司" in mine and "联合审核" in mine and f"/web/workbench/cases/{wb.ids['case_joint']}" in mine
    )
    other = client.get("/web/workbench/tasks", headers=_cookie(wb, "dept_b")).text
    assert "宜昌甲科技有限公司" not in other and "没有待办" in other


def test_review_screen_of_another_departments_case_is_not_found(client: TestClient, wb: World) -> None:  # noqa: F811
    page = client.get(f"/web/workbench/cases/{wb.ids['case_a']}", headers=_cookie(wb, "dept_b"))
    assert page.status_code == 404 and "宜昌甲科技有限公司" not in page.text
    joint = client.get(f"/web/workbench/cases/{wb.ids['case_joint']}", headers=_cookie(wb, "dept_a"))
    assert joint.status_code == 200 and "联合审核" in joint.text and 'name="decision"' in joint.text
    # B sees its own case's joint stage but has no open task there itself: no decision form
    own = client.get(f"/web/workbench/cases/{wb.ids['case_joint']}", headers=_cookie(wb, "dept_b"))
    assert own.status_code == 200 and 'name="decision"' not in own.text and "宜昌市经济和信息化局" in own.text


def test_item_pages_hold_only_the_departments_own_items(client: TestClient, wb: World) -> None:  # noqa: F811
    client.cookies.clear()
    mine = client.get("/web/workbench/items", headers=_cookie(wb, "dept_a")).text
    assert f"/web/workbench/items/{wb.ids['item_a_code']}" in mine and "B-" not in mine.split("<table")[1]
    other = client.get("/web/workbench/items", headers=_cookie(wb, "dept_b")).text
    assert wb.ids["item_a_code"] not in other
    page = client.get(f"/web/workbench/items/{wb.ids['item_a_code']}", headers=_cookie(wb, "dept_a")).text
    assert "第 2 版" in page and RENAMED in page  # the version history shows what changed in the name
    assert "申报起始日前 5 个工作日" in page
    refused = client.post(
        f"/web/workbench/items/{wb.ids['item_a_code']}/lifecycle",
        data={"action": "close", "reason": ""},
        headers=_cookie(wb, "dept_a"),
    )
    assert refused.status_code == 422 and "须写明原因" in refused.text
