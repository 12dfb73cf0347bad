"""A reviewer of 宜昌市经信局 works the department workbench in a real browser (Debian's chromium) against the full
stack: the work list with names and working days left, then three review cases taken through 补正, 不同意 and 同意
on the review screen, each refusal of the workflow shown on the page in Chinese; and the eligibility checked at
application, including an application rejected at once for unmet quantified conditions."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cli.demo import REVIEW_CONFIG, REVIEW_ITEM, add_listed_item, demo_enterprise_uscc
from db.models import Enterprise
from db.session import transaction
from schemas.vocabulary import CaseStatus
from tests.factories import clone_enterprise
from tests.support import eventually
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots" / "12"
REVIEWER = ("department", "YC-JXJ")


def _enterprises(web: Web, n: int) -> list[tuple[str, str]]:
    """n fresh enterprises with the demo enterprise's archive (so they meet the item's conditions)."""
    with transaction(web.stack.settings.db_url) as session:
        demo = session.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        assert demo is not None
        made = [clone_enterprise(session, demo) for _ in range(n)]
        return [(e.uscc, e.name) for e in made]


async def _tasks(web: Web, stage: str, count: int) -> list[dict]:
    headers = web.stack.token(*REVIEWER)
    response = await eventually(
        lambda: web.stack.http.get("/api/v1/tasks", params={"stage_key": stage}, headers=headers),
        lambda r: r.status_code == 200 and len(r.json()) >= count,
        what=f"{count} open {stage} tasks for 经信局",
    )
    return response.json()


def _signed_in(web: Web, fn: Callable[[Page], object]) -> Callable[[Page], object]:
    token = web.token(*REVIEWER)

    def run(page: Page) -> object:
        sign_in(page, token)
        return fn(page)

    return run


async def test_a_reviewer_works_the_list_and_decides_three_cases(web: Web) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    firms = _enterprises(web, 3)
    case_ids = []
    for uscc, _ in firms:
        r = await asyncio.to_thread(
            web.stack.http.post,
            "/api/v1/applications",
            json={"fund_item_code": REVIEW_ITEM, "uscc": uscc},
            headers=web.stack.token("enterprise", uscc),
        )
        assert r.status_code == 201, r.text
        case_ids.append(r.json()["id"])
    tasks = await _tasks(web, "completeness", 3)
    assert {t["case_id"] for t in tasks} >= set(case_ids)
    supplement, reject, approve = case_ids

    def work_list(page: Page) -> None:
        page.goto("/web/workbench/tasks")
        expect(page.get_by_role("heading", name="待办 · 宜昌市经济和信息化局")).to_be_visible()
        table = page.locator("#tasks")
        for _, name in firms:
            expect(table).to_contain_text(name)
        expect(table).to_contain_text("宜昌市2026年度工业企业技术改造设备投资补贴（申报审批）")
        expect(table).to_contain_text("形式审查")
        expect(table).to_contain_text("还剩 2 个工作日")
        expect(page.locator("#task-counts")).to_contain_text("待办")
        page.screenshot(path=SHOTS / "worklist.png", full_page=True)

    await web.run(_signed_in(web, work_list))

    def return_for_supplement(page: Page) -> None:
        page.goto(f"/web/workbench/cases/{supplement}")
        expect(page.locator("#conditions")).to_contain_text("满足")
        expect(page.locator("#at-application-verdict")).to_contain_text("申报时全部量化条件满足")
        expect(page.locator("#supplement-note")).to_contain_text("企业须在 5 个工作日内补正")
        page.get_by_role("button", name="退回补正").click()
        # the workflow refuses a 补正 without what to supplement; the page shows its reason
        expect(page.locator("#refusal")).to_contain_text("退回补正须写明需补正的内容")
        page.fill("#comment", "请补充设备购置增值税专用发票扫描件")
        page.get_by_role("button", name="退回补正").click()
        expect(page.locator("#done")).to_contain_text("已提交：退回补正")
        page.screenshot(path=SHOTS / "supplement.png", full_page=True)

    await web.run(_signed_in(web, return_for_supplement))
    await web.stack.wait_status(supplement, {CaseStatus.SUPPLEMENT}, web.stack.token(*REVIEWER))

    def reject_case(page: Page) -> None:
        page.goto(f"/web/workbench/cases/{reject}")
        page.get_by_role("button", name="不同意").click()
        expect(page.locator("#refusal")).to_contain_text("不同意须写明理由")
        page.fill("#comment", "项目竣工时间不在支持期内")
        page.get_by_role("button", name="不同意").click()
        expect(page.locator("#done")).to_contain_text("已提交：不同意")

    await web.run(_signed_in(web, reject_case))
    await web.stack.wait_status(reject, {CaseStatus.REJECTED}, web.stack.token(*REVIEWER))

    def approve_completeness(page: Page) -> None:
        page.goto(f"/web/workbench/cases/{approve}")
        page.get_by_role("button", name="同意", exact=True).click()
        expect(page.locator("#done")).to_contain_text("已提交：同意")

    await web.run(_signed_in(web, approve_completeness))
    await _tasks(web, "first_review", 1)

    def approve_first_review(page: Page) -> None:
        page.goto(f"/web/workbench/cases/{approve}")
        expect(page.get_by_role("heading", name="本部门办理：初审")).to_be_visible()
        page.fill("#amount_yuan", "3,000,000.00")
        page.get_by_role("button", name="同意", exact=True).click()
        expect(page.locator("#refusal")).to_have_text("核定金额 3,000,000.00元超过扶持标准上限 2,000,000.00元")
        page.screenshot(path=SHOTS / "refusal.png", full_page=True)
        page.fill("#amount_yuan", "16,000.00")
        page.get_by_role("button", name="同意", exact=True).click()
        expect(page.locator("#done")).to_contain_text("已提交：同意")
        expect(page.locator("#stages")).to_contain_text("初审")
        page.screenshot(path=SHOTS / "approve.png", full_page=True)

    await web.run(_signed_in(web, approve_first_review))

    def joint_progress(page: Page) -> None:
        page.goto(f"/web/workbench/cases/{approve}")
        stages = page.locator("#stages")
        expect(stages).to_contain_text("联合审核（联审）")
        expect(stages).to_contain_text("宜昌市财政局")
        expect(stages).to_contain_text("宜昌市发展和改革委员会")
        expect(page.locator("#timeline")).to_contain_text("宜昌市经济和信息化局")
        expect(page.locator("#timeline")).to_contain_text("联合审核：宜昌市财政局、宜昌市发展和改革委员会办理")
        expect(page.locator("#timeline")).not_to_contain_text("YC-")  # names, never department codes
        expect(page.locator("#decision-form")).to_have_count(0)  # 经信局 has no turn in the 联审
        page.screenshot(path=SHOTS / "joint.png", full_page=True)

    await _tasks_for(web, "YC-FGW", approve)
    await web.run(_signed_in(web, joint_progress))
    # 16,000.00 yuan typed on the page is the case's amount in fen
    await eventually(
        lambda: web.stack.http.get(f"/api/v1/cases/{approve}/progress", headers=web.stack.token(*REVIEWER)).json(),
        lambda progress: progress.get("amount_fen") == 1_600_000,
        what=f"case {approve} to carry the amount approved on the page",
    )
    await _rejected_at_once(web)  # on the same stack: a stack costs seconds to start


async def _tasks_for(web: Web, department: str, case_id: int) -> None:
    headers = web.stack.token("department", department)
    await eventually(
        lambda: web.stack.http.get("/api/v1/tasks", headers=headers).json(),
        lambda rows: any(t["case_id"] == case_id for t in rows),
        what=f"the 联审 task of case {case_id} for {department}",
    )


async def _rejected_at_once(web: Web) -> None:
    """A review item that rejects at once: the application of an enterprise short of the quantified conditions is
    closed on arrival, and the review screen shows the check made then, with the 不足之处."""
    code = f"YC-T-EL{uuid.uuid4().hex[:5].upper()}"
    config = copy.deepcopy(REVIEW_CONFIG) | {"name": f"宜昌市2026年度规模企业技术改造奖励（即时核验 {code[-5:]}）"}
    config["approval"] = config["approval"] | {"reject_unmet_at_application": True}
    config["conditions"] = {
        "op": "all",
        "items": [
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "employees", "op": "ge", "value": 1_000_000},
        ],
    }
    with transaction(web.stack.settings.db_url) as session:
        add_listed_item(session=session, code=code, department_code="YC-JXJ", config=config)
    ((uscc, name),) = _enterprises(web, 1)
    r = await asyncio.to_thread(
        web.stack.http.post,
        "/api/v1/applications",
        json={"fund_item_code": code, "uscc": uscc},
        headers=web.stack.token("enterprise", uscc),
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    await web.stack.wait_status(case_id, {CaseStatus.REJECTED}, web.stack.token(*REVIEWER))

    def look(page: Page) -> None:
        page.goto(f"/web/workbench/cases/{case_id}")
        expect(page.locator("#case-status")).to_have_text(CaseStatus.REJECTED.label)
        expect(page.locator(".card").first).to_contain_text(name)
        check = page.locator("#at-application")
        expect(page.locator("#at-application-verdict")).to_contain_text("已即时不予通过")
        expect(check).to_contain_text("从业人数")
        expect(check).to_contain_text("（不足之处）")
        expect(page.locator("#timeline")).to_contain_text("不符合申报条件：从业人数")
        expect(page.locator("#decision-form")).to_have_count(0)
        page.screenshot(path=SHOTS / "rejected-at-application.png", full_page=True)

    await web.run(_signed_in(web, look))
