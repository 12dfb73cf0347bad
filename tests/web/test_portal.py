"""The enterprise side (企业端) in a real browser against the full stack: an enterprise signs in, sees its matched
policies and a near miss with its 不足之处, applies to an instant item in one click and sees it paid, finds a consent
request on its home page and confirms it, and is refused an application before the window opens — on a 390 px phone
and at 1440 px, without horizontal overflow; screenshots under reports/screenshots/13/."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cli.demo import DEMO_CONFIG, DEMO_ITEM, NO_APPLICATION_ITEM, add_listed_item, demo_enterprise_uscc
from db.models import Campaign, Case, Enterprise, FundItem
from db.session import transaction
from schemas.vocabulary import CaseStatus, ConsentStatus, FundItemMode
from tests.web.conftest import Web, sign_in

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots" / "13"
NEAR_MISS = "YC-T-PORTAL-NEAR"
LATER = "YC-T-PORTAL-LATER"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def _world(web: Web) -> tuple[Enterprise, int]:
    """The demo enterprise, an item it misses by 18 employees, one whose window opens next year, and a consent
    request of the no-application item waiting for its answer."""
    with transaction(web.stack.settings.db_url) as s:
        me = s.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        near = copy.deepcopy(DEMO_CONFIG) | {"name": "宜昌市规上工业企业稳岗奖励（测试，从业人数门槛）"}
        near["conditions"] = {"op": "all", "items": [
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "employees", "op": "ge", "value": me.employees + 18}]}  # fmt: skip
        later = copy.deepcopy(DEMO_CONFIG) | {"name": "宜昌市2099年度专精特新奖励（测试，尚未开始申报）"}
        later["window"] = {"start": "2099-01-02", "end": "2099-03-31"}
        add_listed_item(session=s, code=NEAR_MISS, department_code="YC-JXJ", config=near)
        add_listed_item(session=s, code=LATER, department_code="YC-JXJ", config=later)
        free = s.scalar(select(FundItem).where(FundItem.code == NO_APPLICATION_ITEM))
        campaign = Campaign(workflow_id=f"campaign:portal-test:{me.id}", fund_item_id=free.id, fund_item_version=1,
                            phase="consent", consent_deadline=date.today() + timedelta(days=10),
                            consent_due_at=datetime.now(UTC) + timedelta(days=10))  # fmt: skip
        s.add(campaign)
        s.flush()
        case = Case(fund_item_id=free.id, fund_item_version=1, enterprise_id=me.id, mode=FundItemMode.NO_APPLICATION,
                    status=CaseStatus.CONSENT_PENDING, workflow_id=f"case:portal-test:{me.uscc}", paid_fen=0,
                    amount_fen=2_000_000, campaign_id=campaign.id, consent_status=ConsentStatus.PENDING)  # fmt: skip
        s.add(case)
        s.flush()
        s.expunge(me)
        return me, case.id


def _fits(page: Page, width: int) -> None:
    """Nothing wider than the screen: no horizontal scrolling."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url}: content {scroll}px wide on a {width}px screen"


def _shot(page: Page, name: str, width: int) -> None:
    _fits(page, width)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}-{width}.png", full_page=True)


