"""Every cockpit table exports as Excel and as CSV, and each file reads back with Chinese headers, yuan with two
decimals, Beijing time and, where a voucher is listed, its amount in capitals; the pages show names, never codes."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from services.cockpit_export import CASE_COLUMNS, TABLES
from settings import Settings
from tests.api import cockpit_world
from tests.api.scoping import World, page_headers
from tests.db.cockpit_dataset import Dataset


@pytest.fixture(scope="module")
def built(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, World, Dataset]]:
    yield from cockpit_world.build(db_url, tmp_path_factory.mktemp("cockpit-exports"))


@pytest.fixture(scope="module")
def client(built) -> TestClient:
    return TestClient(create_app(built[0]), follow_redirects=False)


def get(client: TestClient, world: World, path: str, **params: str):
    client.cookies.clear()
    r = client.get(path, params=params, headers=world.headers["finance_yc"])
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("table", sorted(TABLES))
def test_each_table_reads_back_from_xlsx_and_csv(client: TestClient, built, table: str) -> None:
    world = built[1]
    book = load_workbook(io.BytesIO(get(client, world, f"/api/v1/cockpit/exports/{table}", format="xlsx").content))
    sheet = book.active
    xlsx_rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    response = get(client, world, f"/api/v1/cockpit/exports/{table}", format="csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    csv_rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert xlsx_rows[0] == csv_rows[0] and all(re.search(r"[\u4e00-\u9fff]", h) for h in csv_rows[0])
    assert len(xlsx_rows) == len(csv_rows) > 1
    for header, values in zip(csv_rows[0], zip(*csv_rows[1:], strict=True), strict=True):
        if header.endswith("（元）"):
            assert all(v == "" or re.fullmatch(r"-?\d+\.\d{2}", v) for v in values), (header, values)
    for index, header in enumerate(xlsx_rows[0], start=1):
        if header.endswith("（元）") and sheet.max_row > 1:
            assert sheet.cell(row=2, column=index).number_format == "#,##0.00"


def test_the_case_list_names_vouchers_in_capitals_and_beijing_time(client: TestClient, built) -> None:
    world, data = built[1], built[2]
    text = get(client, world, "/api/v1/cockpit/exports/cases", format="csv", status="paid").content.decode("utf-8-sig")
    rows = {r["办件编号"]: r for r in csv.DictReader(io.StringIO(text))}
    assert list(next(iter(rows.values()))) == [h for h, _ in CASE_COLUMNS]
    c1 = rows[str(data.ids["c1"])]
    assert c1["凭证金额（元）"] == "100000.00" and c1["凭证金额大写"] == "壹拾万元整"
    assert c1["支付时间"] == "2026-09-03 10:00:00" and c1["企业所在地区"] == "西陵区" and c1["状态"] == "已拨付"
    c8 = rows[str(data.ids["c8"])]
    assert c8["支付时间"] == "2026-11-01 07:00:00" and c8["凭证金额大写"] == "伍仟元整"
    book = load_workbook(io.BytesIO(get(client, world, "/api/v1/cockpit/exports/budget", format="xlsx").content))
    budget = list(book.active.iter_rows(values_only=True))
    assert budget[1][:4] == ("工业企业技术改造奖补", "市级财政", 2026, 150_000.0)
    assert budget[1][9] == pytest.approx(0.8666)  # 执行率 as a percentage cell


def test_bad_requests_are_refused_in_chinese(client: TestClient, built) -> None:
    world = built[1]
    client.cookies.clear()
    for path, params, field in [
        ("/api/v1/cockpit/exports/nope", {"format": "csv"}, "table"),
        ("/api/v1/cockpit/exports/cases", {"format": "pdf"}, "format"),
        ("/api/v1/cockpit/exports/cases", {"region": "42"}, "region"),
        ("/api/v1/cockpit/exports/cases", {"department_id": "x"}, "department_id"),
    ]:
        r = client.get(path, params=params, headers=world.headers["finance_yc"])
        assert r.status_code in (404, 422), (path, r.text)
        error = r.json()["error"]
        assert error["errors"][0]["field"] == field and re.search(r"[\u4e00-\u9fff]", error["message"])


def test_the_pages_show_figures_by_name(client: TestClient, built) -> None:
    world, data = built[1], built[2]
    token = world.headers["finance_yc"]["Authorization"].removeprefix("Bearer ")
    client.cookies.clear()
    page = client.get("/web/cockpit", headers={"Cookie": f"zhida_token={token}"}).text
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", page, flags=re.S))
    for text in ("财政看板 · 宜昌市", "宜昌市经济和信息化局", "西陵区", "江岸区", "市级财政", "22.70%", "86.66%",
                 "4 个工作日", "0.5 个工作日", "50,000.00元", "收款人户名与账号不符", "关闭告警", "2026-11"):  # fmt: skip
        assert text in visible, text
    for code in (data.dept_a, "420502", "awaiting_correction", "元 元", "POST /api"):
        assert code not in visible, code
    cases = client.get("/web/cockpit/cases?region=420502&size=20", headers={"Cookie": f"zhida_token={token}"}).text
    assert "共 3 件" in cases and "西陵区" in cases
    payouts_page = client.get("/web/cockpit/payouts", headers={"Cookie": f"zhida_token={token}"}).text
    assert "重复享受核查（1 家企业）" in payouts_page and "宜经信〔2026〕12号" in payouts_page
    refused = client.get("/web/cockpit/cases?region=42", headers={"Cookie": f"zhida_token={token}"})
    assert refused.status_code == 422 and "行政区划代码" in refused.text


def test_payouts_are_imported_on_the_page(client: TestClient, built) -> None:
    """A refused file lists every bad row and stores nothing; a good one is imported once, however often sent."""
    world = built[1]
    from services.payouts import HEADERS

    cookie = page_headers(world, "finance_yc")
    good = [world.ids["uscc_b"], "武汉乙公司", "外部事项", "外部用途", "1,000.00", "2026-05-01", "某局", "文号P1"]
    bad = ["123", "某公司", "外部事项", "外部用途", "abc", "2026-05-01", "某局", "文号P2"]

    def upload(*rows: list[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerows([HEADERS, *rows])
        files = {"file": ("外部兑付.csv", buffer.getvalue().encode("utf-8-sig"), "text/csv")}
        client.cookies.clear()
        r = client.post("/web/cockpit/payouts", files=files, headers=cookie)
        assert r.status_code in (200, 422), r.text
        return r.text

    refused = upload(good, bad)
    assert "未导入任何数据" in refused and "统一社会信用代码应为18位" in refused and "金额格式不正确" in refused
    assert "文号P1" not in refused.split('id="external-list"')[1]
    assert "已导入 1 行" in upload(good)
    assert "已导入 0 行" in upload(good) and "1 行此前已导入" in upload(good)
