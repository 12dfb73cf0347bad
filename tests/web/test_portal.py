"""The enterprise side (企业端) in a real browser against the full stack: an enterprise signs in, sees its matched
policies and a near miss with its 不足之处, applies to an instant item in one click and sees it paid, finds a consent
request on its home page and confirms it, and is refused an application before the window opens — on a 390 px phone
and at 1440 px, without horizontal overflow; screenshots under reports/screenshots/13/."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cli.demo import (
    DEMO_CONFIG,
    DEMO_ITEM,
    NO_APPLICATION_ITEM,
    REVIEW_ITEM,
    add_listed_item,
    demo_enterprise_uscc,
)
from db.models import Campaign, Case, Enterprise, FundItem
from db.session import transaction
from schemas.vocabulary import CaseStatus, ConsentStatus, FundItemMode
from tests.support import eventually
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

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

    await _review_with_materials_and_a_returned_account(web, me, token)


# -- review with materials, 补正, a returned payment, 政策自测 --------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\ntrailer<< /Root 1 0 R >>\n%%EOF\n"
FIX_ITEM = "YC-T-PORTAL-FIX"


async def _progress(web: Web, case_id: int, headers: dict, done) -> dict:
    http = web.stack.http
    response = await eventually(
        lambda: http.get(f"/api/v1/cases/{case_id}/progress", headers=headers),
        lambda r: r.status_code == 200 and done(r.json()),
        what=f"case {case_id}'s progress",
    )
    return response.json()


async def _review_with_materials_and_a_returned_account(web: Web, me: Enterprise, token: str) -> None:
    """A review item applied for with a PDF on a phone; the department asks for 补正 through the API; the enterprise
    answers with a new PDF; the department's review screen lists both and opens them. Then an instant payment comes
    back (wrong account name) and the enterprise corrects the account on the page and is paid. Every page at 390 px
    without horizontal scrolling; the self-test at both sizes."""
    ent = web.stack.token("enterprise", me.uscc)
    jxj = web.stack.token("department", "YC-JXJ")
    with transaction(web.stack.settings.db_url) as s:
        fix = copy.deepcopy(DEMO_CONFIG) | {"name": "宜昌市中小企业数字化转型奖励（测试，退票更正）"}
        add_listed_item(session=s, code=FIX_ITEM, department_code="YC-JXJ", config=fix)

    def apply_review(page: Page) -> int:
        page.set_viewport_size(PHONE)
        sign_in(page, token)
        page.goto(f"/web/me/policies/{REVIEW_ITEM}")
        expect(page.locator("#my-result")).to_contain_text("贵单位符合条件")
        page.locator("#apply-button").click()  # no file chosen: refused before anything is created
        expect(page.locator("#flash")).to_contain_text("本事项须提交申报材料")
        # The file control reads in Chinese (Chromium's own says "Choose Files"), and its label opens the picker.
        picker = page.locator("#apply-form .file-pick")
        expect(picker.locator(".chosen")).to_have_text("未选择文件")
        with page.expect_file_chooser() as chooser:
            picker.get_by_text("选择文件（可多选）").click()
        assert chooser.value.is_multiple()
        assert page.locator("#files").bounding_box()["width"] <= 1  # the English native control is out of sight
        page.set_input_files("#files", files=[{"name": "申请表.docx", "mimeType": "application/pdf",
                                               "buffer": b"PK\x03\x04 a word file"}])  # fmt: skip
        page.locator("#apply-button").click()
        expect(page.locator("#flash")).to_contain_text("“申请表.docx”的文件类型不允许")
        page.set_input_files("#files", files=[{"name": "技术改造项目补贴申请表.pdf", "mimeType": "application/pdf",
                                               "buffer": PDF}])  # fmt: skip
        expect(picker.locator(".chosen")).to_have_text("技术改造项目补贴申请表.pdf")
        _shot(page, "review-apply", PHONE["width"])
        page.locator("#apply-button").click()
        page.wait_for_url(re.compile(r"/web/me/cases/\d+$"))
        expect(page.locator("#materials")).to_contain_text("技术改造项目补贴申请表.pdf")
        expect(page.locator("#materials")).to_contain_text("申报材料 · PDF 文档")
        _shot(page, "review-case", PHONE["width"])
        return int(page.url.rsplit("/", 1)[-1])

    case_id = await web.run(apply_review)
    await _progress(web, case_id, ent, lambda p: (p.get("stage") or {}).get("key") == "completeness")
    returned = await asyncio.to_thread(
        web.stack.http.post, f"/api/v1/cases/{case_id}/decisions", headers=jxj,
        json={"stage_key": "completeness", "decision": "return", "comment": "请补充项目备案证明"},
    )  # fmt: skip
    assert returned.status_code == 200, returned.text
    await _progress(web, case_id, ent, lambda p: p["status"] == CaseStatus.SUPPLEMENT)
    asked = await eventually(
        lambda: web.stack.http.get(f"/api/v1/enterprises/{me.uscc}/notices", headers=ent),
        lambda r: r.status_code == 200 and any("登录平台补正" in n["content"] for n in r.json()),
        what="the 补正 SMS",
    )
    sms = next(n["content"] for n in asked.json() if "登录平台补正" in n["content"])
    sms_day = re.search(r"请于(\d{4}年\d{1,2}月\d{1,2}日)前登录平台补正", sms)
    assert sms_day, sms

    def answer_supplement(page: Page) -> None:
        page.set_viewport_size(PHONE)
        sign_in(page, token)
        expect(page.locator("#pending")).to_contain_text("被退回补正")
        page.locator("#pending").get_by_role("link", name="去补正").click()
        expect(page.locator("#supplement")).to_be_visible()
        # the page states the same last day as the SMS (it showed the next day's 00:00 before)
        expect(page.locator("#case-card")).to_contain_text(f"请于 {sms_day.group(1)}前办理")
        page.locator("#comment").fill("已补充项目备案证明")
        page.set_input_files("#supplement-files", files=[{"name": "项目备案证明.pdf", "mimeType": "application/pdf",
                                                          "buffer": PDF + b"% 2"}])  # fmt: skip
        _shot(page, "supplement", PHONE["width"])
        page.locator("#supplement-button").click()
        expect(page.locator("#flash")).to_have_text("已提交")
        expect(page.locator("#materials")).to_contain_text("项目备案证明.pdf")
        expect(page.locator("#materials")).to_contain_text("补正材料")

    await web.run(answer_supplement)
    await _progress(web, case_id, ent, lambda p: (p.get("stage") or {}).get("key") == "completeness")

    def department_opens_them(page: Page) -> None:
        page.set_viewport_size(DESKTOP)
        sign_in(page, web.token("department", "YC-JXJ"))
        page.goto(f"/web/workbench/cases/{case_id}")
        rows = page.locator("#materials tr")
        expect(rows).to_have_count(3)  # the header, the application's PDF, the 补正 PDF
        expect(page.locator("#materials")).to_contain_text("补正材料")
        _shot(page, "review-screen-materials", DESKTOP["width"])
        with page.expect_download() as download:
            page.locator("#materials a.material-link").first.click()
        assert Path(download.value.path()).read_bytes() == PDF
        assert download.value.suggested_filename == "技术改造项目补贴申请表.pdf"

    await web.run(department_opens_them)

    # An instant payment that comes back: the account name on file is wrong; corrected on the page, paid again.
    with transaction(web.stack.settings.db_url) as s:
        s.get(Enterprise, me.id).bank_account_name = f"{me.name}（错误户名）"

    def correct_account(page: Page) -> int:
        page.set_viewport_size(DESKTOP)
        sign_in(page, token)
        page.goto(f"/web/me/policies/{FIX_ITEM}")
        page.locator("#apply-button").click()
        page.wait_for_url(re.compile(r"/web/me/cases/\d+$"))
        expect(page.locator("#portal-status")).to_have_text("待更正收款账户", timeout=60_000)
        page.reload()
        expect(page.locator("#account")).to_be_visible()
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            _shot(page, "account-returned", size["width"])
        page.locator("#account #acct_no").fill("420500112233445566")
        page.locator("#account #bank_name").fill("中国工商银行宜昌分行营业部")
        page.locator("#account #bank_code").fill("102526000011")
        page.locator("#account button").click()
        expect(page.locator("#flash")).to_have_text("已提交")
        expect(page.locator("#portal-status")).to_have_text("已拨付", timeout=60_000)
        _shot(page, "account-corrected-paid", DESKTOP["width"])
        return int(page.url.split("?")[0].rsplit("/", 1)[-1])

    fixed_case = await web.run(correct_account)
    case = await web.stack.wait_status(fixed_case, {CaseStatus.PAID}, ent)
    assert [p["status"] for p in case["payments"]][-1] == "paid" and len(case["payments"]) == 2

    def self_test(page: Page) -> None:
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            page.goto("/web/login")
            page.locator("#self-test-link").click()
            expect(page).to_have_title("政策自测 · 惠企政策资金直达平台")
            page.locator("#f-region_code").select_option(label="西陵区")
            page.locator("#f-employees").fill(str(me.employees))
            page.locator("#f-revenue_fen").fill("abc")
            page.locator("#self-test-button").click()
            expect(page.locator("#errors")).to_contain_text("营业收入：须为数字")
            page.locator("#f-revenue_fen").fill("")
            page.locator("#self-test-button").click()
            near = page.locator(f'#calculator li[data-code="{NEAR_MISS}"]')
            expect(near.locator(".shortfalls")).to_contain_text(f"实际 {me.employees} 人，不足 18 人")
            _shot(page, "self-test", size["width"])

    await web.run(self_test)
