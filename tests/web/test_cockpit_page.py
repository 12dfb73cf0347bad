"""The finance cockpit in a real browser through the real server: a finance user of 宜昌 filters by department and
region, drills down to the cases behind a figure, downloads an export and closes a reconciliation alert with a note.
Screenshots go to reports/screenshots/14/."""

from __future__ import annotations

import asyncio
import copy
import io
import re
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cli.demo import REVIEW_CONFIG, add_listed_item, demo_enterprise_uscc
from db.models import Alert, FundItem
from db.repositories import reconciliation
from db.session import transaction
from schemas.vocabulary import AlertStatus, EventKind
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, item_config
from tests.campaigns.test_campaign_stack import list_item, small_batches, wait_campaign
from tests.db import cockpit_dataset
from tests.support import eventually
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots" / "14"


async def test_finance_filters_drills_down_exports_and_closes_an_alert(web: Web) -> None:
    with transaction(web.stack.settings.db_url) as s:
        data = cockpit_dataset.build(s)
        alert = reconciliation.raise_alert(session=s, kind="recon_amount_mismatch", ref=f"cockpit-web:{data.tag}",
                                           message=f"2026-09-04 对账：凭证 T{data.tag} 金额不符：我方 100.00元，国库 90.00元")  # fmt: skip
        alert_id = alert.id
    token = web.token("finance", data.finance_yc)
    SHOTS.mkdir(parents=True, exist_ok=True)

    def drive(page: Page) -> bytes:
        page.set_default_timeout(60_000)  # pages wait on a busy machine's database
        sign_in(page, token)
        page.goto("/web/")
        expect(page.locator("#finance-entry")).to_contain_text("进入财政看板")
        page.get_by_role("link", name="进入财政看板").click()
        expect(page.get_by_role("heading", name="财政看板 · 宜昌市")).to_be_visible()
        page.wait_for_function("document.querySelector('#chart-months canvas') !== null")
        page.screenshot(path=SHOTS / "1-cockpit.png", full_page=True)

        # Filter: 科技局's item, enterprises of 伍家岗区.
        page.locator("select[name=department_id]").select_option(str(data.ids["dept_b"]))
        page.locator("select[name=region]").select_option("420503")
        page.locator("#apply-filters").click()
        expect(page.locator("#group-fund_item")).to_contain_text("科技创新平台奖励")
        rows = page.locator("#group-fund_item tr").all_inner_texts()
        assert len(rows) == 2 and "1,200,000" not in rows[1] and "12,000.00元" in rows[1], rows
        page.screenshot(path=SHOTS / "2-filtered.png", full_page=True)

        # Drill down from the figure to its cases.
        page.locator("#group-fund_item a", has_text="科技创新平台奖励").click()
        expect(page.locator("#case-total")).to_contain_text("共 1 件")
        expect(page.locator("#cases")).to_contain_text("财政审核中")
        expect(page.locator("#cases")).to_contain_text("伍家岗区")
        page.screenshot(path=SHOTS / "3-cases.png", full_page=True)
        with page.expect_download() as download:
            page.locator("#export-xlsx").click()
        content = Path(download.value.path()).read_bytes()

        # Close the alert from the cockpit with a note.
        page.goto("/web/cockpit")
        row = page.locator("#alert-list tr", has_text=f"T{data.tag}")
        row.locator("input[name=note]").fill("已与国库核实：国库少记 10.00 元，已补记")
        row.get_by_role("button", name="关闭告警").click()
        expect(page.locator("#closed-note")).to_contain_text(f"告警 {alert_id} 已关闭")
        expect(page.locator("#alert-list")).not_to_contain_text(f"T{data.tag}")
        page.locator("#alerts").scroll_into_view_if_needed()
        page.screenshot(path=SHOTS / "4-alert-closed.png", full_page=True)
        return content

    content = await web.run(drive)
    sheet = load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "办件编号" and len(rows) == 2
    assert rows[1][0] == data.ids["c7"] and rows[1][7] == "财政审核中" and rows[1][8] == 12_000.0
    with transaction(web.stack.settings.db_url) as s:
        closed = s.get(Alert, alert_id)
        assert closed is not None and closed.status == AlertStatus.CLOSED
        assert closed.closed_by == f"finance:{data.finance_yc}" and closed.close_note.startswith("已与国库核实")


