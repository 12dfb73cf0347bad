"""Working-day calendar: statutory holidays, make-up workdays, unloaded years, notice import."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.calendar import (
    CalendarEntry,
    Deadline,
    NoticeError,
    WorkCalendar,
    chinese_calendar_entries,
    parse_holiday_notice,
    validate_notice_entries,
)

CAL = WorkCalendar.from_chinese_calendar()

# An illustrative 2027 arrangement (not the real notice): New Year's Day 2027-01-01 is a Friday.
NOTICE_2027_CSV = """date,kind,name
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,workday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-20,workday,春节
"""


def naive_between(cal: WorkCalendar, a: date, b: date) -> int:
    lo, hi, sign = (a, b, 1) if a <= b else (b, a, -1)
    return sign * sum(cal.is_workday(lo + timedelta(days=i)) for i in range((hi - lo).days + 1) if i)


# --- statutory holidays and make-up workdays ---------------------------------------------------------------


def test_five_working_days_after_2026_09_30_is_2026_10_13() -> None:
    # 2026-10-01..07 National Day / Mid-autumn; 2026-10-10 (Saturday) is a make-up workday.
    assert CAL.add_working_days(date(2026, 9, 30), 5) == Deadline(date(2026, 10, 13), provisional=False)
    assert chinese_calendar.find_workday(5, date(2026, 9, 30)) == date(2026, 10, 13)


def test_make_up_saturday_and_holiday_weekday() -> None:
    assert CAL.is_workday(date(2026, 10, 10))  # Saturday, 调休上班
    assert not CAL.is_workday(date(2026, 10, 1))  # Thursday, 国庆节
    assert not CAL.is_workday(date(2026, 10, 17))  # ordinary Saturday
    assert CAL.is_workday(date(2026, 10, 8))  # ordinary Thursday
    assert CAL.day_name(date(2026, 10, 10)) == "国庆节"
    assert CAL.day_name(date(2026, 2, 17)) == "春节"
    assert CAL.day_name(date(2026, 3, 17)) == ""


def test_spring_festival_2026() -> None:
    # 2026-02-14 (Saturday) is a make-up workday; 02-15..23 are holidays; 02-28 (Saturday) works.
    assert CAL.add_working_days(date(2026, 2, 13), 1).due == date(2026, 2, 14)
    assert CAL.add_working_days(date(2026, 2, 14), 1).due == date(2026, 2, 24)
    assert CAL.working_days_between(date(2026, 2, 13), date(2026, 2, 28)) == 6  # 14, 24, 25, 26, 27, 28


def test_start_day_is_not_counted_even_on_a_holiday() -> None:
    assert CAL.add_working_days(date(2026, 10, 1), 1).due == date(2026, 10, 8)
    assert CAL.add_working_days(date(2026, 10, 9), 1).due == date(2026, 10, 10)


def test_zero_and_negative_counts() -> None:
    assert CAL.add_working_days(date(2026, 10, 3), 0) == Deadline(date(2026, 10, 3), provisional=False)
    # "List ≥5 working days before the application starts": counting back lands on 2026-09-30.
    assert CAL.add_working_days(date(2026, 10, 13), -5).due == date(2026, 9, 30)
    assert CAL.working_days_between(date(2026, 10, 13), date(2026, 9, 30)) == -5


def test_matches_chinesecalendar_on_every_day() -> None:
    d = date(2004, 1, 1)
    while d <= date(2026, 12, 31):
        assert CAL.is_workday(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


def test_rejects_datetimes_and_non_integer_counts() -> None:
    with pytest.raises(TypeError, match="date"):
        CAL.add_working_days(datetime(2026, 9, 30, 23, 0), 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CAL.add_working_days(date(2026, 9, 30), 2.0)  # type: ignore[arg-type]


def test_a_day_cannot_be_both_holiday_and_workday() -> None:
    with pytest.raises(ValueError, match="既是放假又是上班"):
        WorkCalendar({date(2027, 1, 2): "元旦"}, {date(2027, 1, 2): "元旦"}, {2027})


def test_chinese_calendar_has_no_2027() -> None:
    with pytest.raises(ValueError, match="2027"):
        WorkCalendar.from_chinese_calendar([2027])
    assert {e.name for e in chinese_calendar_entries(2015)} >= {"春节", "抗战胜利70周年纪念日"}


# --- years without data: weekends only, provisional, never raising -------------------------------------------


def test_year_boundary_without_next_year_is_provisional() -> None:
    # 2026-12-25 is a Friday: 28, 29, 30, 31 Dec, then Friday 2027-01-01 counts (no 2027 data).
    deadline = CAL.add_working_days(date(2026, 12, 25), 5)
    assert deadline == Deadline(date(2027, 1, 1), provisional=True)
    assert CAL.add_working_days(date(2026, 12, 30), 1) == Deadline(date(2026, 12, 31), provisional=False)
    assert CAL.add_working_days(date(2026, 12, 31), 1).provisional
    assert not CAL.covers(date(2026, 12, 1), date(2027, 1, 1))


def test_loaded_2027_makes_the_deadline_final() -> None:
    cal = CAL.with_year(2027, parse_holiday_notice(NOTICE_2027_CSV, year=2027))
    assert cal.is_loaded(2027)
    assert cal.add_working_days(date(2026, 12, 25), 5) == Deadline(date(2027, 1, 4), provisional=False)
    assert cal.add_working_days(date(2027, 2, 5), 2) == Deadline(date(2027, 2, 15), provisional=False)
    assert cal.covers(date(2026, 12, 1), date(2027, 1, 1))


def test_far_future_never_raises() -> None:
    deadline = CAL.add_working_days(date(2031, 1, 2), 10)  # Thursday
    assert deadline == Deadline(date(2031, 1, 16), provisional=True)
    assert CAL.working_days_between(date(2030, 1, 1), date(2031, 1, 1)) == 261


def test_counting_back_into_an_unloaded_year_is_provisional() -> None:
    assert CAL.add_working_days(date(2004, 1, 5), -3).provisional
    assert not CAL.add_working_days(date(2004, 1, 9), -3).provisional


@settings(max_examples=300, deadline=None)
@given(
    start=st.dates(min_value=date(2003, 6, 1), max_value=date(2028, 6, 1)),
    n=st.integers(min_value=-60, max_value=60),
)
def test_between_inverts_add(start: date, n: int) -> None:
    deadline = CAL.add_working_days(start, n)
    if n >= 0:
        assert CAL.working_days_between(start, deadline.due) == n
    else:  # counting back, the days counted are [due, start)
        before = deadline.due - timedelta(days=1)
        assert CAL.working_days_between(before, start - timedelta(days=1)) == -n
        assert CAL.is_workday(deadline.due)
    first_counted = start + timedelta(days=1 if n > 0 else -1)
    assert deadline.provisional == (n != 0 and not CAL.covers(first_counted, deadline.due))


@settings(max_examples=200, deadline=None)
@given(
    a=st.dates(min_value=date(2003, 1, 1), max_value=date(2028, 12, 31)),
    span=st.integers(min_value=-800, max_value=800),
)
def test_between_matches_day_by_day_count(a: date, span: int) -> None:
    b = a + timedelta(days=span)
    assert CAL.working_days_between(a, b) == naive_between(CAL, a, b)


# --- importing a State Council notice ---------------------------------------------------------------------


def test_parse_csv_with_header() -> None:
    entries = parse_holiday_notice(NOTICE_2027_CSV, year=2027)
    assert len(entries) == 9
    assert entries[0] == CalendarEntry(date(2027, 1, 1), is_workday=False, name="元旦")
    assert entries[2] == CalendarEntry(date(2027, 2, 7), is_workday=True, name="春节")


def test_parse_excel_csv_with_chinese_header_bom_and_aliases() -> None:
    text = "\ufeff日期,类型,名称\r\n2027/1/1,休,元旦\r\n2027年2月7日,班,春节\r\n\r\n"
    entries = parse_holiday_notice(text.encode("utf-8"), year=2027)
    assert entries == [CalendarEntry(date(2027, 1, 1), False, "元旦"), CalendarEntry(date(2027, 2, 7), True, "春节")]


def test_parse_csv_without_header_and_without_names() -> None:
    assert parse_holiday_notice("2027-01-01,holiday\n", year=2027) == [CalendarEntry(date(2027, 1, 1), False)]


def test_parse_json_list_and_object() -> None:
    days = [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}, {"date": "2027-02-07", "kind": "workday"}]
    assert len(parse_holiday_notice(json.dumps(days), year=2027)) == 2
    wrapped = json.dumps({"year": 2027, "source": "国办发明电〔2026〕X号", "days": days}, ensure_ascii=False)
    assert parse_holiday_notice(wrapped, year=2027)[1].is_workday


def test_new_year_arrangement_may_reach_into_the_previous_december() -> None:
    # The 2019 notice: 2018-12-30..2019-01-01 off, Saturday 2018-12-29 worked.
    text = "2018-12-29,workday,元旦\n2018-12-30,holiday,元旦\n2018-12-31,holiday,元旦\n2019-01-01,holiday,元旦\n"
    entries = parse_holiday_notice(text, year=2019)
    assert entries[0].day == date(2018, 12, 29)
    with pytest.raises(NoticeError, match="不在 2019 年内"):
        parse_holiday_notice("2018-12-01,holiday,元旦\n", year=2019)


def test_date_outside_the_year_names_the_row() -> None:
    with pytest.raises(NoticeError) as err:
        parse_holiday_notice(NOTICE_2027_CSV + "2028-01-01,holiday,元旦\n", year=2027)
    message = str(err.value)
    assert "第11行" in message and "row 11" in message
    assert "不在 2027 年内" in message and "outside 2027" in message
    assert err.value.problems and err.value.year == 2027


def test_a_day_both_holiday_and_workday_is_rejected() -> None:
    with pytest.raises(NoticeError, match="同一天不能既放假又上班") as err:
        parse_holiday_notice("2027-02-06,holiday,春节\n2027-02-06,workday,春节\n", year=2027)
    assert "第2行" in str(err.value) and "第1行" in str(err.value)
    assert "both holiday and workday" in str(err.value)


def test_duplicate_rows_are_rejected() -> None:
    with pytest.raises(NoticeError, match="重复"):
        parse_holiday_notice("2027-01-01,holiday,元旦\n2027-01-01,holiday,元旦\n", year=2027)


def test_make_up_workday_must_be_a_weekend_day() -> None:
    with pytest.raises(NoticeError, match="须为周六或周日") as err:
        parse_holiday_notice("2027-02-08,workday,春节\n", year=2027)
    assert "星期一" in str(err.value) and "Saturday or Sunday" in str(err.value)


def test_every_problem_is_reported_at_once() -> None:
    text = "date,kind,name\n2027-13-01,holiday,x\n2027-01-02,rest,x\n2027-01-03,holiday," + "长" * 41 + "\n1,2,3,4\n"
    with pytest.raises(NoticeError) as err:
        parse_holiday_notice(text, year=2027)
    problems = {p.split("：")[0]: p for p in err.value.problems}
    assert len(err.value.problems) == 4
    assert "YYYY-MM-DD" in problems["第2行 (row 2)"]
    assert "holiday（放假）或 workday（调休上班）" in problems["第3行 (row 3)"]
    assert "40" in problems["第4行 (row 4)"]
    assert "列" in problems["第5行 (row 5)"]


def test_bad_json_and_empty_notices() -> None:
    with pytest.raises(NoticeError, match="JSON"):
        parse_holiday_notice('[{"date": "2027-01-01",', year=2027)
    with pytest.raises(NoticeError, match="没有任何日期"):
        parse_holiday_notice("date,kind,name\n", year=2027)
    with pytest.raises(NoticeError, match="不符"):
        parse_holiday_notice('{"year": 2028, "days": [{"date": "2027-01-01", "kind": "holiday"}]}', year=2027)
    with pytest.raises(NoticeError, match="第1条"):
        parse_holiday_notice('["2027-01-01"]', year=2027)
    with pytest.raises(NoticeError, match="days"):
        parse_holiday_notice('{"year": 2027}', year=2027)


def test_validate_structured_entries() -> None:
    ok = [CalendarEntry(date(2027, 1, 1), False, "元旦")]
    assert validate_notice_entries(2027, ok) == ok
    with pytest.raises(NoticeError, match="第1条"):
        validate_notice_entries(2027, [CalendarEntry(date(2026, 1, 1), False, "元旦")])
    with pytest.raises(NoticeError, match="没有任何日期"):
        validate_notice_entries(2027, [])
