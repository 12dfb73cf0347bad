"""Working-day calendar (工作日) use cases: loaded years, deadlines, and an administrator's import of a year's notice.

The packaged chinesecalendar data (2004–2026) is seeded on first use; later years come from the State Council notice
(国务院办公厅关于XXXX年部分节假日安排的通知) that an administrator transcribes as JSON or CSV. A deadline that runs
through a year without data counts weekends only and says `provisional: true`.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy.orm import Session

from db.repositories import calendar as repo
from rules.calendar import NoticeError, WorkCalendar, parse_holiday_notice
from schemas.calendar import CalendarDayOut, CalendarYearDetail, CalendarYearOut, DeadlineOut, ImportOut
from schemas.principal import Principal
from schemas.vocabulary import Role
from services import scope
from services.errors import Forbidden, Invalid, NotFound

MAX_NOTICE_BYTES = 256 * 1024
WEEKDAYS_ZH = "一二三四五六日"


def weekday_zh(day: date) -> str:
    """星期一 … 星期日."""
    return f"星期{WEEKDAYS_ZH[day.weekday()]}"


def _calendar(session: Session) -> WorkCalendar:
    """The stored calendar; the packaged years are seeded if missing (idempotent, an import always wins)."""
    repo.seed_from_chinese_calendar(session=session)
    return repo.load_calendar(session=session)


def _years(session: Session, years: list[int] | None = None) -> list[CalendarYearOut]:
    return [
        CalendarYearOut(year=row.year, source=row.source, loaded_at=row.loaded_at, holidays=off, workdays=on)
        for row, off, on in repo.year_rows(session=session, years=years)
    ]


def list_years(*, session: Session, principal: Principal) -> list[CalendarYearOut]:
    """Years whose holiday data is loaded (deadlines in other years are provisional)."""
    scope.resolve(session=session, principal=principal)
    _calendar(session)
    return _years(session)


def get_year(*, session: Session, principal: Principal, year: int) -> CalendarYearDetail:
    """The holidays (休) and make-up workdays (班) of one loaded year."""
    scope.resolve(session=session, principal=principal)
    cal = _calendar(session)
    rows = _years(session, [year])
    if not rows:
        raise NotFound(f"year：{year} 年的节假日安排尚未导入，该年期限仅按周末计算（临时）", field="year")
    days = [
        CalendarDayOut(day=e.day, weekday=weekday_zh(e.day), is_workday=e.is_workday, name=e.name)
        for e in cal.entries()
        if e.day.year == year
    ]
    return CalendarYearDetail(**rows[0].model_dump(), days=days)


def deadline(*, session: Session, principal: Principal, start: date, days: int) -> DeadlineOut:
    """The date `days` working days after `start` (e.g. 2026-09-30 + 5 → 2026-10-13 across National Day)."""
    scope.resolve(session=session, principal=principal)
    cal = _calendar(session)
    result = cal.add_working_days(start, days)
    lo, hi = sorted((start.year, result.due.year))
    return DeadlineOut(
        start=start,
        days=days,
        due=result.due,
        weekday=weekday_zh(result.due),
        provisional=result.provisional,
        missing_years=[y for y in range(lo, hi + 1) if not cal.is_loaded(y)],
    )


def decode_notice(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB 18030 as Excel saves CSV on Chinese Windows."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            raise Invalid("body：文件须为 UTF-8 或 GB18030 编码的 JSON / CSV 文本", field="body") from None


def _declared_source(text: str) -> str | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, str) and source.strip() else None


def import_year(*, session: Session, principal: Principal, year: int, raw: bytes, source: str | None) -> ImportOut:
    """Replace one year's holidays and make-up workdays (administrators); nothing is stored if any row is wrong.

    A notice with wrong rows raises rules.calendar.NoticeError, whose problems name each row.
    """
    if principal.role != Role.ADMIN:
        raise Forbidden("只有系统管理员可以导入节假日安排")
    if len(raw) > MAX_NOTICE_BYTES:
        raise Invalid(f"body：文件过大（{len(raw)} 字节），上限 {MAX_NOTICE_BYTES} 字节", field="body")
    text = decode_notice(raw)
    entries = parse_holiday_notice(text, year=year)
    label = (source or _declared_source(text) or f"管理员导入（{principal.subject}）").strip()
    repo.seed_from_chinese_calendar(session=session)  # the packaged years first, so an import never blocks them
    try:
        stored = repo.load_year(session=session, year=year, days=entries, source=label)
    except NoticeError:  # parse_holiday_notice applies the same rules first; the caller reports its rows
        raise
    except ValueError as exc:  # a source too long for the column
        raise Invalid(f"source：{exc}", field="source") from exc
    return ImportOut(
        year=year,
        source=label,
        days_stored=stored,
        holidays=sum(1 for e in entries if not e.is_workday),
        workdays=sum(1 for e in entries if e.is_workday),
    )
