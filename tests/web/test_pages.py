"""The Chinese web pages in a real browser (Debian's chromium): sign-in, 工作台, a case's timeline, payments and
SMS notices, an enterprise's own page, and the Chinese error pages — against the full stack over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from api.auth import mint
from cli.demo import DEMO_ITEM, demo_enterprise_uscc
from db import crypto
from db.models import Enterprise
from db.session import transaction
from schemas.vocabulary import CaseStatus, render_actor
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

pytestmark = pytest.mark.e2e

DEMO_NAME = "宜昌长江精工科技有限公司"
ITEM_NAME = "宜昌市2026年度专精特新中小企业一次性奖励（即申即享）"
KINDS = ["申报受理", "规则核验通过", "预留资金额度", "发送支付指令", "国库支付成功"]


async def _apply_and_pay(web: Web) -> dict:
    """The demo enterprise applies through the API; returns the paid case as the API shows it."""
    uscc = demo_enterprise_uscc()
    headers = web.stack.token("enterprise", uscc)
    r = web.stack.http.post("/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc}, headers=headers)
    assert r.status_code == 201, r.text
    case = await web.stack.wait_status(r.json()["id"], {"paid", "rejected", "payment_failed"}, headers)
    assert case["status"] == "paid", case
    return case


def _enterprise(web: Web, *, demo: bool) -> Enterprise:
    demo_uscc = demo_enterprise_uscc()
    with transaction(web.stack.settings.db_url) as session:
        rows = session.scalars(select(Enterprise).order_by(Enterprise.id)).all()
        found = next(e for e in rows if (e.uscc == demo_uscc) == demo)
        session.expunge(found)
        return found


def _rows(table: Locator) -> list[list[str]]:
    """A table's body rows as cell texts (the header row has th, not td)."""
    return [r.locator("td").all_inner_texts() for r in table.locator("tr").all() if r.locator("td").count()]


def _card_table(page: Page, heading: str) -> Locator:
    return page.locator(".card", has=page.get_by_role("heading", name=heading)).locator("table")


