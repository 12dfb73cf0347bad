"""Working-day calendar (工作日): statutory holidays (法定节假日) and make-up workdays (调休上班).

Pure and deterministic: workflows never call this directly; an activity computes a deadline and
records it in history. A year without loaded holiday data never raises: weekends alone decide there
and the result is marked provisional, so a case can go on and be recomputed once the year is loaded.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

# chinesecalendar's English holiday names → the names used in State Council notices.
HOLIDAY_NAMES_ZH: dict[str, str] = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}

NAME_MAX_LENGTH = 40  # CalendarDay.name is String(40)

# A notice for year Y may arrange the New Year holiday across the turn of the year (the 2019 notice
# made 2018-12-29 a make-up workday and 2018-12-30/31 holidays), so the last week of Y-1 is allowed.
PREVIOUS_YEAR_SPILL_FROM = (12, 25)


@dataclass(frozen=True)
class Deadline:
    """A working-day deadline; provisional when it crossed a year without loaded holiday data."""

    due: date
    provisional: bool


@dataclass(frozen=True)
class CalendarEntry:
    """One day that differs from the weekend rule: a holiday (休) or a make-up workday (班)."""

    day: date
    is_workday: bool
    name: str = ""


def _require_date(value: object, what: str) -> date:
    """Reject datetimes: a UTC timestamp near midnight would silently pick the wrong Beijing day."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(
            f"{what} 必须是 datetime.date（北京时间的日期）/ {what} must be a date, got {value!r}"
        )
    return value


class WorkCalendar:
    """Working-day arithmetic over holiday data for the years in `loaded_years`."""

    def __init__(
        self, holidays: Mapping[date, str], workdays: Mapping[date, str], loaded_years: Iterable[int]
    ) -> None:
        both = sorted(set(holidays) & set(workdays))
        if both:
            raise ValueError(f"同一天既是放假又是上班 / days both holiday and workday: {both[:5]}")
        self._holidays = MappingProxyType(dict(holidays))
        self._workdays = MappingProxyType(dict(workdays))
        self._loaded = frozenset(int(y) for y in loaded_years)

    @classmethod
    def from_entries(cls, entries: Iterable[CalendarEntry], loaded_years: Iterable[int]) -> WorkCalendar:
        entries = list(entries)
        return cls(
            holidays={e.day: e.name for e in entries if not e.is_workday},
            workdays={e.day: e.name for e in entries if e.is_workday},
            loaded_years=loaded_years,
        )

    @classmethod
    def from_chinese_calendar(cls, years: Iterable[int] = range(2004, 2027)) -> WorkCalendar:
        """The calendar shipped in the chinesecalendar package (2004–2026 in version 1.11)."""
        years = sorted(set(years))
        entries = [e for y in years for e in chinese_calendar_entries(y)]
        return cls.from_entries(entries, years)

    def entries(self) -> list[CalendarEntry]:
        days = [CalendarEntry(d, False, n) for d, n in self._holidays.items()]
        days += [CalendarEntry(d, True, n) for d, n in self._workdays.items()]
        return sorted(days, key=lambda e: e.day)

    def with_year(self, year: int, entries: Iterable[CalendarEntry]) -> WorkCalendar:
        """A copy with `year` replaced by a notice's entries (as the repository's load_year stores it)."""
        entries = list(entries)
        new_days = {e.day for e in entries}
        first, last = replaced_range(year, next_year_loaded=year + 1 in self._loaded)
        kept = [e for e in self.entries() if not first <= e.day <= last and e.day not in new_days]
        return WorkCalendar.from_entries(kept + entries, self._loaded | {year})

    @property
    def holidays(self) -> Mapping[date, str]:
        return self._holidays

    @property
    def workdays(self) -> Mapping[date, str]:
        return self._workdays

    @property
    def loaded_years(self) -> frozenset[int]:
        return self._loaded

    def is_loaded(self, year: int) -> bool:
        return year in self._loaded

    def covers(self, a: date, b: date) -> bool:
        """Whether every year from a to b has holiday data (otherwise results there are provisional)."""
        lo, hi = sorted((a.year, b.year))
        return all(y in self._loaded for y in range(lo, hi + 1))

    def is_workday(self, d: date) -> bool:
        d = _require_date(d, "d")
        if d in self._workdays:
            return True
        return d not in self._holidays and d.weekday() < 5

    def day_name(self, d: date) -> str:
        """The festival a holiday or make-up workday belongs to, '' for an ordinary day."""
        return self._workdays.get(d) or self._holidays.get(d) or ""

    def add_working_days(self, start: date, n: int) -> Deadline:
        """The n-th working day after `start`, which is not counted (as 工作日 limits run); n < 0: before."""
        start = _require_date(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n 必须是整数 / n must be an int, got {n!r}")
        step = timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        d = start
        provisional = False
        while remaining:
            d += step
            if d.year not in self._loaded:
                provisional = True
            if self.is_workday(d):
                remaining -= 1
        return Deadline(due=d, provisional=provisional)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b], negative when b < a; for n ≥ 0 it inverts add_working_days(a, n)."""
        a = _require_date(a, "a")
        b = _require_date(b, "b")
        if b < a:
            return -self.working_days_between(b, a)
        full_weeks, rest = divmod((b - a).days, 7)
        count = full_weeks * 5 + sum(1 for i in range(1, rest + 1) if (a + timedelta(days=i)).weekday() < 5)
        count -= sum(1 for d in self._holidays if a < d <= b and d.weekday() < 5)
        count += sum(1 for d in self._workdays if a < d <= b and d.weekday() >= 5)
        return count


@dataclass(frozen=True)
class StageDeadline:
    """A stage's deadline as moments: due at the end of its last working day (local midnight after it), the
    reminder at 09:00 local of a working day before it (None when none is configured or it has passed)."""

    due_at: datetime
    remind_at: datetime | None
    provisional: bool
    due_day: date


def stage_deadline(
    calendar: WorkCalendar, start: date, days: int, remind_days: int, *, now: datetime, tz: Any
) -> StageDeadline:
    """The deadline of a stage counted from `start` (not counted), as the review activities open it."""
    deadline = calendar.add_working_days(start, days)
    due_at = datetime.combine(deadline.due + timedelta(days=1), time(0), tz)
    remind_at = None
    if remind_days > 0:
        remind_day = calendar.add_working_days(deadline.due, -remind_days).due
        candidate = datetime.combine(remind_day, time(9), tz)
        remind_at = candidate if candidate > now else None
    return StageDeadline(due_at=due_at, remind_at=remind_at, provisional=deadline.provisional, due_day=deadline.due)


def replaced_range(year: int, *, next_year_loaded: bool) -> tuple[date, date]:
    """The days a new notice for `year` replaces; the last December week stays with next year's notice."""
    if next_year_loaded:
        return date(year, 1, 1), date(year, *PREVIOUS_YEAR_SPILL_FROM) - timedelta(days=1)
    return date(year, 1, 1), date(year, 12, 31)


