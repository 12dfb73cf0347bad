"""The enterprise's notice page in a real browser: its SMS with masked phone, Chinese status and Beijing time,
and the switch that refuses policy pushes (case notices stay on), against the full stack over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cli.demo import demo_enterprise_uscc
from db import crypto
from db.models import Enterprise, Notice
from db.session import transaction
from tests.support import eventually
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

pytestmark = pytest.mark.e2e


def _queue(web: Web) -> tuple[Enterprise, str, list[int]]:
    """A case notice and a policy push for the demo enterprise, and one that failed (an empty number)."""
    settings = web.stack.settings
    with transaction(settings.db_url) as s:
        me = s.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        phone = crypto.decrypt(settings.fernet_key(), me.contact_phone_enc)
        base = {"enterprise": me.name, "item": "宜昌市测试事项", "case_no": "ZD0000000009"}
        rows = [
            Notice(dedupe_key="web:received", enterprise_id=me.id, template_key="received", params=base,
                   content=f"【惠企直达】{me.name}：您申报的“宜昌市测试事项”已受理。", category="case",
                   phone_enc=me.contact_phone_enc, phone_masked=me.contact_phone_masked),
            Notice(dedupe_key="web:push", enterprise_id=me.id, template_key="policy_push_listed_free", params=base,
                   content=f"【惠企直达】{me.name}：新上线免申即享政策资金事项“宜昌市测试事项”。拒收请回复R",
                   category="push", phone_enc=me.contact_phone_enc, phone_masked=me.contact_phone_masked),
            Notice(dedupe_key="web:failed", enterprise_id=me.id, template_key="approved", params=base,
                   content=f"【惠企直达】{me.name}：审核通过。", category="case", status="failed",
                   fail_reason="运营商回执：MK:0001（空号）", phone_masked=me.contact_phone_masked),
        ]  # fmt: skip
        s.add_all(rows)
        s.flush()
        s.expunge(me)
        return me, phone, [r.id for r in rows]


async def _delivered(web: Web, ids: list[int]) -> list[Notice]:
    def notices() -> list[Notice]:
        with transaction(web.stack.settings.db_url) as s:
            rows = list(s.scalars(select(Notice).where(Notice.id.in_(ids)).order_by(Notice.id)))
            s.expunge_all()
            return rows

    return await eventually(
        notices,
        lambda rows: all(n.status in ("delivered", "failed") for n in rows),
        what=f"notices {ids} to be delivered or failed",
    )


async def test_enterprise_reads_its_notices_and_refuses_pushes(web: Web) -> None:
    me, phone, ids = _queue(web)
    rows = await _delivered(web, ids)
    token = web.token("enterprise", me.uscc)
    beijing = {n.id: (n.created_at.replace(tzinfo=n.created_at.tzinfo or UTC) + timedelta(hours=8))
               .strftime("%Y-%m-%d %H:%M:%S") for n in rows}  # fmt: skip

    def browse(page: Page) -> None:
        sign_in(page, token)
        page.goto(f"/web/enterprises/{me.uscc}")
        page.get_by_role("link", name="全部短信与政策推送设置").click()
        page.wait_for_url(re.compile(rf"/web/enterprises/{me.uscc}/notices$"))
        expect(page).to_have_title(f"短信通知 · {me.name} · 惠企政策资金直达平台")
        expect(page.get_by_role("heading", level=2)).to_have_text(f"{me.name} · 短信通知")
        table = page.locator("#notice-table")
        body = [r.locator("td").all_inner_texts() for r in table.locator("tr").all() if r.locator("td").count()]
        mine = {r[3].split("\n")[0]: r for r in body}
        received, push, failed = (mine[n.content] for n in rows)
        assert received[:3] == [beijing[ids[0]], "办件通知", me.contact_phone_masked] and received[4] == "已送达"
        assert push[1:3] == ["政策推送", me.contact_phone_masked] and push[4] == "已送达"
        assert failed[1] == "办件通知" and failed[4] == "发送失败\n运营商回执：MK:0001（空号）"
        assert re.fullmatch(r"\d{3}\*{4}\d{4}", me.contact_phone_masked)
        assert phone not in page.content()  # only the masked number reaches the page
        expect(page.locator("#notice-counts")).to_contain_text("发送失败 1 条")
        expect(page.locator("#push-state")).to_have_text("当前：接收中")

        # The switch: refuse pushes, then take them back.
        page.get_by_role("button", name="退订政策推送").click()
        page.wait_for_url(re.compile(r"/notices\?saved=out$"))
        expect(page.get_by_role("status")).to_contain_text("办件进度通知（受理、审核、拨付、退票等）不受影响")
        expect(page.locator("#push-state")).to_contain_text("当前：已退订")
        expect(page.get_by_role("button", name="恢复接收政策推送")).to_be_visible()

    await web.run(browse)
    with transaction(web.stack.settings.db_url) as s:
        e = s.get(Enterprise, me.id)
        assert e.push_opt_out is True and e.push_opted_out_at is not None

    def opt_in(page: Page) -> None:
        sign_in(page, token)
        page.goto(f"/web/enterprises/{me.uscc}/notices")
        page.get_by_role("button", name="恢复接收政策推送").click()
        page.wait_for_url(re.compile(r"/notices\?saved=in$"))
        expect(page.locator("#push-state")).to_have_text("当前：接收中")
        # Another enterprise's notice page is not found for it.
        response = page.goto("/web/enterprises/91420500MA4F0X0X0X/notices")
        assert response is not None and response.status == 404

    await web.run(opt_in)
    with transaction(web.stack.settings.db_url) as s:
        assert s.get(Enterprise, me.id).push_opt_out is False
