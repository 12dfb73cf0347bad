"""Working-day calendar (工作日) use cases: loaded years, deadlines, and an administrator's import of a year's notice.

The packaged chinesecalendar data (2004–2026) is seeded on first use; later years come from the State Council notice
(国务院办公厅关于XXXX年部分节假日安排的通知) that an administrator transcribes as JSON or CSV. A deadline that runs
through a year without data counts weekends only and says `provisional: true`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError

from db.repositories import calendar as repo
from db.repositories import cases, enterprises, fund_items, notices
from logs import get_logger
from rules.calendar import NoticeError, StageDeadline, WorkCalendar, parse_holiday_notice, stage_deadline
from rules.sms_templates import format_date, render
from schemas.calendar import (
    CalendarDayOut,
    CalendarYearDetail,
    CalendarYearOut,
    DeadlineMove,
    DeadlineOut,
    ImportOut,
)
from schemas.cases import CaseProgress
from schemas.localtime import LOCAL_TZ, to_local
from schemas.principal import Principal
from schemas.vocabulary import ActorKind, AuditKind, Awaiting, CaseStatus, EventKind, Role, actor
from services import audit, scope
from services.errors import Forbidden, Invalid, NotFound
from workflows.review import ReviewCaseWorkflow

log = get_logger(__name__)

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
    moved = recompute_provisional(
        session=session, year=year, source=label, actor=actor(ActorKind.ADMIN, principal.subject)
    )
    # A configuration change that moves working-day deadlines: in the audit chain, in the import's transaction.
    audit.record(session=session, kind=AuditKind.CALENDAR_IMPORTED, actor=principal.actor, subject=f"calendar:{year}",
                 data={"source": label, "days": stored, "holidays": sum(1 for e in entries if not e.is_workday),
                       "deadlines_moved": len(moved)})  # fmt: skip
    return ImportOut(
        year=year,
        source=label,
        days_stored=stored,
        holidays=sum(1 for e in entries if not e.is_workday),
        workdays=sum(1 for e in entries if e.is_workday),
        deadlines_moved=moved,
    )


# -- deadlines that follow the calendar ------------------------------------------------------------------------


def recompute_provisional(
    *, session: Session, year: int, source: str, actor: str, now: datetime | None = None
) -> list[DeadlineMove]:
    """Every open stage deadline that was provisional across `year`, counted again on the stored calendar.

    Run in the import's transaction, after the year is stored: the tasks get the new deadline, the case a
    deadline_moved event (the departments read it in their timeline and task list). The moves are returned for
    the caller to signal to the waiting workflows once committed (signal_moves); the workflows never read the
    calendar themselves.
    """
    now = now or datetime.now(UTC)
    cal = repo.load_calendar(session=session)
    stages: dict[tuple, list] = {}
    for task, workflow_id in repo.open_provisional_tasks(session=session):
        key = (task.case_id, task.stage_key, task.round, task.start_day, task.working_days, task.remind_days or 0)
        stages.setdefault(key, []).append((task, workflow_id))
    moves: list[DeadlineMove] = []
    for (case_id, stage_key, round_, start, days, remind_days), rows in stages.items():
        first, workflow_id = rows[0]
        old_due_at = first.due_at
        if old_due_at is None:
            continue
        old_due_day = (to_local(old_due_at) - timedelta(seconds=1)).date()
        if not start.year <= year <= old_due_day.year:
            continue  # the imported year is not in this deadline's span
        new = stage_deadline(cal, start, days, remind_days, now=now, tz=LOCAL_TZ)
        due_at = new.due_at.astimezone(UTC)
        if due_at == old_due_at and new.provisional:
            continue
        reminded = any(t.reminded_at is not None for t, _ in rows)
        remind_at = None if reminded or new.remind_at is None else new.remind_at.astimezone(UTC)
        repo.move_tasks(session=session, task_ids=[t.id for t, _ in rows], due_at=due_at, provisional=new.provisional)
        departments = [t.department_code for t, _ in rows]
        case = cases.get(session=session, case_id=case_id)
        assert case is not None
        cases.record(
            session=session,
            case=case,
            key=f"deadline_moved:{stage_key}:{round_}:{new.due_day.isoformat()}:{int(new.provisional)}",
            kind=EventKind.DEADLINE_MOVED,
            actor=actor,
            reason=_moved_reason(
                f"{first.stage_name}：导入{year}年节假日安排（{source}）后重新计算办理期限",
                new=new,
                old_due_day=old_due_day,
                unchanged=due_at == old_due_at,
            ),
            data={
                "stage_key": stage_key,
                "round": round_,
                "departments": departments,
                "year": year,
                "old_due_at": old_due_at.isoformat(),
                "due_at": due_at.isoformat(),
                "remind_at": remind_at.isoformat() if remind_at else None,
                "provisional": new.provisional,
            },
        )
        moves.append(
            DeadlineMove(
                case_id=case_id,
                workflow_id=workflow_id,
                stage_key=stage_key,
                stage_name=first.stage_name,
                round=round_,
                departments=departments,
                old_due_at=old_due_at,
                due_at=due_at,
                remind_at=remind_at,
                provisional=new.provisional,
            )
        )
    moves += _recompute_supplements(session=session, cal=cal, year=year, source=source, actor=actor, now=now)
    moves += _recompute_publicity(session=session, cal=cal, year=year, source=source, actor=actor, now=now)
    return moves


def _recompute_publicity(
    *, session: Session, cal: WorkCalendar, year: int, source: str, actor: str, now: datetime
) -> list[DeadlineMove]:
    """Publicity (公示) periods whose end was provisional across `year`: an event, and the move for the workflow's
    publicity timer. (Objection rulings are department tasks: the stage recompute above moves them.)"""
    moves: list[DeadlineMove] = []
    for case, event in repo.open_provisional_publicity(session=session):
        data = event.data or {}
        start, days = date.fromisoformat(data["start_day"]), int(data["working_days"])
        old_due_at = datetime.fromisoformat(data["due_at"])
        old_due_day = (to_local(old_due_at) - timedelta(seconds=1)).date()
        if not start.year <= year <= old_due_day.year:
            continue
        new = stage_deadline(cal, start, days, 0, now=now, tz=LOCAL_TZ)
        due_at = new.due_at.astimezone(UTC)
        if due_at == old_due_at and new.provisional:
            continue
        cases.record(
            session=session,
            case=case,
            key=f"deadline_moved:{CaseStatus.PUBLICITY}:{new.due_day.isoformat()}:{int(new.provisional)}",
            kind=EventKind.DEADLINE_MOVED,
            actor=actor,
            reason=_moved_reason(
                f"公示期：导入{year}年节假日安排（{source}）后重新计算公示截止日",
                new=new,
                old_due_day=old_due_day,
                unchanged=due_at == old_due_at,
            ),
            data={
                "awaiting": CaseStatus.PUBLICITY,
                "stage_key": CaseStatus.PUBLICITY,
                "round": 1,
                "year": year,
                "old_due_at": old_due_at.isoformat(),
                "due_at": due_at.isoformat(),
                "remind_at": None,
                "provisional": new.provisional,
                "start_day": start.isoformat(),
                "working_days": days,
            },
        )
        moves.append(
            DeadlineMove(
                case_id=case.id,
                workflow_id=case.workflow_id,
                stage_key=CaseStatus.PUBLICITY,
                stage_name=CaseStatus.PUBLICITY.label,
                round=1,
                departments=[],
                old_due_at=old_due_at,
                due_at=due_at,
                provisional=new.provisional,
            )
        )
    return moves


def _recompute_supplements(
    *, session: Session, cal: WorkCalendar, year: int, source: str, actor: str, now: datetime
) -> list[DeadlineMove]:
    """The enterprise's supplement (补正) deadlines that were provisional across `year`: an event, and an SMS to
    the enterprise with the new date (it is the party that has to act by then)."""
    moves: list[DeadlineMove] = []
    for case, event in repo.open_provisional_supplements(session=session):
        data = event.data or {}
        start = date.fromisoformat(data["start_day"])
        days, remind_days, times = int(data["working_days"]), int(data.get("remind_days") or 0), int(data["times"])
        old_due_at = datetime.fromisoformat(data["due_at"])
        old_due_day = (to_local(old_due_at) - timedelta(seconds=1)).date()
        if not start.year <= year <= old_due_day.year:
            continue
        new = stage_deadline(cal, start, days, remind_days, now=now, tz=LOCAL_TZ)
        due_at = new.due_at.astimezone(UTC)
        if due_at == old_due_at and new.provisional:
            continue
        reminder_key = f"enterprise_reminder:{Awaiting.SUPPLEMENT}:{times}"
        reminded = any(e.key == reminder_key for e in cases.events(session=session, case_id=case.id))
        remind_at = None if reminded or new.remind_at is None else new.remind_at.astimezone(UTC)
        cases.record(
            session=session,
            case=case,
            key=f"deadline_moved:{Awaiting.SUPPLEMENT}:{times}:{new.due_day.isoformat()}:{int(new.provisional)}",
            kind=EventKind.DEADLINE_MOVED,
            actor=actor,
            reason=_moved_reason(
                f"补正材料：导入{year}年节假日安排（{source}）后重新计算期限",
                new=new,
                old_due_day=old_due_day,
                unchanged=due_at == old_due_at,
            ),
            data={
                "awaiting": Awaiting.SUPPLEMENT,
                "stage_key": data.get("stage_key"),
                "times": times,
                "year": year,
                "old_due_at": old_due_at.isoformat(),
                "due_at": due_at.isoformat(),
                "remind_at": remind_at.isoformat() if remind_at else None,
                "provisional": new.provisional,
                "start_day": start.isoformat(),
                "working_days": days,
                "remind_days": remind_days,
            },
        )
        if due_at != old_due_at:
            _tell_enterprise(session=session, case=case, times=times, due_day=new.due_day)
        moves.append(
            DeadlineMove(
                case_id=case.id,
                workflow_id=case.workflow_id,
                stage_key=Awaiting.SUPPLEMENT,
                stage_name="补正材料",
                round=times,
                departments=[],
                old_due_at=old_due_at,
                due_at=due_at,
                remind_at=remind_at,
                provisional=new.provisional,
            )
        )
    return moves


def _tell_enterprise(*, session: Session, case, times: int, due_day: date) -> None:
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    if enterprise is None or item is None:
        return
    params = {
        "enterprise": enterprise.name,
        "item": item.name,
        "case_no": f"ZD{case.id:010d}",
        "task": "补正材料",
        "deadline": format_date(due_day),
    }
    notices.enqueue(
        session=session,
        dedupe_key=f"case:{case.id}:deadline_moved:{Awaiting.SUPPLEMENT}:{times}:{due_day.isoformat()}",
        enterprise_id=enterprise.id,
        case_id=case.id,
        template_key="deadline_reminder",
        params=params,
        content=render("deadline_reminder", params),
        phone_enc=enterprise.contact_phone_enc,
        phone_masked=enterprise.contact_phone_masked,
        fund_item_id=item.id,
    )


async def signal_moves(*, client: Client, moves: list[DeadlineMove]) -> int:
    """Tell each waiting case workflow its stage's new deadline (after the import committed); returns how many
    were told. A workflow that has ended or moved on ignores a move, so a repeated signal is harmless."""
    told = 0
    for move in moves:
        try:
            await client.get_workflow_handle(move.workflow_id).signal(ReviewCaseWorkflow.move_deadline, move)
            told += 1
        except RPCError as exc:  # ended, or never started: its tasks carry the new deadline all the same
            log.warning("deadline_move_not_signalled", workflow_id=move.workflow_id, error=str(exc))
    return told


# -- repair of a lost move ---------------------------------------------------------------------------------------


def _move_of(case, event) -> DeadlineMove:
    data = event.data or {}
    stage_key = data.get("awaiting") or data["stage_key"]
    return DeadlineMove(
        case_id=case.id,
        workflow_id=case.workflow_id,
        stage_key=stage_key,
        stage_name=str(stage_key),
        round=int(data.get("times") or data.get("round") or 1),
        departments=list(data.get("departments") or []),
        old_due_at=datetime.fromisoformat(data["old_due_at"]),
        due_at=datetime.fromisoformat(data["due_at"]),
        remind_at=datetime.fromisoformat(data["remind_at"]) if data.get("remind_at") else None,
        provisional=bool(data.get("provisional")),
    )


def recorded_moves(*, session: Session) -> list[DeadlineMove]:
    """The last recorded move of every stage, supplement and publicity of the open cases."""
    return [_move_of(case, event) for case, event in repo.latest_moves(session=session)]


def _still_waiting_on_old(progress: CaseProgress, move: DeadlineMove) -> bool:
    """The workflow is waiting on the deadline this move is about, and its timer is not at the moved time."""
    if move.stage_key == Awaiting.SUPPLEMENT:
        waiting = progress.awaiting == Awaiting.SUPPLEMENT and progress.supplements == move.round
    elif move.stage_key == CaseStatus.PUBLICITY:
        waiting = progress.status == CaseStatus.PUBLICITY and progress.awaiting is None
    else:
        stage = progress.stage
        waiting = (
            stage is not None
            and stage.key == move.stage_key
            and stage.round == move.round
            and bool(set(move.departments) & set(stage.departments))  # not a move from before an escalation
        )
    return waiting and progress.deadlines.get(move.stage_key) != move.due_at


async def repair_moves(*, client: Client, moves: list[DeadlineMove]) -> list[DeadlineMove]:
    """Re-send each recorded move whose workflow still counts to the old deadline (its signal was lost: Temporal
    was down during the import, or the signal failed); returns the moves re-sent.

    The database is the truth (the tasks and the deadline_moved event were written in the import's transaction);
    the workflow's `status` query shows the deadline its timer waits for. Where they differ the move is signalled
    again; a workflow that already has it, or has moved on, is left alone, so running this often is harmless.
    It runs after every import (`signal_moves` then this) and as `zhida calendar repair-deadlines`, for a cron or
    an operator after an outage."""
    resent: list[DeadlineMove] = []
    for move in moves:
        try:
            progress = await client.get_workflow_handle(move.workflow_id).query(
                ReviewCaseWorkflow.status, result_type=CaseProgress
            )
        except RPCError as exc:  # ended or unreachable: nothing waits on the old time
            log.info("deadline_repair_skipped", workflow_id=move.workflow_id, error=str(exc)[:200])
            continue
        if _still_waiting_on_old(progress, move):
            await signal_moves(client=client, moves=[move])
            resent.append(move)
    return resent


async def after_import(*, client: Client, db_url: str, moves: list[DeadlineMove]) -> list[DeadlineMove]:
    """After an import committed: signal its moves, then repair any recorded move a workflow missed."""
    from services.uow import UnitOfWork

    if moves:
        await signal_moves(client=client, moves=moves)
    return await repair_moves(client=client, moves=await UnitOfWork(db_url).read(recorded_moves))


def _moved_reason(what: str, *, new: StageDeadline, old_due_day: date, unchanged: bool) -> str:
    """The event text of one recomputed deadline: what was recounted, the old and new day, and whether it is still
    provisional (the same wording for stages, publicity and 补正)."""
    change = (
        f"期限仍为{format_date(new.due_day)}，已确定"
        if unchanged
        else f"期限由{format_date(old_due_day)}调整为{format_date(new.due_day)}"
    )
    return f"{what}，{change}" + ("（仍跨入未导入年份，为临时期限）" if new.provisional else "")