async def test_an_enterprise_finds_applies_follows_and_confirms_on_a_phone_and_a_desktop(web: Web) -> None:
    me, consent_case = _world(web)
    token = web.token("enterprise", me.uscc)

    def browse(page: Page) -> None:
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            w = size["width"]
            phone = w == PHONE["width"]
            sign_in(page, token)
            expect(page).to_have_url(re.compile(r"/web/me$"))
            expect(page).to_have_title("我的首页 · 惠企政策资金直达平台")
            expect(page.locator("#my-policies")).to_contain_text("宜昌市2026年度专精特新中小企业一次性奖励")
            pending = page.locator("#pending")
            if phone:
                expect(pending).to_contain_text("待确认是否领取")
            _shot(page, "home", w)

            # 政策计算器: the match with its amount, the near miss with by how much it falls short, the calendar.
            page.get_by_role("link", name="政策", exact=True).click()
            expect(page).to_have_title("政策计算器 · 惠企政策资金直达平台")
            matched = page.locator(f'#calculator li[data-code="{DEMO_ITEM}"]')
            expect(matched).to_contain_text("符合")
            expect(matched).to_contain_text("预计 100,000.00元")
            near = page.locator(f'#calculator li[data-code="{NEAR_MISS}"]')
            expect(near).to_contain_text("暂不符合")
            expect(near.locator(".shortfalls")).to_contain_text(f"实际 {me.employees} 人，不足 18 人")
            expect(page.locator("#calendar")).to_contain_text("申报中")
            expect(page.locator("#calendar li").last).to_contain_text("2099-01-02 开始")
            _shot(page, "policies", w)

            # An item whose window has not opened: no apply button, the dates instead.
            page.goto(f"/web/me/policies/{LATER}")
            expect(page.locator("#apply")).to_contain_text("当前不在申报期内")
            expect(page.locator("#apply-button")).to_have_count(0)
            if phone:  # the form posted anyway (an old page, a crafted request): refused with the window's dates
                # the page's own CSRF token rides along, as it would from a stale copy of the page
                csrf = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["X-CSRF-Token"]
                answer = page.request.post(f"/web/me/policies/{LATER}/apply", headers={"X-CSRF-Token": csrf})
                assert answer.ok and "/web/me/policies/" in answer.url, answer.url
                assert "申报尚未开始：申报期为 2099年01月02日 至 2099年03月31日" in answer.text()

            # The instant item: guide (art. 23), service officer, one click, paid within seconds on the case page.
            page.goto(f"/web/me/policies/{DEMO_ITEM}")
            expect(page.locator("#guide")).to_contain_text("申报流程")
            expect(page.locator("#officer")).to_contain_text("王敏")
            if phone:
                page.locator("#apply-button").click()
                page.wait_for_url(re.compile(r"/web/me/cases/\d+$"))
                expect(page.locator("#portal-status")).to_have_text("已拨付", timeout=90_000)
                expect(page.locator(".steps li.done")).to_have_count(5)
                expect(page.locator("#withdraw")).to_have_count(0)  # instant cases cannot be withdrawn
                page.reload()  # the status block follows the case live; the notices are as of the page's load
                expect(page.locator("#case-notices")).to_contain_text("壹拾万元整")
                _shot(page, "case-paid", w)
            else:
                expect(page.locator("#apply")).to_contain_text("已申报")
                page.locator("#apply a").click()
                expect(page.locator("#portal-status")).to_have_text("已拨付")
                _shot(page, "case-paid", w)

            # The consent request, linked from the home page; once confirmed the form and its deadline are gone.
            page.goto("/web/me")
            if phone:
                pending.get_by_role("link", name="去确认").click()
                expect(page).to_have_url(re.compile(rf"/web/cases/{consent_case}/consent$"))
                _shot(page, "consent", w)
                page.locator("#consent-yes").click()
                expect(page.locator("#consent-message")).to_have_text("已提交")
                expect(page.locator("#consent-yes")).to_have_count(0)
                expect(page.locator(".card").first).not_to_contain_text("前确认")
                expect(page.locator("#consent-done")).to_be_visible()
                page.goto("/web/me")
            expect(page.locator("#pending")).not_to_contain_text("待确认是否领取")

            # My enterprise: archive facts read-only, the account masked.
            page.get_by_role("link", name="我的企业").click()
            expect(page.locator("#facts")).to_contain_text("从业人数")
            expect(page.locator("#account-on-file")).to_contain_text(me.bank_account_masked)
            _shot(page, "enterprise", w)

    await web.run(browse)
    with transaction(web.stack.settings.db_url) as s:
        case = s.get(Case, consent_case)
        assert case.consent_status == ConsentStatus.CONFIRMED