def chinese_calendar_entries(year: int) -> list[CalendarEntry]:
    """The holidays and make-up workdays of `year` from the chinesecalendar package, Chinese names."""
    from chinese_calendar.constants import holidays, workdays

    first, last = min(holidays).year, max(holidays).year
    if not first <= year <= last:
        raise ValueError(
            f"chinesecalendar 没有 {year} 年的数据（仅 {first}–{last} 年），请导入国务院办公厅通知"
            f" / chinesecalendar has no data for {year} (only {first}–{last}); import the notice"
        )
    entries = [
        CalendarEntry(day=d, is_workday=False, name=HOLIDAY_NAMES_ZH.get(name, name))
        for d, name in holidays.items()
        if d.year == year
    ]
    entries += [
        CalendarEntry(day=d, is_workday=True, name=HOLIDAY_NAMES_ZH.get(name, name))
        for d, name in workdays.items()
        if d.year == year
    ]
    return sorted(entries, key=lambda e: e.day)


# --- Import of a State Council notice (国务院办公厅关于XXXX年部分节假日安排的通知) ---------------------


class NoticeError(ValueError):
    """A holiday notice import was rejected; `problems` lists each row and the rule it broke."""

    def __init__(self, year: int, problems: list[str]) -> None:
        self.year = year
        self.problems = problems
        head = f"{year}年节假日安排导入失败 / holiday notice for {year} rejected:"
        super().__init__("\n".join([head, *problems]))


_KINDS = {
    "holiday": False,
    "休": False,
    "放假": False,
    "workday": True,
    "班": True,
    "上班": True,
}
_COLUMNS = {
    "date": "date",
    "日期": "date",
    "kind": "kind",
    "类型": "kind",
    "name": "name",
    "名称": "name",
    "节日": "name",
}
_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_WEEKDAYS_ZH = "一二三四五六日"


