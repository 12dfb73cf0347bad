"""Every kind of bad cell gets a Chinese error naming its row, column and rule; a bad file stores nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import ArchiveImport, ArchiveValue
from schemas import archive_rows
from schemas.archive_sources import source
from services import archive
from services.errors import Forbidden, Invalid
from tests.archive.support import ADMIN, ENTERPRISE, csv_bytes, json_bytes, xlsx_bytes
from tests.factories import fresh_uscc, new_enterprise

GOOD = "91420500MA4F000017"  # replaced per test by fresh codes; only the shape matters here


def _one_error(source_name: str, header: list[str], row: list[str]) -> archive_rows.RowError:
    parsed = archive_rows.validate(header, [row], source(source_name))
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0]


MARKET = ["uscc", "region_code", "industry_code", "size_class", "registered_on"]


@pytest.mark.parametrize(
    ("cells", "column", "rule"),
    [
        ({"uscc": "9142050012345"}, "统一社会信用代码", "长度规则"),
        ({"uscc": "__bad_check__"}, "统一社会信用代码", "校验码规则"),
        ({"uscc": "9I420500MA4F00001X"}, "统一社会信用代码", "字符规则"),
        ({"region_code": "4205"}, "注册地行政区划代码", "GB/T 2260 规则"),
        ({"region_code": "110101"}, "注册地行政区划代码", "代码表规则"),
        ({"industry_code": "Z12"}, "行业代码", "GB/T 4754-2017 规则"),
        ({"industry_code": "C05"}, "行业代码", "不属于门类 C"),
        ({"size_class": "huge"}, "企业规模", "枚举规则"),
        ({"registered_on": "2026-02-30"}, "成立日期", "日期规则"),
        ({"registered_on": ""}, "成立日期", "必填规则"),
    ],
)
def test_each_market_cell_error_names_row_column_and_rule(cells: dict[str, str], column: str, rule: str) -> None:
    row = {"uscc": fresh_uscc(), "region_code": "420502", "industry_code": "C3484", "size_class": "小型",
           "registered_on": "2015-01-01"} | cells  # fmt: skip
    if row["uscc"] == "__bad_check__":
        good = fresh_uscc()
        row["uscc"] = good[:17] + ("0" if good[17] != "0" else "1")
    error = _one_error("market", MARKET, [row[k] for k in MARKET])
    assert (error.row, error.column) == (2, column)
    assert rule in error.message


@pytest.mark.parametrize(
    ("source_name", "header", "value", "rule"),
    [
        ("tax", ["uscc", "revenue_yuan", "tax_paid_yuan"], ["12.345", "1"], "金额（元）规则"),
        ("tax", ["uscc", "revenue_yuan", "tax_paid_yuan"], ["-5", "1"], "金额（元）规则"),
        ("social", ["uscc", "employees"], ["十二"], "整数规则"),
        ("tech", ["uscc", "tags"], ["高新技术企业；不存在的资质"], "枚举规则"),
        ("tech", ["uscc", "tags", "rd_ratio_percent"], ["专精特新", "3.555"], "百分比规则"),
        ("credit", ["uscc", "credit_status"], ["很好"], "枚举规则"),
        ("credit", ["uscc", "信用状态", "数据日期"], ["良好", "2026/13/01"], "日期规则"),
    ],
)
def test_each_value_kind_error(source_name: str, header: list[str], value: list[str], rule: str) -> None:
    error = _one_error(source_name, header, [fresh_uscc(), *value])
    assert error.row == 2 and rule in error.message


def test_values_are_converted_yuan_to_fen_percent_to_bp_labels_to_values() -> None:
    code = fresh_uscc()
    parsed = archive_rows.validate(["统一社会信用代码", "营业收入（元）", "纳税额（元）"], [[code, "1,234.5", "7"]],
                                   source("tax"))  # fmt: skip
    assert parsed.rows == [(2, code, None, {"revenue_fen": 123450, "tax_paid_fen": 700})]
    tech = archive_rows.validate(["uscc", "tags", "rd_ratio_percent", "data_date"],
                                 [[code, "专精特新、高新技术企业", "3.5", "20261130"]], source("tech"))  # fmt: skip
    assert tech.rows == [(2, code, date(2026, 11, 30), {"tags": ["专精特新", "高新技术企业"], "rd_ratio_bp": 350})]
    credit = archive_rows.validate(["uscc", "credit_status"], [[code, "失信"]], source("credit"))
    assert credit.rows[0][3] == {"credit_status": "dishonest"}


def test_duplicate_uscc_in_one_file_is_an_error() -> None:
    code = fresh_uscc()
    parsed = archive_rows.validate(["uscc", "employees"], [[code, "1"], [code, "2"]], source("social"))
    assert [(e.row, "与第2行重复" in e.message) for e in parsed.errors] == [(3, True)]


def test_file_level_errors_name_the_rule() -> None:
    with pytest.raises(archive_rows.FileError, match="表头规则"):
        archive_rows.validate(["uscc", "employees"], [], source("tax"))  # a column another source owns
    with pytest.raises(archive_rows.FileError, match="缺少必填列"):
        archive_rows.validate(["uscc"], [], source("social"))
    with pytest.raises(archive_rows.FileError, match="文件格式规则"):
        archive_rows.detect_format("data.pdf")


@pytest.mark.parametrize("make", [csv_bytes, xlsx_bytes, json_bytes], ids=["csv", "xlsx", "json"])
def test_every_format_imports(session: Session, make) -> None:
    ent = new_enterprise(session, employees=3)
    ext = {csv_bytes: "csv", xlsx_bytes: "xlsx", json_bytes: "json"}[make]
    data = make(["统一社会信用代码", "参保人数"], [[ent.uscc, 42]])
    result = archive.import_file(session=session, scope=ADMIN, source_name="social", file_name=f"s.{ext}", data=data)
    assert (result.status, result.changed_values) == ("succeeded", 1), result.errors
    session.refresh(ent)
    assert ent.employees == 42


def test_a_bad_row_stores_nothing_and_keeps_the_report(session: Session) -> None:
    people = [new_enterprise(session, employees=1) for _ in range(3)]
    rows = [[p.uscc, 10 + i] for i, p in enumerate(people)] + [[fresh_uscc(), 5], [people[0].uscc[:-1], 1]]
    result = archive.import_file(
        session=session,
        scope=ADMIN,
        source_name="social",
        file_name="s.csv",
        data=csv_bytes(["uscc", "employees"], rows),
    )
    assert result.status == "failed" and result.error_count == 2
    assert [e["row"] for e in result.errors] == [5, 6]
    assert "企业未在企档中登记" in result.errors[0]["message"]
    for p in people:
        session.refresh(p)
        assert p.employees == 1
    assert (
        session.scalar(select(func.count()).select_from(ArchiveValue).where(ArchiveValue.import_id == result.id)) == 0
    )
    report = archive.error_report(session=session, scope=ADMIN, import_id=result.id)
    assert report.startswith("\ufeff行号,列,原值,错误说明") and "企业未在企档中登记" in report


def test_unknown_source_and_callers_are_refused(session: Session) -> None:
    with pytest.raises(Invalid, match="数据来源"):
        archive.import_file(session=session, scope=ADMIN, source_name="weather", file_name="a.csv", data=b"uscc\n")
    with pytest.raises(Forbidden):
        archive.import_file(session=session, scope=ENTERPRISE, source_name="tax", file_name="a.csv", data=b"uscc\n")
    assert session.scalar(select(func.count()).select_from(ArchiveImport).where(ArchiveImport.actor == "x")) == 0


def test_the_fast_uscc_check_agrees_with_the_standard_one() -> None:
    import random

    from schemas import uscc as uscc_rules

    rng = random.Random(5)
    for _ in range(2000):
        code = uscc_rules.generate(rng)
        assert archive_rows.check_uscc(code) == code
        broken = code[:17] + rng.choice([c for c in uscc_rules.ALPHABET if c != code[17]])
        with pytest.raises(ValueError, match="校验码规则"):
            archive_rows.check_uscc(broken)
    assert archive_rows.check_uscc(f" {code[:9]} {code[9:].lower()}") == code  # normalized by the standard path
