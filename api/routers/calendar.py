"""Working-day calendar (工作日): loaded years, deadlines, and an administrator's import of a year's notice.

The packaged chinesecalendar data (2004–2026) is seeded on first use; later years come from the State
Council notice (国务院办公厅关于XXXX年部分节假日安排的通知) that an administrator transcribes as JSON or CSV.
A deadline that runs through a year without data counts weekends only and says `provisional: true`.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import SessionDep, require
from api.errors import Invalid, NotFound, error_body
from db.models import CalendarDay, CalendarYear
from db.repositories import calendar as repo
from rules.calendar import NoticeError, WorkCalendar, parse_holiday_notice

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar 工作日"])
Reader = Annotated[Principal, Depends(require("enterprise", "department", "finance"))]
Admin = Annotated[Principal, Depends(require())]  # administrators only

MAX_NOTICE_BYTES = 256 * 1024
MAX_DEADLINE_DAYS = 3660
WEEKDAYS_ZH = "一二三四五六日"

NOTICE_JSON_EXAMPLE = {
    "year": 2027,
    "source": "国办发明电〔2026〕X号",
    "days": [
        {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
        {"date": "2027-02-06", "kind": "workday", "name": "春节"},
        {"date": "2027-02-07", "kind": "holiday", "name": "春节"},
    ],
}
NOTICE_CSV_EXAMPLE = "日期,类型,名称\n2027-01-01,放假,元旦\n2027-02-06,上班,春节\n2027-02-07,放假,春节\n"


class CalendarYearOut(BaseModel):
    year: int
    source: str = Field(description="数据来源：chinesecalendar 版本或通知文号")
    loaded_at: datetime | None
    holidays: int = Field(description="放假日数（含周末放假）")
    workdays: int = Field(description="调休上班日数")


class CalendarDayOut(BaseModel):
    day: date
    weekday: str
    is_workday: bool = Field(description="true 调休上班（班）/ false 放假（休）")
    name: str


class CalendarYearDetail(CalendarYearOut):
    days: list[CalendarDayOut]


class DeadlineOut(BaseModel):
    start: date = Field(description="起算日（不计入）")
    days: int = Field(description="工作日数；负数表示往前数")
    due: date = Field(description="期限日")
    weekday: str
    provisional: bool = Field(description="期限跨入未导入节假日安排的年份时为 true：仅按周末计算，导入该年后重新计算")
    missing_years: list[int] = Field(description="期间内未导入节假日安排的年份")


class ImportOut(BaseModel):
    year: int
    source: str
    days_stored: int
    holidays: int
    workdays: int


def _calendar(session: Session) -> WorkCalendar:
    """The stored calendar; the packaged years are seeded if missing (idempotent, an import always wins)."""
    repo.seed_from_chinese_calendar(session=session)
    return repo.load_calendar(session=session)


def _year_rows(session: Session, years: list[int] | None = None) -> list[CalendarYearOut]:
    year_of = func.extract("year", CalendarDay.day)
    counts: dict[tuple[int, bool], int] = {
        (int(y), bool(w)): int(n)
        for y, w, n in session.execute(
            select(year_of, CalendarDay.is_workday, func.count()).group_by(year_of, CalendarDay.is_workday)
        )
    }
    query = select(CalendarYear).order_by(CalendarYear.year)
    if years is not None:
        query = query.where(CalendarYear.year.in_(years))
    return [
        CalendarYearOut(
            year=row.year,
            source=row.source,
            loaded_at=row.loaded_at,
            holidays=counts.get((row.year, False), 0),
            workdays=counts.get((row.year, True), 0),
        )
        for row in session.scalars(query)
    ]


@router.get("/years", response_model=list[CalendarYearOut])
def list_years(session: SessionDep, principal: Reader) -> list[CalendarYearOut]:
    """Years whose holiday data is loaded (deadlines in other years are provisional)."""
    _calendar(session)
    return _year_rows(session)


@router.get("/years/{year}", response_model=CalendarYearDetail, responses={404: {"description": "该年未导入"}})
def get_year(
    session: SessionDep, principal: Reader, year: Annotated[int, Path(ge=1900, le=2200)]
) -> CalendarYearDetail:
    """The holidays (休) and make-up workdays (班) of one loaded year."""
    cal = _calendar(session)
    rows = _year_rows(session, [year])
    if not rows:
        raise NotFound(f"year：{year} 年的节假日安排尚未导入，该年期限仅按周末计算（临时）", field="year")
    days = [
        CalendarDayOut(day=e.day, weekday=f"星期{WEEKDAYS_ZH[e.day.weekday()]}", is_workday=e.is_workday, name=e.name)
        for e in cal.entries()
        if e.day.year == year
    ]
    return CalendarYearDetail(**rows[0].model_dump(), days=days)


@router.get("/deadline", response_model=DeadlineOut)
def deadline(
    session: SessionDep,
    principal: Reader,
    start: Annotated[date, Query(description="起算日 YYYY-MM-DD（不计入）", examples=["2026-09-30"])],
    days: Annotated[int, Query(ge=-MAX_DEADLINE_DAYS, le=MAX_DEADLINE_DAYS, description="工作日数")],
) -> DeadlineOut:
    """The date `days` working days after `start` (e.g. 2026-09-30 + 5 → 2026-10-13 across National Day)."""
    cal = _calendar(session)
    result = cal.add_working_days(start, days)
    lo, hi = sorted((start.year, result.due.year))
    return DeadlineOut(
        start=start,
        days=days,
        due=result.due,
        weekday=f"星期{WEEKDAYS_ZH[result.due.weekday()]}",
        provisional=result.provisional,
        missing_years=[y for y in range(lo, hi + 1) if not cal.is_loaded(y)],
    )


async def _raw_body(request: Request) -> bytes:
    return await request.body()


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


def notice_problems(exc: NoticeError) -> list[dict[str, Any]]:
    """One error per problem, each naming its row (第N行 / 第N条) when it has one, and the rule it broke."""
    errors = []
    for problem in exc.problems:
        head, sep, _ = problem.partition("：")
        row = head if sep and head.startswith("第") else None
        errors.append({"field": "body", "row": row, "message": problem})
    return errors


@router.put(
    "/years/{year}",
    response_model=ImportOut,
    responses={422: {"description": "导入被拒绝：每条错误写明行号和规则，已有数据不变"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "国务院办公厅节假日安排通知的逐日转录：JSON（列表或含 days 的对象）或 CSV（日期,类型,名称）",
            "content": {
                "application/json": {"example": NOTICE_JSON_EXAMPLE},
                "text/csv": {"example": NOTICE_CSV_EXAMPLE},
            },
        }
    },
)
def import_year(
    session: SessionDep,
    principal: Admin,
    year: Annotated[int, Path(ge=1900, le=2200)],
    raw: Annotated[bytes, Depends(_raw_body)],
    source: Annotated[str | None, Query(max_length=200, description="来源，如通知文号；JSON 也可写在 source")] = None,
) -> Any:
    """Replace one year's holidays and make-up workdays (administrators); nothing is stored if any row is wrong."""
    if len(raw) > MAX_NOTICE_BYTES:
        raise Invalid(f"body：文件过大（{len(raw)} 字节），上限 {MAX_NOTICE_BYTES} 字节", field="body")
    text = decode_notice(raw)
    try:
        entries = parse_holiday_notice(text, year=year)
    except NoticeError as exc:
        return JSONResponse(error_body("invalid", str(exc), notice_problems(exc)), status_code=422)
    label = (source or _declared_source(text) or f"管理员导入（{principal.subject}）").strip()
    repo.seed_from_chinese_calendar(session=session)  # the packaged years first, so an import never blocks them
    try:
        stored = repo.load_year(session=session, year=year, days=entries, source=label)
    except NoticeError as exc:  # pragma: no cover - parse_holiday_notice applies the same rules first
        return JSONResponse(error_body("invalid", str(exc), notice_problems(exc)), status_code=422)
    except ValueError as exc:
        raise Invalid(f"source：{exc}", field="source") from exc
    return ImportOut(
        year=year,
        source=label,
        days_stored=stored,
        holidays=sum(1 for e in entries if not e.is_workday),
        workdays=sum(1 for e in entries if e.is_workday),
    )
