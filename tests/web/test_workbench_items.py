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
from schemas.standards import parse_standard
from services.fund_items import today_local
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

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
        sign_in(page, token)
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
        sign_in(page, web.token('department', 'YC-RSJ'))
        page.goto("/web/workbench/items?q=工作台测试")
        expect(page.locator("#items")).not_to_contain_text(name)
        assert page.goto(f"/web/workbench/items/{code}").status == 404

    await web.run(browse)


async def test_an_officer_creates_an_instant_item_in_the_editor_and_lists_it(web: Web) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    code = f"YC-T-{uuid.uuid4().hex[:6].upper()}"
    start = today_local() + timedelta(days=30)
    name = f"宜昌市2026年度研发投入奖励（编辑器 {code[-6:]}）"
    token = web.token("department", "YC-JXJ")
    fields = {
        "#code": code,
        "#name": name,
        "#policy_doc_number": "宜经信发〔2026〕30号",
        "#policy_title": "宜昌市支持企业加大研发投入若干措施",
        "#policy_issuer": "宜昌市经济和信息化局",
        "#window_start": start.isoformat(),
        "#window_end": (start - timedelta(days=1)).isoformat(),  # wrong on purpose: refused first
        "#guide_policy_basis": "《宜昌市支持企业加大研发投入若干措施》第二条",
        "#guide_standard_text": "营业收入达到1000万元的奖励5万元，达到1亿元的奖励10万元",
        "#guide_process": "在线申报，系统自动核验，即时兑付",
        "#budget_total_yuan": "1,000,000.00",
        "#officer_name": "王敏",
        "#officer_phone": "0717-6222001",
        "#officer_office": "市经信局中小企业科",
    }

    def edit(page: Page) -> None:
        sign_in(page, token)
        page.goto("/web/workbench/items")
        page.get_by_role("link", name="即申即享", exact=True).click()
        expect(page.get_by_role("heading", name="新建资金事项（即申即享）")).to_be_visible()
        for selector, value in fields.items():
            page.fill(selector, value)
        page.fill("input[name=source_name]", "市级财政")
        page.fill("input[name=source_share]", "100")
        root = page.locator("#cond-group-root")
        conditions = page.locator("#cond-items-root > .cond-leaf")
        conditions.nth(0).locator("select[name=cond_field]").select_option("region_code")
        conditions.nth(0).locator("select[name=cond_op]").select_option("prefix")
        conditions.nth(0).locator("input[name=cond_value]").fill("4205")
        conditions.nth(1).locator("select[name=cond_field]").select_option("rd_ratio_bp")
        conditions.nth(1).locator("select[name=cond_op]").select_option("ge")
        conditions.nth(1).locator("input[name=cond_value]").fill("3")
        conditions.nth(2).get_by_role("button", name="删除").click()  # the third row is not needed
        expect(conditions).to_have_count(2)
        root.locator(":scope > button.add-leaf").click()  # htmx brings a blank row
        expect(conditions).to_have_count(3)
        root.locator(":scope > button.add-group").click()  # and a group: made a `not` group (不得存在以下情形)
        group = page.locator("#cond-items-root > .cond-group")
        expect(group).to_have_count(1)
        group.locator("select[name=cond_kind]").select_option("not")
        group.locator("select[name=cond_field]").select_option("credit_status")
        group.locator("select[name=cond_op]").select_option("eq")
        group.locator(".cond-leaf input[name=cond_value]").fill("失信")
        # a tiered standard, tried on a sample enterprise, and the SMS the enterprises will get
        page.select_option("#standard_kind", "tiers")
        page.select_option("#tiers_base", "revenue_fen")
        tiers = page.locator("#tier-rows tr")
        tiers.nth(0).locator("input[name=tier_at_least]").fill("10,000,000.00")
        tiers.nth(0).locator("input[name=tier_amount_yuan]").fill("50,000.00")
        tiers.nth(0).locator("input[name=tier_label]").fill("营收达1000万元")
        tiers.nth(1).locator("input[name=tier_at_least]").fill("100,000,000.00")
        tiers.nth(1).locator("input[name=tier_amount_yuan]").fill("100,000.00")
        tiers.nth(1).locator("input[name=tier_label]").fill("营收达1亿元")
        page.click("#compute-example")
        expect(page.locator("#example-amount")).to_contain_text("元整）")
        expect(page.locator("#example-working")).to_contain_text("营业收入")
        page.click("#preview-sms")
        expect(page.locator("#sms-previews")).to_contain_text("申报受理（即申即享）")
        expect(page.locator("#sms-previews")).to_contain_text("元整")
        page.locator("#standard").screenshot(path=SHOTS / "editor-standard.png")
        page.locator("#sms").screenshot(path=SHOTS / "editor-sms.png")
        page.click("#generate-conditions-text")  # the guide's text from the tree
        expect(page.locator("#guide_conditions_text")).to_have_value(
            "申报单位须同时满足以下条件：\n（一）注册地行政区划 位于 宜昌市；\n（二）研发投入占比 ≥ 3.00%；\n"
            "（三）信用状态 ≠ 失信。"
        )
        # live validation: the section checks itself on change. The change is dispatched, not left to a blur: the
        # wrong date was typed long before, and whether its blur came before or after later swaps was up to timing
        page.locator("#window_end").dispatch_event("change")
        expect(page.locator("#errors-window")).to_contain_text("截止日不得早于起始日")
        expect(page.locator("#errors-budget")).to_be_empty()
        page.click("#save")
        expect(page.locator("#errors")).to_contain_text("截止日不得早于起始日")
        expect(page.locator("fieldset", has_text="申报期").locator(".field-error")).to_contain_text("申报截止日")
        page.screenshot(path=SHOTS / "editor-errors.png", full_page=True)
        page.fill("#window_end", (start + timedelta(days=60)).isoformat())
        page.click("#save")
        expect(page.locator("#notes")).to_contain_text("已创建草稿")
        page.get_by_role("link", name="政策预匹配（上架前测算覆盖企业和预算）").click()
        expect(page.locator("#summary")).to_contain_text("符合条件")
        expect(page.locator("#by-region canvas")).to_have_count(1)  # ECharts drew from the vendored script
        expect(page.locator("#by-industry canvas")).to_have_count(1)
        expect(page.locator("#near-misses")).to_contain_text("研发投入占比")
        page.screenshot(path=SHOTS / "dry-run.png", full_page=True)
        page.go_back()
        page.get_by_role("button", name="提交").click()
        page.get_by_role("button", name="上架").click()
        expect(page.locator("#item-status")).to_have_text("已上架")
        expect(page.locator("#notes")).to_contain_text("已建立预算额度：市级财政 1,000,000.00元")  # yuan, not fen
        page.screenshot(path=SHOTS / "editor-listed.png", full_page=True)

    await web.run(edit)
    saved = await asyncio.to_thread(
        web.stack.http.get, f"/api/v1/fund-items/{code}", headers=web.stack.token("department", "YC-JXJ")
    )
    config = saved.json()["version"]["config"]
    assert parse_standard(config["standard"]) == parse_standard({
        "kind": "tiers",
        "base": "revenue_fen",
        "tiers": [
            {"at_least": 1_000_000_000, "amount_fen": 5_000_000, "label": "营收达1000万元"},
            {"at_least": 10_000_000_000, "amount_fen": 10_000_000, "label": "营收达1亿元"},
        ],
    })
    assert config["conditions"]["items"][1] == {"field": "rd_ratio_bp", "op": "ge", "value": 300}
    assert config["conditions"]["items"][2] == {
        "op": "not",
        "item": {"field": "credit_status", "op": "eq", "value": "dishonest"},
    }
    assert config["guide"]["conditions_text"].endswith("（三）信用状态 ≠ 失信。")
    assert config["budget"]["total_fen"] == 100_000_000 and config["budget"]["sources"][0]["share_bp"] == 10_000


    # a review item in the same editor: materials, an approval stage, reject at once on unmet conditions
    review_code = f"YC-T-{uuid.uuid4().hex[:6].upper()}"
    review_name = f"宜昌市2026年度技术改造项目补助（编辑器 {review_code[-6:]}）"
    review_fields = fields | {
        "#code": review_code,
        "#name": review_name,
        "#window_end": (start + timedelta(days=60)).isoformat(),
        "#guide_standard_text": "每个项目补助10万元",
        "#guide_process": "在线申报，经信局初审，公示后拨付",
        "#standard_amount_yuan": "100,000.00",
    }

    def edit_review(page: Page) -> None:
        sign_in(page, token)
        page.goto("/web/workbench/items")
        page.get_by_role("link", name="申报审批", exact=True).click()
        expect(page.get_by_role("heading", name="新建资金事项（申报审批）")).to_be_visible()
        for selector, value in review_fields.items():
            page.fill(selector, value)
        page.fill("input[name=source_name]", "市级财政")
        page.fill("input[name=source_share]", "100")
        page.fill("input[name=material_name]", "项目申报书")
        page.fill("input[name=material_requirement]", "按示范文本填写并加盖公章")
        leaf = page.locator("#cond-items-root > .cond-leaf").nth(0)
        leaf.locator("select[name=cond_field]").select_option("employees")
        leaf.locator("select[name=cond_op]").select_option("ge")
        leaf.locator("input[name=cond_value]").fill("20")
        page.check("#reject_unmet")
        stage = page.locator("#stage-rows tr").nth(0)
        stage.locator("input[name=stage_key]").fill("first_review")
        stage.locator("input[name=stage_name]").fill("初审")
        stage.locator("input[name=stage_departments]").fill("YC-JXJ")
        stage.locator("input[name=stage_days]").fill("5")
        stage.locator("select[name=stage_timeout]").select_option("auto_reject")
        page.click("#generate-conditions-text")
        expect(page.locator("#guide_conditions_text")).to_have_value("申报单位须同时满足以下条件：\n（一）从业人数 ≥ 20 人。")
        page.click("#save")
        expect(page.locator("#notes")).to_contain_text("已创建草稿")
        page.get_by_role("link", name="政策预匹配（上架前测算覆盖企业和预算）").click()
        expect(page.locator("#summary")).to_contain_text("符合条件")
        page.go_back()
        page.get_by_role("button", name="提交").click()
        page.get_by_role("button", name="上架").click()
        expect(page.locator("#item-status")).to_have_text("已上架")
        page.goto("/web/workbench/items?q=编辑器")
        expect(page.locator("#items")).to_contain_text(review_name)
        expect(page.locator("#items")).to_contain_text(name)
        page.screenshot(path=SHOTS / "editor-two-items.png", full_page=True)

    await web.run(edit_review)
    saved = await asyncio.to_thread(
        web.stack.http.get, f"/api/v1/fund-items/{review_code}", headers=web.stack.token("department", "YC-JXJ")
    )
    config = saved.json()["version"]["config"]
    assert saved.json()["status"] == "listed" and config["mode"] == "review"
    assert config["approval"]["reject_unmet_at_application"] is True
    assert config["approval"]["stages"][0]["on_timeout"] == "auto_reject"
    assert config["conditions"] == {"op": "all", "items": [{"field": "employees", "op": "ge", "value": 20}]}
