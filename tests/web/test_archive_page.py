"""The archive import and tag pages in a real browser: an administrator uploads a source's file, sees the per-row Chinese
error report of a bad file (downloadable, nothing stored), then imports the fixed file, and the same file again
changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from db.models import Enterprise
from db.session import transaction
from tests.factories import new_enterprise
from tests.web.conftest import Web, sign_in

ONE_ENGINE = "pages over the real server: the services and API beneath them are tested on both engines"

pytestmark = pytest.mark.e2e
SHOTS = Path("reports/screenshots/18")


async def test_admin_imports_a_file_sees_its_errors_and_downloads_the_report(web: Web, tmp_path: Path) -> None:
    with transaction(web.stack.settings.db_url) as s:
        uscc = new_enterprise(s, employees=3).uscc  # stays below every head-count condition
    bad = tmp_path / "社保参保.csv"
    bad.write_text(f"统一社会信用代码,参保人数\n{uscc},五\n{uscc[:-1]},4\n", encoding="utf-8")
    good = tmp_path / "社保参保-修正.csv"
    good.write_text(f"统一社会信用代码,参保人数,数据日期\n{uscc},5,2026-11-30\n", encoding="utf-8")
    token = web.token("admin", "ops")
    SHOTS.mkdir(parents=True, exist_ok=True)

    def browse(page: Page) -> None:
        sign_in(page, token)
        page.goto("/web/archive")
        expect(page).to_have_title(re.compile("^企档数据导入"))
        expect(page.locator("#source-table")).to_contain_text("宜昌市人力资源和社会保障局")
        page.locator("#source").select_option("social")
        page.locator("#file").set_input_files(str(bad))
        page.get_by_role("button", name="上传并导入").click()
        expect(page.locator("#import-summary")).to_contain_text("整份文件未写入", timeout=30_000)
        rows = page.locator("#error-table tr")
        expect(rows.nth(1)).to_contain_text("第 2 行")
        expect(rows.nth(1)).to_contain_text("整数规则")
        expect(rows.nth(2)).to_contain_text("长度规则")
        page.screenshot(path=str(SHOTS / "archive-import-errors.png"), full_page=True)
        with page.expect_download() as info:
            page.locator("#download-report").click()
        report = Path(info.value.path()).read_text(encoding="utf-8-sig")
        assert report.splitlines()[0] == "行号,列,原值,错误说明" and "整数规则" in report

        page.goto("/web/archive")
        page.locator("#source").select_option("social")
        page.locator("#file").set_input_files(str(good))
        page.get_by_role("button", name="上传并导入").click()
        expect(page.locator("#import-summary")).to_contain_text("1 家企业的 1 项数据有变更", timeout=30_000)
        expect(page.locator("#import-status")).to_contain_text("已导入")
        page.screenshot(path=str(SHOTS / "archive-import-done.png"), full_page=True)

        page.goto("/web/archive")
        page.locator("#source").select_option("social")
        page.locator("#file").set_input_files(str(good))
        page.get_by_role("button", name="上传并导入").click()
        expect(page.locator("#duplicate")).to_contain_text("未作任何变更", timeout=30_000)
        page.goto("/web/archive")
        expect(page.locator("#import-table")).to_contain_text("未导入（有错误行）")
        page.screenshot(path=str(SHOTS / "archive-imports.png"), full_page=True)

    await web.run(browse)
    with transaction(web.stack.settings.db_url) as s:
        assert s.query(Enterprise).filter_by(uscc=uscc).one().employees == 5

    def tags(page: Page) -> None:
        """A department defines a tag on the page: the errors named, the preview count, then saved and listed."""
        sign_in(page, web.token("department", "YC-JXJ"))
        page.goto("/web/archive/tags")
        expect(page).to_have_title(re.compile("^企业标签"))
        page.locator("select[name=cond_field]").first.select_option("employees")
        page.locator("select[name=cond_op]").first.select_option("le")
        page.locator("input[name=cond_value]").first.fill("很少")
        page.get_by_role("button", name="保存标签").click()
        errors = page.locator("#form-errors")
        expect(errors).to_contain_text("标签名称：标签名称应为 1–40 个字")
        expect(errors).to_contain_text("条件：")
        expect(errors).to_contain_text("从业人数")
        page.screenshot(path=str(SHOTS / "archive-tag-errors.png"), full_page=True)
        page.locator("#tag-name").fill("小微参保企业")
        page.locator("input[name=cond_value]").first.fill("5")
        page.get_by_role("button", name="预览符合的企业数").click()
        expect(page.locator("#tag-count")).to_contain_text("家企业将带上此标签")
        page.screenshot(path=str(SHOTS / "archive-tag-preview.png"), full_page=True)
        page.get_by_role("button", name="保存标签").click()
        expect(page.locator("#created")).to_contain_text("标签已保存")
        expect(page.locator("#tag-table")).to_contain_text("小微参保企业")
        expect(page.locator("#tag-table")).to_contain_text("从业人数 小于等于 5")
        page.screenshot(path=str(SHOTS / "archive-tags.png"), full_page=True)

    await web.run(tags)
    with transaction(web.stack.settings.db_url) as s:
        assert "小微参保企业" in (s.query(Enterprise).filter_by(uscc=uscc).one().rule_tags or [])