def _parse_date(text: str) -> date | None:
    m = _DATE.match(text)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _rows_from_json(data: Any, year: int, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(data, dict):
        declared = data.get("year")
        if declared is not None and declared != year:
            problems.append(
                f"文件声明的年份 {declared} 与导入年份 {year} 不符"
                f" / file says year {declared}, importing {year}"
            )
        data = data.get("days")
    if not isinstance(data, list):
        problems.append(
            '内容应为日期列表，或含 "days" 列表的对象'
            ' / expected a list of days or an object with a "days" list'
        )
        return []
    rows: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(data, start=1):
        label = f"第{i}条 (item {i})"
        if not isinstance(item, dict):
            problems.append(
                f"{label}：应为含 date、kind、name 的对象 / must be an object with date, kind, name"
            )
            continue
        rows.append((label, {_COLUMNS.get(str(k).strip().lower(), str(k)): v for k, v in item.items()}))
    return rows


def _rows_from_csv(text: str, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    records = [(n, r) for n, r in enumerate(reader, start=1) if any(c.strip() for c in r)]
    if not records:
        return []
    columns = ["date", "kind", "name"]
    first = [c.strip().lower() for c in records[0][1]]
    if first and first[0] in _COLUMNS:
        columns = [_COLUMNS.get(c, c) for c in first]
        records = records[1:]
    rows: list[tuple[str, dict[str, Any]]] = []
    for line, record in records:
        label = f"第{line}行 (row {line})"
        if len(record) > len(columns) or len(record) < 2:
            problems.append(
                f"{label}：应有 {len(columns)} 列（日期,类型,名称），实有 {len(record)} 列"
                f" / expected {len(columns)} columns (date,kind,name), got {len(record)}"
            )
            continue
        rows.append((label, dict(zip(columns, (c.strip() for c in record), strict=False))))
    return rows


def parse_holiday_notice(text: str | bytes, *, year: int) -> list[CalendarEntry]:
    """Parse an administrator's structured transcription of the year's notice (JSON or CSV) and validate it.

    Rows are (date, kind, name) with kind "holiday" (放假) or "workday" (调休上班); JSON is a list of
    objects or {"year": Y, "days": [...]}; CSV may start with a header row. Every problem is reported at
    once, each naming the row and the rule, so an administrator can fix the file in one pass.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    text = text.lstrip("\ufeff")
    problems: list[str] = []
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            problem = f"JSON 格式错误（第{exc.lineno}行）/ invalid JSON at line {exc.lineno}: {exc.msg}"
            raise NoticeError(year, [problem]) from exc
        rows = _rows_from_json(data, year, problems)
    else:
        rows = _rows_from_csv(text, problems)

    entries: list[tuple[str, CalendarEntry]] = []
    for label, row in rows:
        raw_date = str(row.get("date") or "").strip()
        day = _parse_date(raw_date)
        if day is None:
            problems.append(
                f"{label}：日期“{raw_date}”格式错误，应为 YYYY-MM-DD"
                f" / bad date {raw_date!r}, expected YYYY-MM-DD"
            )
        raw_kind = str(row.get("kind") or "").strip()
        kind = _KINDS.get(raw_kind.lower())
        if kind is None:
            problems.append(
                f"{label}：类型“{raw_kind}”无效，应为 holiday（放假）或 workday（调休上班）"
                f" / kind {raw_kind!r} must be holiday or workday"
            )
        name = row.get("name")
        name = "" if name is None else str(name).strip()
        if day is not None and kind is not None:
            entries.append((label, CalendarEntry(day=day, is_workday=kind, name=name)))
    problems += _check_entries(year, entries)
    if not rows and not problems:
        problems.append("通知中没有任何日期 / the notice has no days")
    if problems:
        raise NoticeError(year, problems)
    return sorted((e for _, e in entries), key=lambda e: e.day)


def validate_notice_entries(year: int, entries: Iterable[CalendarEntry]) -> list[CalendarEntry]:
    """Apply the notice rules to structured entries (the repository checks before replacing a year)."""
    labelled = [(f"第{i}条 (item {i})", e) for i, e in enumerate(entries, start=1)]
    problems = _check_entries(year, labelled)
    if not labelled:
        problems.append("通知中没有任何日期 / the notice has no days")
    if problems:
        raise NoticeError(year, problems)
    return sorted((e for _, e in labelled), key=lambda e: e.day)


def _check_entries(year: int, entries: list[tuple[str, CalendarEntry]]) -> list[str]:
    problems: list[str] = []
    spill_from = date(year - 1, *PREVIOUS_YEAR_SPILL_FROM)
    seen: dict[date, tuple[str, bool]] = {}
    for label, e in entries:
        if e.day.year != year and not spill_from <= e.day <= date(year - 1, 12, 31):
            problems.append(
                f"{label}：日期 {e.day} 不在 {year} 年内（仅允许上一年12月25日起的元旦调休）"
                f" / date {e.day} is outside {year} (only the last week of {year - 1} is allowed)"
            )
        if e.is_workday and e.day.weekday() < 5:
            problems.append(
                f"{label}：调休上班日 {e.day}（星期{_WEEKDAYS_ZH[e.day.weekday()]}）须为周六或周日"
                f" / make-up workday {e.day} must be a Saturday or Sunday"
            )
        if len(e.name) > NAME_MAX_LENGTH:
            problems.append(
                f"{label}：名称超过 {NAME_MAX_LENGTH} 字 / name longer than {NAME_MAX_LENGTH} characters"
            )
        if e.day in seen:
            other, other_kind = seen[e.day]
            if other_kind != e.is_workday:
                problems.append(
                    f"{label}：{e.day} 与{other}冲突，同一天不能既放假又上班"
                    f" / {e.day} conflicts with {other}: a day cannot be both holiday and workday"
                )
            else:
                problems.append(f"{label}：{e.day} 与{other}重复 / {e.day} duplicates {other}")
        else:
            seen[e.day] = (label, e.is_workday)
    return problems