async def test_finance_approves_a_review_case_on_the_cockpit(web: Web) -> None:
    """A review case reaches the finance stage; 宜昌市财政局 approves it on the cockpit and it is paid, the decision
    in the case's timeline with the finance bureau as its actor."""
    stack = web.stack
    config = copy.deepcopy(REVIEW_CONFIG)
    config["approval"].pop("publicity")
    config["approval"].pop("completeness_check")
    config["approval"]["stages"] = config["approval"]["stages"][:1]
    code = f"YC-T-CK-{uuid.uuid4().hex[:6].upper()}"
    with transaction(stack.settings.db_url) as session:
        add_listed_item(session=session, code=code, department_code="YC-JXJ", config=config)
    uscc = demo_enterprise_uscc()
    ent = stack.token("enterprise", uscc)
    # Off the event loop (the stack's worker runs on it); generous timeouts for a busy machine.
    post = stack.http.post
    body = {"fund_item_code": code, "uscc": uscc}
    r = await asyncio.to_thread(post, "/api/v1/applications", json=body, headers=ent, timeout=120)
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]

    async def stage(key: str) -> None:
        await eventually(
            lambda: stack.http.get(f"/api/v1/cases/{case_id}/progress", headers=ent),
            lambda r: r.status_code == 200 and (r.json().get("stage") or {}).get("key") == key,
            what=f"stage {key} of case {case_id} to open",
            timeout=180,
        )

    await stage("first_review")
    decision = {"stage_key": "first_review", "decision": "approve", "amount_fen": 660_000}
    jxj = stack.token("department", "YC-JXJ")
    r = await asyncio.to_thread(post, f"/api/v1/cases/{case_id}/decisions", json=decision, headers=jxj, timeout=120)
    assert r.status_code == 200, r.text
    await stage("finance")
    token = web.token("finance", "YC-CZJ")

    def approve(page: Page) -> None:
        page.set_default_timeout(60_000)
        sign_in(page, token)
        page.goto("/web/cockpit#finance-stages")
        row = page.locator("#stage-list tr", has_text=str(case_id)).filter(has_text="6,600.00元")
        row.locator("input[name=comment]").fill("资金来源已落实，同意拨付")
        page.locator("#finance-stages").screenshot(path=SHOTS / "5-finance-stage.png")
        row.get_by_role("button", name="同意拨付").click()
        expect(page.locator("#decided-note")).to_contain_text(f"办件 {case_id} 的财政意见已提交", timeout=120_000)

    await web.run(approve)
    case = await stack.wait_status(case_id, {"paid", "payment_failed"}, ent, timeout=180)
    assert case["status"] == "paid" and case["paid_fen"] == 660_000
    finance_events = [e for e in case["events"] if e["kind"] == EventKind.DECISION and "财政" in (e.get("actor") or "")]
    assert finance_events or any(e["kind"] == EventKind.FINANCE_APPROVED for e in case["events"]), case["events"]


CAMPAIGN_REGION = "420526"  # 兴山县: no other test's enterprises, so the campaign matches exactly these


