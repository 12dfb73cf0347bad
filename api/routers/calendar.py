"""Working-day calendar (工作日): the HTTP face of services/calendar.py (loaded years, deadlines, notice import)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from api.deps import SessionDep, require
from api.errors import error_body
from rules.calendar import NoticeError
from schemas.calendar import CalendarYearDetail, CalendarYearOut, DeadlineOut, ImportOut
from schemas.principal import Principal
from schemas.text import Day
from schemas.vocabulary import Role
from services import calendar as service

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar 工作日"])
Reader = Annotated[Principal, Depends(require(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]
Admin = Annotated[Principal, Depends(require())]  # administrators only

MAX_DEADLINE_DAYS = 3660

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


@router.get("/years", response_model=list[CalendarYearOut])
def list_years(session: SessionDep, principal: Reader) -> list[CalendarYearOut]:
    """Years whose holiday data is loaded (deadlines in other years are provisional)."""
    return service.list_years(session=session, principal=principal)


@router.get("/years/{year}", response_model=CalendarYearDetail, responses={404: {"description": "该年未导入"}})
def get_year(
    session: SessionDep, principal: Reader, year: Annotated[int, Path(ge=1900, le=2200)]
) -> CalendarYearDetail:
    """The holidays (休) and make-up workdays (班) of one loaded year."""
    return service.get_year(session=session, principal=principal, year=year)


@router.get("/deadline", response_model=DeadlineOut)
def deadline(
    session: SessionDep,
    principal: Reader,
    start: Annotated[Day, Query(description="起算日 YYYY-MM-DD（不计入），1900–2200 年", examples=["2026-09-30"])],
    days: Annotated[int, Query(ge=-MAX_DEADLINE_DAYS, le=MAX_DEADLINE_DAYS, description="工作日数")],
) -> DeadlineOut:
    """The date `days` working days after `start` (e.g. 2026-09-30 + 5 → 2026-10-13 across National Day)."""
    return service.deadline(session=session, principal=principal, start=start, days=days)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


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
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    principal: Admin,
    year: Annotated[int, Path(ge=1900, le=2200)],
    raw: Annotated[bytes, Depends(_raw_body)],
    source: Annotated[str | None, Query(max_length=200, description="来源，如通知文号；JSON 也可写在 source")] = None,
) -> Any:
    """Replace one year's holidays and make-up workdays (administrators); nothing is stored if any row is wrong.

    Open stage deadlines that were provisional for the year are recomputed in the same transaction; their
    workflows are told after it committed (a background task runs after the response, so after the commit)."""
    try:
        out = service.import_year(session=session, principal=principal, year=year, raw=raw, source=source)
    except NoticeError as exc:
        return JSONResponse(error_body("invalid", str(exc), notice_problems(exc)), status_code=422)
    client = request.app.state.temporal
    if client is not None:  # also re-sends moves of earlier imports whose signal was lost (service.after_import)
        background.add_task(
            service.after_import, client=client, db_url=request.app.state.settings.db_url, moves=out.deadlines_moved
        )
    return out