def _assert_cjk_rendered(page: Page, selector: str) -> list[dict]:
    """Chromium's own account of the fonts that drew the node's text: a CJK font drew its glyphs (no tofu)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    cjk = [f for f in fonts if "CJK" in f["familyName"] and f["glyphCount"] > 0]
    assert cjk, f"no CJK font drew {selector!r}: {fonts} (is fonts-noto-cjk installed?)"
    return cjk


async def test_admin_signs_in_and_follows_a_paid_case(web: Web, tmp_path: Path) -> None:
    case = await _apply_and_pay(web)
    case_id = case["id"]
    payment = case["payments"][0]
    assert re.fullmatch(r"\d{4}\*{4}\d{4}", payment["payee_acct_no_masked"])
    enterprise = _enterprise(web, demo=True)
    full_account = crypto.decrypt(web.stack.settings.fernet_key(), enterprise.bank_account_enc)
    admin_token = web.token("admin", "ops")
    screenshot = tmp_path / "case.png"

    def browse(page: Page) -> list[dict]:
        page.goto("/web/")  # not signed in: sent to the login page
        expect(page).to_have_url(re.compile(r"/web/login$"))
        expect(page).to_have_title("登录 · 惠企政策资金直达平台")
        page.get_by_label("访问令牌").fill(admin_token)
        page.get_by_role("button", name="登录").click()

        # 工作台: the fund item with its budget figures, and the case in the list.
        page.wait_for_url(re.compile(r"/web/$"))
        expect(page).to_have_title("工作台 · 惠企政策资金直达平台")
        expect(page.locator("header")).to_contain_text("系统管理员")
        items = _rows(_card_table(page, "资金事项"))
        assert [DEMO_ITEM, ITEM_NAME, "即申即享", "已上架", "5,000,000.00元", "0.00元", "100,000.00元",
                "4,900,000.00元"] in items
        assert {row[2] for row in items} == {"即申即享", "申报审批", "免申即享"}  # one demo item of each mode
        expect(page.locator("p.muted").first).to_contain_text("已拨付 1 件")
        case_rows = _rows(_card_table(page, "办件（最近 100 件）"))
        assert [r[:5] for r in case_rows] == [[str(case_id), DEMO_NAME, ITEM_NAME, "100,000.00元", "已拨付"]]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", case_rows[0][5])

        # Through to the case: status, timeline, the payment with the masked account, the SMS texts.
        page.get_by_role("link", name=str(case_id), exact=True).click()
        page.wait_for_url(re.compile(rf"/web/cases/{case_id}$"))
        expect(page).to_have_title(f"办件 {case_id} · 惠企政策资金直达平台")
        expect(page.get_by_role("heading", level=2)).to_have_text(f"办件 {case_id}：{ITEM_NAME}")
        expect(page.locator("#case-status")).to_have_text("已拨付")
        expect(page.locator(".card").first).to_contain_text("核定金额：100,000.00元　已拨付：100,000.00元")

        timeline = _rows(_card_table(page, "办理过程"))
        assert [r[0] for r in timeline] == ["1", "2", "3", "4", "5"]
        assert [r[2] for r in timeline] == KINDS
        statuses = [CaseStatus.label_of(e["to_status"] or e["from_status"]) for e in case["events"]]
        assert [r[3] for r in timeline] == statuses and timeline[0][3] == "已受理"
        assert timeline[1][3] == "审核通过" and timeline[-1][3] == "已拨付"
        # Actors as people read them: the enterprise by its name, the system's parts by theirs; never a code.
        names = {case["uscc"]: DEMO_NAME}
        assert [r[4] for r in timeline] == [render_actor(e["actor"], names=names) for e in case["events"]]
        assert "系统自动核验" in [r[4] for r in timeline]
        assert not any(":" in r[4] for r in timeline)
        assert case["workflow_id"] not in page.content()
        assert timeline[0][5] == "申报已受理"

        pays = _rows(_card_table(page, "支付指令"))
        assert pays == [
            [
                payment["voucher_no"],
                f"{DEMO_NAME} {payment['payee_acct_no_masked']}",
                "100,000.00元",
                "100,000.00元",
                "已拨付",
                "",
            ]
        ]
        assert full_account not in page.content()  # only the masked account ever reaches the page

        sms = _rows(_card_table(page, "短信通知"))
        assert [r[2] for r in sms] == [n["content"] for n in case["notices"]]
        assert all(r[1].count("*") == 4 for r in sms)
        paid_sms = [r[2] for r in sms if "壹拾万元整" in r[2]]
        assert paid_sms and "100,000.00元" in paid_sms[-1]
        assert "壹拾万元整" in page.inner_text("body")

        page.screenshot(path=screenshot, full_page=True)
        sms_cell = "main .card:last-of-type tr:last-child td:nth-child(3)"
        return [f for sel in ("header strong", "main h2", sms_cell) for f in _assert_cjk_rendered(page, sel)]

    fonts = await web.run(browse)
    assert any("Noto" in f["familyName"] for f in fonts), fonts
    # A full page of drawn Chinese text, not a blank or an error page.
    assert screenshot.stat().st_size > 40_000, screenshot.stat().st_size


async def test_enterprise_sees_only_its_own_page(web: Web) -> None:
    case = await _apply_and_pay(web)
    me = _enterprise(web, demo=True)
    other = _enterprise(web, demo=False)
    token = web.token("enterprise", me.uscc)

    def browse(page: Page) -> None:
        # Signing in lands an enterprise on its own home (企业端).
        sign_in(page, token)
        expect(page).to_have_url(re.compile(r"/web/me$"))
        page.goto(f"/web/enterprises/{me.uscc}")
        expect(page).to_have_title(f"{me.name} · 惠企政策资金直达平台")
        expect(page.get_by_role("heading", level=2)).to_have_text(me.name)
        expect(page.locator("header")).to_contain_text("企业")  # a name, never the USCC, when the token names one
        expect(page.locator("p.muted").first).to_contain_text(
            f"统一社会信用代码 {me.uscc}　联系电话 {me.contact_phone_masked}　收款账户 {me.bank_account_masked}"
        )
        assert _rows(_card_table(page, "我的办件")) == [[str(case["id"]), ITEM_NAME, "100,000.00元", "已拨付"]]
        notices = _rows(_card_table(page, "短信通知"))
        assert sorted(r[1] for r in notices) == sorted(n["content"] for n in case["notices"])
        assert any("壹拾万元整" in r[1] for r in notices)
        assert {r[2] for r in notices} <= {"待发送", "已发送", "已送达"}

        # The home page sends an enterprise to its own home.
        page.goto("/web/")
        expect(page).to_have_url(re.compile(r"/web/me$"))

        # Another enterprise's page is "not found" to it, in Chinese, with nothing of the other enterprise.
        response = page.goto(f"/web/enterprises/{other.uscc}")
        assert response is not None and response.status == 404
        expect(page).to_have_title("出错了 · 惠企政策资金直达平台")
        expect(page.get_by_role("alert")).to_have_text(f"企业 {other.uscc} 不存在")
        assert other.name not in page.content()
        response = page.goto("/web/cases/999999")
        assert response is not None and response.status == 404
        expect(page.get_by_role("alert")).to_have_text("办件 999999 不存在")

        # Its own case opens from its page.
        page.goto(f"/web/enterprises/{me.uscc}")
        page.get_by_role("link", name=str(case["id"]), exact=True).click()
        page.wait_for_url(re.compile(rf"/web/cases/{case['id']}$"))
        expect(page.locator("#case-status")).to_have_text("已拨付")

    await web.run(browse)


async def test_bad_tokens_are_refused_on_the_login_page(web: Web) -> None:
    settings = web.stack.settings
    bad_tokens = {
        "not-a-token": "令牌无效：",
        mint("another-secret-of-at-least-32-bytes!", role="admin", subject="ops"): "令牌无效：签名不符",
        mint(settings.jwt_key(), role="admin", subject="ops", ttl_seconds=-60): "令牌无效：已过期",
        # A valid signature for a department that does not exist proves nothing.
        mint(settings.jwt_key(), role="department", subject="NOPE"): "访问令牌中的主管部门不存在",
    }

    def browse(page: Page) -> None:
        for token, message in bad_tokens.items():
            page.goto("/web/login")
            page.get_by_label("访问令牌").fill(token)
            with page.expect_navigation() as navigation:
                page.get_by_role("button", name="登录").click()
            assert navigation.value is not None and navigation.value.status == 401
            expect(page).to_have_title("登录 · 惠企政策资金直达平台")
            expect(page.get_by_role("alert")).to_contain_text(message)
            assert not [c for c in page.context.cookies() if c["name"] == "zhida_token"]
            # Still signed out: the home page sends the browser back to the login page.
            page.goto("/web/")
            expect(page).to_have_url(re.compile(r"/web/login$"))

    await web.run(browse)
