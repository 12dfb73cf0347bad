"""The working-day calendar's API contracts: loaded years, their days, deadlines and imports."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


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


class DeadlineMove(BaseModel):
    """A provisional stage deadline recomputed after a year's holidays were imported; the signal the stage's
    workflow gets carries it whole, so the workflow only moves its timer (the calendar is read outside it)."""

    case_id: int
    workflow_id: str
    stage_key: str
    stage_name: str
    round: int
    departments: list[str]
    old_due_at: datetime
    due_at: datetime
    remind_at: datetime | None = None
    provisional: bool = Field(description="仍跨入其他未导入年份时为 true")


class ImportOut(BaseModel):
    year: int
    source: str
    days_stored: int
    holidays: int
    workdays: int
    deadlines_moved: list[DeadlineMove] = Field(
        default=[], description="因本次导入重新计算的办理期限（原为临时期限的在办环节）"
    )
