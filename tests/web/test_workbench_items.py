"""A 经信局 officer manages a fund item on the workbench in a real browser: the list of its items, then submit, list
(上架, the 5-working-day rule explained with the earliest start day), close (a reason is required) and the version
history — against the full stack over HTTP."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cli.demo import DEMO_CONFIG
from services.fund_items import today_local
from tests.web.conftest import Web

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots" / "12"


async def test_an_officer_submits_lists_and_closes_an_item_on_the_page(web: Web) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    code = f"YC-T-{uuid.uuid4().hex[:6].upper()}"
    start = today_local() + timedelta(days=30)  # comfortably more than 5 working days away
    name = f"宜昌市2026年度专精特新企业奖励（工作台测试 {code[-6:]}）"
    config = copy.deepcopy(DEMO_CONFIG) | {
        "name": name,
        "window": {"start": start.isoformat(), "end": (start + timedelta(days=60)).isoformat()},
    }
    r = await asyncio.to_thread(
        web.stack.http.post,
        "/api/v1/fund-items",
        json={"code": code, "config": config},
        headers=web.stack.token("department", "YC-JXJ"),
    )
    assert r.status_code == 201, r.text
    token = web.token("department", "YC-JXJ")

    def browse(page: Page) -> None:
        page.goto(f"/web/login?token={token}")
        page.goto("/web/workbench/items?q=工作台测试")
        rows = page.locator("#items")
        expect(rows).to_contain_text(name)
        expect(rows).to_contain_text("草稿")
        page.screenshot(path=SHOTS / "items.png", full_page=True)
        page.get_by_role("link", name=name).click()
        expect(page.locator("#listing-rule")).to_contain_text("申报起始日前 5 个工作日")
        expect(page.locator("#earliest")).not_to_be_empty()
        page.get_by_role("button", name="提交").click()
        expect(page.locator("#notes")).to_contain_text("第 1 版已提交")
        page.get_by_role("button", name="上架").click()
        expect(page.locator("#notes")).to_contain_text("第 1 版已上架并冻结")
        expect(page.locator("#item-status")).to_have_text("已上架")
        page.get_by_role("button", name="结束受理").click()
        expect(page.locator("#refusal")).to_contain_text("须写明原因")
        page.fill("input[placeholder='结束受理原因']", "年度预算已用完")
        page.get_by_role("button", name="结束受理").click()
        expect(page.locator("#notes")).to_contain_text("已结束受理：年度预算已用完")
        expect(page.locator("#item-status")).to_have_text("已结束")
        page.screenshot(path=SHOTS / "item.png", full_page=True)
        # another department's officer does not find it
        page.goto(f"/web/login?token={web.token('department', 'YC-RSJ')}")
        page.goto("/web/workbench/items?q=工作台测试")
        expect(page.locator("#items")).not_to_contain_text(name)
        assert page.goto(f"/web/workbench/items/{code}").status == 404

    await web.run(browse)
