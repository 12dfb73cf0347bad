"""Holiday data in the database: seeding, an administrator's notice import, loading the calendar."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CalendarDay, CalendarYear
from db.repositories import calendar as repo
from rules.calendar import CalendarEntry, Deadline, NoticeError, WorkCalendar, parse_holiday_notice

NOTICE_2027 = "2027-01-01,holiday,元旦\n2027-02-07,workday,春节\n2027-02-08,holiday,春节\n"


def _days(session: Session, year: int) -> list[tuple[date, bool, str]]:
    rows = session.execute(
        select(CalendarDay.day, CalendarDay.is_workday, CalendarDay.name)
        .where(CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31)))
        .order_by(CalendarDay.day)
    )
    return [tuple(r) for r in rows]


def test_seed_is_idempotent_and_matches_the_package(session: Session) -> None:
    added = repo.seed_from_chinese_calendar(session=session)
    assert added > 500
    assert repo.seed_from_chinese_calendar(session=session) == 0
    assert repo.loaded_years(session=session) == list(range(2004, 2027))
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == added
    source = session.scalar(select(CalendarYear.source).where(CalendarYear.year == 2026))
    assert source.startswith("chinesecalendar ")

    cal = repo.load_calendar(session=session)
    packaged = WorkCalendar.from_chinese_calendar()
    assert cal.entries() == packaged.entries()
    assert cal.loaded_years == packaged.loaded_years
    assert cal.add_working_days(date(2026, 9, 30), 5) == Deadline(date(2026, 10, 13), provisional=False)


def test_seed_only_some_years(session: Session) -> None:
    repo.seed_from_chinese_calendar(session=session, years=[2026])
    assert repo.loaded_years(session=session) == [2026]
    assert repo.seed_from_chinese_calendar(session=session, years=[2025, 2026]) > 0
    assert repo.loaded_years(session=session) == [2025, 2026]


def test_empty_database_gives_a_provisional_calendar(session: Session) -> None:
    cal = repo.load_calendar(session=session)
    assert repo.loaded_years(session=session) == []
    assert cal.add_working_days(date(2026, 9, 30), 5) == Deadline(date(2026, 10, 7), provisional=True)


def test_loading_2027_makes_year_end_deadlines_final(session: Session) -> None:
    repo.seed_from_chinese_calendar(session=session, years=[2026])
    before = repo.load_calendar(session=session).add_working_days(date(2026, 12, 25), 5)
    assert before == Deadline(date(2027, 1, 1), provisional=True)

    stored = repo.load_year(
        session=session, year=2027, days=parse_holiday_notice(NOTICE_2027, year=2027), source="国办发明电〔2026〕X号"
    )
    assert stored == 3
    assert repo.loaded_years(session=session) == [2026, 2027]
    cal = repo.load_calendar(session=session)
    assert cal.add_working_days(date(2026, 12, 25), 5) == Deadline(date(2027, 1, 4), provisional=False)
    assert cal.is_workday(date(2027, 2, 7))


def test_reimport_replaces_the_year(session: Session) -> None:
    repo.load_year(session=session, year=2027, days=parse_holiday_notice(NOTICE_2027, year=2027), source="初稿")
    corrected = [CalendarEntry(date(2027, 1, 1), False, "元旦"), CalendarEntry(date(2027, 2, 9), False, "春节")]
    repo.load_year(session=session, year=2027, days=corrected, source="更正")
    assert _days(session, 2027) == [(date(2027, 1, 1), False, "元旦"), (date(2027, 2, 9), False, "春节")]
    assert session.scalar(select(CalendarYear.source).where(CalendarYear.year == 2027)) == "更正"


def test_import_overrides_seeded_year(session: Session) -> None:
    repo.seed_from_chinese_calendar(session=session, years=[2026])
    repo.load_year(session=session, year=2026, days=[CalendarEntry(date(2026, 1, 1), False, "元旦")], source="x")
    assert _days(session, 2026) == [(date(2026, 1, 1), False, "元旦")]
    assert repo.seed_from_chinese_calendar(session=session, years=[2026]) == 0  # the import wins
    assert _days(session, 2026) == [(date(2026, 1, 1), False, "元旦")]


def test_previous_december_days_of_a_notice(session: Session) -> None:
    notice = "2018-12-29,workday,元旦\n2018-12-30,holiday,元旦\n2018-12-31,holiday,元旦\n2019-01-01,holiday,元旦\n"
    repo.load_year(session=session, year=2019, days=parse_holiday_notice(notice, year=2019), source="2019 notice")
    # Seeding 2018 later must not collide with the December days the 2019 notice stored.
    assert repo.seed_from_chinese_calendar(session=session, years=[2018]) > 0
    cal = repo.load_calendar(session=session)
    assert cal.is_workday(date(2018, 12, 29)) and not cal.is_workday(date(2018, 12, 31))
    assert cal.add_working_days(date(2018, 12, 28), 1) == Deadline(date(2018, 12, 29), provisional=False)


def test_reimporting_a_year_keeps_next_years_new_year_days(session: Session) -> None:
    notice = "2018-12-29,workday,元旦\n2018-12-30,holiday,元旦\n2018-12-31,holiday,元旦\n2019-01-01,holiday,元旦\n"
    repo.load_year(session=session, year=2019, days=parse_holiday_notice(notice, year=2019), source="2019 notice")
    repo.load_year(session=session, year=2018, days=[CalendarEntry(date(2018, 1, 1), False, "元旦")], source="x")
    assert _days(session, 2018) == [
        (date(2018, 1, 1), False, "元旦"),
        (date(2018, 12, 29), True, "元旦"),
        (date(2018, 12, 30), False, "元旦"),
        (date(2018, 12, 31), False, "元旦"),
    ]
    # Without 2019 loaded, the whole of 2018 is replaced.
    repo.load_year(session=session, year=2020, days=[CalendarEntry(date(2020, 1, 1), False, "元旦")], source="x")
    repo.load_year(session=session, year=2020, days=[CalendarEntry(date(2020, 1, 2), False, "测试")], source="y")
    assert _days(session, 2020) == [(date(2020, 1, 2), False, "测试")]
    cal = repo.load_calendar(session=session)
    expected = WorkCalendar({}, {}, []).with_year(2019, parse_holiday_notice(notice, year=2019))
    expected = expected.with_year(2018, [CalendarEntry(date(2018, 1, 1), False, "元旦")])
    expected = expected.with_year(2020, [CalendarEntry(date(2020, 1, 2), False, "测试")])
    assert cal.entries() == expected.entries()


def test_rejected_import_changes_nothing(session: Session) -> None:
    repo.seed_from_chinese_calendar(session=session, years=[2026])
    before = _days(session, 2026)
    bad = [CalendarEntry(date(2026, 1, 1), False, "元旦"), CalendarEntry(date(2026, 1, 1), True, "元旦")]
    with pytest.raises(NoticeError, match="第2条"):
        repo.load_year(session=session, year=2026, days=bad, source="x")
    with pytest.raises(ValueError, match="来源"):
        repo.load_year(session=session, year=2026, days=bad[:1], source=" ")
    assert _days(session, 2026) == before
    assert session.scalar(select(CalendarYear.source).where(CalendarYear.year == 2026)).startswith("chinese")


def test_failure_inside_the_replacement_rolls_back_to_the_previous_data(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.seed_from_chinese_calendar(session=session, years=[2026])
    before = _days(session, 2026)
    original = session.execute

    def failing_execute(statement: object, *args: object, **kwargs: object) -> object:
        if getattr(statement, "is_insert", False) and args:
            raise RuntimeError("disk full")
        return original(statement, *args, **kwargs)

    monkeypatch.setattr(session, "execute", failing_execute)
    with pytest.raises(RuntimeError):
        repo.load_year(session=session, year=2026, days=[CalendarEntry(date(2026, 1, 1), False, "元旦")], source="x")
    monkeypatch.undo()
    assert _days(session, 2026) == before