async def test_finance_approves_a_campaign_payout_and_reads_the_policy_performance(web: Web) -> None:
    """A 免申即享 item matches three enterprises and waits for finance; 宜昌市财政局 follows the cockpit's campaign
    row to the campaign page, approves the wave, then opens the policy performance page (art. 39), sees the item's
    funnel and downloads its export, read back here."""
    stack = web.stack
    small_batches(stack)
    code = f"T14-WEB-CAMP-{uuid.uuid4().hex[:6].upper()}"
    with transaction(stack.settings.db_url) as session:
        add_enterprises(session, stack.settings.fernet_key(), 3, seed=14, region=CAMPAIGN_REGION)
    list_item(stack, code, item_config(budget_fen=3 * AMOUNT_FEN, finance_auto=False, region=CAMPAIGN_REGION))
    waiting = await wait_campaign(stack, code, lambda p: p["awaiting_tranche"] == 1)
    campaign_id, name = waiting["campaign_id"], waiting["fund_item_name"]
    with transaction(stack.settings.db_url) as session:  # the demo item has the same name: the page filters by id
        item_id = session.scalar(select(FundItem.id).where(FundItem.code == code))
    finance = stack.token("finance", "YC-CZJ")
    await eventually(  # the workflow itself waits for the decision (not only the database row)
        lambda: stack.http.get(f"/api/v1/campaigns/{campaign_id}?source=workflow", headers=finance).json(),
        lambda live: live.get("awaiting_tranche") == 1,
        what="the campaign workflow to wait for finance's decision",
    )
    token = web.token("finance", "YC-CZJ")

    def approve(page: Page) -> None:
        page.set_default_timeout(60_000)
        sign_in(page, token)
        page.goto("/web/cockpit#campaigns")
        row = page.locator("#campaigns tr", has_text=name)
        expect(row).to_contain_text("第 1 批待审核")
        row.get_by_role("link", name="第 1 批待审核").click()
        expect(page.get_by_role("heading", name=f"免申即享批量兑付：{name}")).to_be_visible()
        page.locator("input[name=note]").fill("三家企业经比对符合条件，同意拨付")
        page.screenshot(path=SHOTS / "6-campaign-approval.png", full_page=True)
        page.get_by_role("button", name=f"同意拨付（3 家，{AMOUNT_FEN * 3 // 100:,}.00元）").click()
        page.wait_for_url(f"**/web/campaigns/{campaign_id}", timeout=120_000)  # the decision went to the workflow

    await web.run(approve)
    done = await wait_campaign(stack, code, lambda p: p["paid"] == 3, timeout=240)
    assert done["paid_fen"] == 3 * AMOUNT_FEN

    def performance(page: Page) -> bytes:
        page.set_default_timeout(60_000)
        sign_in(page, token)
        page.goto(f"/web/campaigns/{campaign_id}")
        expect(page.locator("#campaign-bar")).to_have_attribute("style", re.compile(r"width:\s*100"))
        page.screenshot(path=SHOTS / "7-campaign-paid.png", full_page=True)
        page.goto("/web/cockpit")
        page.locator("#performance-link").click()
        expect(page.get_by_role("heading", name=re.compile("政策执行绩效"))).to_be_visible()
        page.locator("#performance-filters select[name=fund_item_id]").select_option(str(item_id))
        page.locator("#apply-performance").click()
        expect(page.locator("#performance-items tr")).to_have_count(2)  # the heading and the item
        row = page.locator("#performance-items tr", has_text=name)
        cells = row.locator("td").all_inner_texts()
        # 匹配 3, 确认 3 (on file: no consent asked), 通过 3, 拨付 3, 未通过 0, and the amount paid.
        assert [c.split("\n")[0] for c in cells[2:7]] == ["3", "3", "3", "3", "0"], cells
        assert f"{AMOUNT_FEN * 3 // 100:,}.00元" in cells[7], cells
        page.screenshot(path=SHOTS / "8-performance.png", full_page=True)
        with page.expect_download() as download:
            page.locator("#performance-items + p a", has_text="Excel").click()
        return Path(download.value.path()).read_bytes()

    content = await web.run(performance)
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert rows[0][:7] == ("资金事项", "主管部门", "兑付方式", "匹配企业", "申报或确认", "审核通过", "已拨付办件")
    assert len(rows) == 2  # the filter went with the export
    mine = rows[1]
    assert mine[3:7] == (3, 3, 3, 3) and mine[8] == 3 * AMOUNT_FEN / 100 and mine[2] == "免申即享"
