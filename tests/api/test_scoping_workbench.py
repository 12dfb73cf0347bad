"""Who may open the department workbench (待办, the review screen) and decide on it: role × endpoint × owner over
its pages, on the world of tests/api/test_scoping.py (two departments, 联审 of one of B's cases by A, two finance
bureaus, two enterprises). Temporal there knows no workflow, so a decision that passes the scope answers 409."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.api.scoping import STAFF, Row, World, cases_of, check, ids_of
from tests.api.test_scoping import client, settings, world  # noqa: F401  (the shared world and app)

OWNER_A = frozenset({"admin", "dept_a", "finance_yc"})
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
]
# fmt: on
PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, world, caller)


def _cookie(w: World, caller: str) -> dict[str, str]:
    return {"Cookie": f"zhida_token={w.headers[caller]['Authorization'].removeprefix('Bearer ')}"}


def test_work_lists_hold_only_the_departments_own_tasks(client: TestClient, world: World) -> None:  # noqa: F811
    client.cookies.clear()
    r = client.get("/api/v1/tasks", headers=world.headers["dept_a"])
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
    (task,) = r.json()
    assert task["case_id"] == world.ids["case_joint"]
    assert task["enterprise_name"] == "宜昌甲科技有限公司" and task["fund_item_name"].startswith("资金事项B-")
    assert re.search(r"(Z|[+-]\d{2}:\d{2})$", task["due_at"])  # a moment with its offset
    assert isinstance(task["working_days_left"], int) and task["working_days_left"] >= 0 and not task["overdue"]
    assert client.get("/api/v1/tasks", headers=world.headers["dept_b"]).json() == []
    assert client.get("/api/v1/tasks", params={"limit": 0}, headers=world.headers["dept_a"]).status_code == 422

    mine = client.get("/web/workbench/tasks", headers=_cookie(world, "dept_a")).text
    assert (
        "宜昌甲科技有限公司" in mine
        and "联合审核" in mine
        and f"/web/workbench/cases/{world.ids['case_joint']}" in mine
    )
    other = client.get("/web/workbench/tasks", headers=_cookie(world, "dept_b")).text
    assert "宜昌甲科技有限公司" not in other and "没有待办" in other


def test_review_screen_of_another_departments_case_is_not_found(client: TestClient, world: World) -> None:  # noqa: F811
    page = client.get(f"/web/workbench/cases/{world.ids['case_a']}", headers=_cookie(world, "dept_b"))
    assert page.status_code == 404 and "宜昌甲科技有限公司" not in page.text
    joint = client.get(f"/web/workbench/cases/{world.ids['case_joint']}", headers=_cookie(world, "dept_a"))
    assert joint.status_code == 200 and "联合审核" in joint.text and 'name="decision"' in joint.text
    # B sees its own case's joint stage but has no open task there itself: no decision form
    own = client.get(f"/web/workbench/cases/{world.ids['case_joint']}", headers=_cookie(world, "dept_b"))
    assert own.status_code == 200 and 'name="decision"' not in own.text and "宜昌市经济和信息化局" in own.text
