"""Payout aggregation (奖补汇聚): a file in the data standard is validated per row, refused whole on any error,
deduplicated on re-import; the duplicate-benefit check counts Zhida's paid cases and the imported payouts together."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy.orm import Session

from db.session import engine_for, transaction
from schemas.principal import Principal
from schemas.vocabulary import Role
from services import payouts
from services import scope as scopes
from services.payouts import HEADERS, ImportRefused
from tests.db import cockpit_dataset
from tests.db.cockpit_dataset import Dataset
from tests.factories import fresh_uscc

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data(module_db_url: str) -> Iterator[tuple[str, Dataset, dict[str, str]]]:
    with transaction(module_db_url) as s:
        built = cockpit_dataset.build(s)
        from db.models import Enterprise

        usccs = {k: s.get(Enterprise, built.ids[k]).uscc for k in ("e1", "e2")}  # type: ignore[union-attr]
    yield module_db_url, built, usccs
    engine_for(module_db_url).dispose()


@pytest.fixture
def s(data) -> Iterator[Session]:
    with transaction(data[0]) as session:
        yield session
        session.rollback()


def csv_file(*rows: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADERS, *rows])
    return buffer.getvalue().encode("utf-8-sig")


def finance(s: Session, data) -> scopes.Scope:
    return scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject=data[1].finance_yc))


def test_import_is_validated_deduplicated_and_counted_in_the_duplicate_check(s: Session, data) -> None:
    _, built, usccs = data
    yc = finance(s, data)
    other = fresh_uscc("420502")
    raw = csv_file(
        [usccs["e1"], "宜昌甲公司", "市级技改补贴（线下）", "工业企业技术改造奖补", "50,000.00", "2026-03-15", "宜昌市经济和信息化局", "宜经信〔2026〕12号"],
        [other, "宜昌乙公司", "人才引进补贴", "人才补贴", "8000", "2026/04/01", "宜昌市人社局", "宜人社〔2026〕3号"],
        [other, "宜昌乙公司", "人才引进补贴", "人才补贴", "8000", "2026/04/01", "宜昌市人社局", "宜人社〔2026〕3号"],
    )  # fmt: skip
    first = payouts.import_file(session=s, scope=yc, raw=raw, filename="外部兑付.csv", now=NOW)
    assert (first.rows, first.imported, first.duplicates) == (3, 2, 1)  # the repeated line is one payout
    again = payouts.import_file(session=s, scope=yc, raw=raw, filename="外部兑付.csv", now=NOW)
    assert (again.imported, again.duplicates) == (0, 3)
    (count, fen), rows = payouts.external(session=s, scope=yc)
    assert (count, fen) == (2, 5_800_000) and {r.region_code for r in rows} == {"420500"}
    wh = scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject=built.finance_wh))
    assert payouts.external(session=s, scope=wh)[0] == (0, 0)

    found = payouts.duplicates(session=s, scope=yc)
    assert [(d.uscc, d.purpose, len(d.payouts), d.total_fen) for d in found] == [
        (usccs["e1"], "工业企业技术改造奖补", 2, 15_000_000)  # Zhida's c1 (100,000.00) and the outside 50,000.00
    ]
    assert [p.origin for p in found[0].payouts] == ["外部：宜经信〔2026〕12号", "惠企直达"]
    assert payouts.duplicates(session=s, scope=wh) == []


def test_one_bad_row_refuses_the_whole_file(s: Session, data) -> None:
    _, _, usccs = data
    yc = finance(s, data)
    raw = csv_file(
        [usccs["e2"], "宜昌丙公司", "外部事项", "用途", "1,000.00", "2026-05-01", "某局", "文号1"],
        ["91420500MA0000000X", "宜昌丁公司", "外部事项", "用途", "-5", "2026-02-30", "某局", ""],
    )
    with pytest.raises(ImportRefused) as caught:
        payouts.import_file(session=s, scope=yc, raw=raw, filename="x.csv", now=NOW)
    errors = {(e.row, e.column) for e in caught.value.errors}
    assert errors == {(3, "统一社会信用代码"), (3, "金额（元）"), (3, "拨付日期"), (3, "拨付文件或凭证号")}
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e.message) for e in caught.value.errors)
    assert payouts.external(session=s, scope=yc)[0] == (0, 0)  # nothing half-imported
    with pytest.raises(ImportRefused):
        payouts.import_file(session=s, scope=yc, raw=b"a,b\n1,2\n", filename="x.csv", now=NOW)


def test_excel_files_import_the_same_way(s: Session, data) -> None:
    _, _, usccs = data
    book = Workbook()
    book.active.append(HEADERS)
    book.active.append([usccs["e2"], "宜昌戊公司", "外部事项", "用途", 1234.5, datetime(2026, 6, 1), "某局", "文号2"])
    buffer = io.BytesIO()
    book.save(buffer)
    result = payouts.import_file(session=s, scope=finance(s, data), raw=buffer.getvalue(), filename="a.xlsx", now=NOW)
    assert result.imported == 1
    (_, fen), rows = payouts.external(session=s, scope=finance(s, data))
    assert fen == 123_450 and rows[0].paid_on.isoformat() == "2026-06-01"
