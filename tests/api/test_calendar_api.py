"""The working-day calendar API: loaded years, deadlines (provisional without data), an administrator's import."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.auth import mint
from db.migrate import upgrade
from db.models import AuditRecord, CalendarDay, CalendarYear, Enterprise
from db.repositories import enterprises, fund_items
from db.session import engine_for, transaction
from settings import Settings
from tests.conftest import _drop_postgres_database, _fresh_postgres_database

API = "/api/v1/calendar"
ENTERPRISE = "91420500MA4F000000"
# A transcription of a (future) 2027 notice: New Year, Spring Festival with a make-up Saturday.
NOTICE_2027_CSV = "日期,类型,名称\n2027-01-01,放假,元旦\n2027-02-06,上班,春节\n" + "".join(
    f"2027-02-{d:02d},放假,春节\n" for d in range(7, 14)
)
NOTICE_2027_JSON = {
    "year": 2027,
    "source": "国办发明电〔2026〕7号",
    "days": [
        {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
        {"date": "2027-02-06", "kind": "workday", "name": "春节"},
        *({"date": f"2027-02-{d:02d}", "kind": "holiday", "name": "春节"} for d in range(7, 14)),
    ],
}


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("calendar-api")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'api.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    with transaction(url) as session:  # the callers must exist: a token for an unknown one is refused
        fund_items.add_department(session=session, code="YC-JXJ", name="宜昌市经济和信息化局", region_code="420500")
        enterprises.add(
            session=session, enterprise=Enterprise(uscc=ENTERPRISE, name="宜昌日历测试企业", region_code="420502")
        )
    yield Settings(data_dir=folder, database_url=url, jwt_secret="calendar-test-secret-" + "x" * 24)
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def auth(settings: Settings, role: str, subject: str = "YC-JXJ") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings.jwt_key(), role=role, subject=subject)}"}


def deadline(client: TestClient, settings: Settings, start: str, days: int) -> dict:
    response = client.get(
        f"{API}/deadline", params={"start": start, "days": days}, headers=auth(settings, "department")
    )
    assert response.status_code == 200, response.text
    return response.json()


def stored(settings: Settings) -> tuple[int, list[int]]:
    with transaction(settings.db_url) as session:
        days = session.scalar(select(func.count()).select_from(CalendarDay)) or 0
        years = list(session.scalars(select(CalendarYear.year).order_by(CalendarYear.year)))
    return days, years


def test_years_are_seeded_from_the_package(client: TestClient, settings: Settings) -> None:
    response = client.get(f"{API}/years", headers=auth(settings, "enterprise", ENTERPRISE))
    assert response.status_code == 200
    years = {y["year"]: y for y in response.json()}
    assert set(range(2004, 2027)) <= set(years)
    assert years[2026]["source"].startswith("chinesecalendar")
    assert years[2026]["holidays"] > 20 and years[2026]["workdays"] > 0
    detail = client.get(f"{API}/years/2026", headers=auth(settings, "department")).json()
    national_day = [d for d in detail["days"] if d["day"] == "2026-10-01"]
    assert national_day == [{"day": "2026-10-01", "weekday": "星期四", "is_workday": False, "name": "国庆节"}]
    assert client.get(f"{API}/years").status_code == 401


def test_deadline_across_national_day_2026(client: TestClient, settings: Settings) -> None:
    # 10-01..10-07 off, 10-10 (Saturday) a make-up workday: 09-30 + 5 working days lands on 10-13
    data = deadline(client, settings, "2026-09-30", 5)
    assert data == {
        "start": "2026-09-30",
        "days": 5,
        "due": "2026-10-13",
        "weekday": "星期二",
        "provisional": False,
        "missing_years": [],
    }
    assert deadline(client, settings, "2026-10-13", -5)["due"] == "2026-09-30"


def test_deadline_bad_query_names_the_field(client: TestClient, settings: Settings) -> None:
    headers = auth(settings, "department")
    response = client.get(f"{API}/deadline", params={"start": "2026-02-30", "days": 5}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["field"] == "query.start"
    response = client.get(f"{API}/deadline", params={"start": "2026-01-05", "days": 99999}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["field"] == "query.days"


def test_2027_is_provisional_until_its_notice_is_imported(client: TestClient, settings: Settings) -> None:
    admin = auth(settings, "admin", "root")
    # No 2027 data: weekends only, provisional; 2027-01-01 (a Friday) counts as a workday.
    before = deadline(client, settings, "2026-12-30", 2)
    assert (before["due"], before["provisional"], before["missing_years"]) == ("2027-01-01", True, [2027])
    assert client.get(f"{API}/years/2027", headers=admin).status_code == 404

    # A bad import: every problem names its row and rule, and nothing is stored.
    days_before, years_before = stored(settings)
    bad = (
        "日期,类型,名称\n2027-01-01,放假,元旦\n2027-02-30,放假,春节\n2027-02-08,上班,春节\n"
        "2026-06-01,放假,儿童节\n2027-01-01,上班,元旦\n"
    )
    response = client.put(f"{API}/years/2027", content=bad.encode(), headers={**admin, "Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    errors = response.json()["error"]["errors"]
    rows = {e["row"]: e["message"] for e in errors}
    assert "格式错误" in rows["第3行 (row 3)"]  # 2027-02-30 is no date
    assert "须为周六或周日" in rows["第4行 (row 4)"]  # a make-up workday on a Monday
    assert "不在 2027 年内" in rows["第5行 (row 5)"]
    assert "同一天不能既放假又上班" in rows["第6行 (row 6)"]
    assert stored(settings) == (days_before, years_before)
    assert deadline(client, settings, "2026-12-30", 2)["provisional"] is True

    # Only administrators import.
    forbidden = client.put(f"{API}/years/2027", content=NOTICE_2027_CSV.encode(), headers=auth(settings, "department"))
    assert forbidden.status_code == 403
    assert stored(settings) == (days_before, years_before)

    # A good import (CSV, source as a query parameter): the deadline becomes final and moves past New Year's Day.
    response = client.put(
        f"{API}/years/2027",
        params={"source": "国办发明电〔2026〕7号"},
        content=NOTICE_2027_CSV.encode(),
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "year": 2027,
        "source": "国办发明电〔2026〕7号",
        "days_stored": 9,
        "holidays": 8,
        "workdays": 1,
        "deadlines_moved": [],  # no open stage had a provisional 2027 deadline
    }
    after = deadline(client, settings, "2026-12-30", 2)
    assert (after["due"], after["provisional"], after["missing_years"]) == ("2027-01-04", False, [])
    # 2027-02-05 (Fri) + 1 → the make-up Saturday 02-06; + 2 → 02-15, after the holidays and a Sunday
    assert deadline(client, settings, "2027-02-05", 1)["due"] == "2027-02-06"
    assert deadline(client, settings, "2027-02-05", 2)["due"] == "2027-02-15"
    years = {y["year"]: y for y in client.get(f"{API}/years", headers=admin).json()}
    assert (years[2027]["source"], years[2027]["holidays"], years[2027]["workdays"]) == ("国办发明电〔2026〕7号", 8, 1)

    # Re-import as JSON (GB 18030 is accepted too, as Excel saves it): the year is replaced, the source kept from JSON.
    corrected = json.dumps({**NOTICE_2027_JSON, "days": NOTICE_2027_JSON["days"][:2]}, ensure_ascii=False)
    response = client.put(
        f"{API}/years/2027", content=corrected.encode("gb18030"), headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["source"], response.json()["days_stored"]) == ("国办发明电〔2026〕7号", 2)
    assert deadline(client, settings, "2027-02-05", 2)["due"] == "2027-02-08"
    # Each good import is a configuration change in the audit chain (the refused ones changed nothing).
    with transaction(settings.db_url) as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.subject == "calendar:2027")
                                  .order_by(AuditRecord.seq)).all()  # fmt: skip
    assert [(r.kind, r.actor, r.data["days"]) for r in records] == [("calendar_imported", "admin:root", 9),
                                                                    ("calendar_imported", "admin:root", 2)]  # fmt: skip


def test_import_needs_a_sane_body(client: TestClient, settings: Settings) -> None:
    admin = auth(settings, "admin", "root")
    before = stored(settings)
    empty = client.put(f"{API}/years/2028", content=b"", headers=admin)
    assert empty.status_code == 422
    assert "没有任何日期" in empty.json()["error"]["message"]
    wrong_year = client.put(f"{API}/years/2028", json=NOTICE_2027_JSON, headers=admin)
    assert wrong_year.status_code == 422
    assert any("与导入年份 2028 不符" in e["message"] for e in wrong_year.json()["error"]["errors"])
    assert client.put(f"{API}/years/1800", content=b"x", headers=admin).status_code == 422
    assert stored(settings) == before
