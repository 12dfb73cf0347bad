"""Review work: department tasks (待办), real-name objections (异议) and payment returns (退票)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Case, CaseObjection, CaseTask, PaymentReturn
from schemas.vocabulary import ObjectionStatus, TaskStatus

# -- tasks ---------------------------------------------------------------------------------------------------


def open_tasks(
    *,
    session: Session,
    case_id: int,
    stage_key: str,
    stage_name: str,
    round_: int,
    departments: list[str],
    due_at: datetime | None,
    provisional: bool,
    start_day: date | None = None,
    working_days: int | None = None,
    remind_days: int | None = None,
) -> list[CaseTask]:
    """One open task per department for the stage round; a retry finds the rows it made.

    start_day / working_days / remind_days say what the deadline was counted from, for the recompute once a
    provisional year's holidays are imported."""
    out = []
    for code in departments:
        task = task_for(session=session, case_id=case_id, stage_key=stage_key, round_=round_, department=code)
        if task is None:
            task = CaseTask(
                case_id=case_id,
                stage_key=stage_key,
                stage_name=stage_name,
                round=round_,
                department_code=code,
                status=TaskStatus.OPEN,
                due_at=due_at,
                provisional=provisional,
                start_day=start_day,
                working_days=working_days,
                remind_days=remind_days,
            )
            session.add(task)
        out.append(task)
    session.flush()
    return out


def task_for(*, session: Session, case_id: int, stage_key: str, round_: int, department: str) -> CaseTask | None:
    return session.scalar(
        select(CaseTask).where(
            CaseTask.case_id == case_id,
            CaseTask.stage_key == stage_key,
            CaseTask.round == round_,
            CaseTask.department_code == department,
        )
    )


def decide_task(
    *,
    session: Session,
    case_id: int,
    stage_key: str,
    round_: int,
    department: str,
    decision: str,
    actor: str,
    comment: str,
) -> CaseTask | None:
    task = task_for(session=session, case_id=case_id, stage_key=stage_key, round_=round_, department=department)
    if task is not None and task.status == TaskStatus.OPEN:
        task.status = TaskStatus.DONE
        task.decision = decision
        task.actor = actor
        task.comment = comment
        task.decided_at = datetime.now(UTC)
        session.flush()
    return task


def mark_reminded(*, session: Session, case_id: int, stage_key: str, round_: int) -> None:
    session.execute(
        update(CaseTask)
        .where(
            CaseTask.case_id == case_id,
            CaseTask.stage_key == stage_key,
            CaseTask.round == round_,
            CaseTask.status == TaskStatus.OPEN,
        )
        .values(reminded_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


def close_open_tasks(
    *, session: Session, case_id: int, status: str = TaskStatus.CLOSED, stage_key: str | None = None, round_: int | None = None
) -> int:
    """End the open tasks of a case (or of one stage round): the stage closed, timed out or the case ended."""
    stmt = update(CaseTask).where(CaseTask.case_id == case_id, CaseTask.status == TaskStatus.OPEN)
    if stage_key is not None:
        stmt = stmt.where(CaseTask.stage_key == stage_key)
    if round_ is not None:
        stmt = stmt.where(CaseTask.round == round_)
    result = session.execute(stmt.values(status=status).execution_options(synchronize_session=False))
    return result.rowcount or 0


def tasks_for_department(*, session: Session, department: str, status: str | None = TaskStatus.OPEN) -> list[CaseTask]:
    """A department's work list, the most urgent first."""
    stmt = select(CaseTask).where(CaseTask.department_code == department)
    if status:
        stmt = stmt.where(CaseTask.status == status)
    return list(session.scalars(stmt.order_by(CaseTask.due_at.is_(None), CaseTask.due_at, CaseTask.id)))


def tasks_for_case(*, session: Session, case_id: int) -> list[CaseTask]:
    return list(session.scalars(select(CaseTask).where(CaseTask.case_id == case_id).order_by(CaseTask.id)))


# -- objections ----------------------------------------------------------------------------------------------


def add_objection(
    *,
    session: Session,
    case: Case,
    objector_name: str,
    id_number_enc: str,
    id_number_masked: str,
    phone_enc: str | None,
    evidence: str,
    objector_name_enc: str | None = None,
) -> CaseObjection:
    """`objector_name` is what pages show (masked when `objector_name_enc` holds the full name)."""
    objection = CaseObjection(
        case_id=case.id,
        objector_name=objector_name,
        objector_name_enc=objector_name_enc,
        id_number_enc=id_number_enc,
        id_number_masked=id_number_masked,
        phone_enc=phone_enc,
        evidence=evidence,
        status=ObjectionStatus.OPEN,
    )
    session.add(objection)
    session.flush()
    return objection


def get_objection(*, session: Session, objection_id: int) -> CaseObjection | None:
    return session.get(CaseObjection, objection_id)


def rule_objection(
    *, session: Session, objection_id: int, uphold: bool, department: str, actor: str, comment: str
) -> CaseObjection | None:
    objection = get_objection(session=session, objection_id=objection_id)
    if objection is not None and objection.status == ObjectionStatus.OPEN:
        objection.status = ObjectionStatus.UPHELD if uphold else ObjectionStatus.DISMISSED
        objection.ruling_department = department
        objection.ruling_actor = actor
        objection.ruling_comment = comment
        objection.ruled_at = datetime.now(UTC)
        session.flush()
    return objection


def objections_for_case(*, session: Session, case_id: int) -> list[CaseObjection]:
    return list(
        session.scalars(select(CaseObjection).where(CaseObjection.case_id == case_id).order_by(CaseObjection.id))
    )


# -- returns -------------------------------------------------------------------------------------------------


def record_return(
    *,
    session: Session,
    voucher_no: str,
    case_id: int,
    attempt: int,
    kind: str,
    reason: str | None,
    amount_fen: int,
    returned_on: date,
    budget_year: int,
    handling: str,
) -> tuple[PaymentReturn, bool]:
    """One row per voucher and kind; a retry returns the first row unchanged."""
    existing = session.scalar(
        select(PaymentReturn).where(PaymentReturn.voucher_no == voucher_no, PaymentReturn.kind == kind)
    )
    if existing:
        return existing, False
    row = PaymentReturn(
        voucher_no=voucher_no,
        case_id=case_id,
        attempt=attempt,
        kind=kind,
        reason=reason,
        amount_fen=amount_fen,
        returned_on=returned_on,
        budget_year=budget_year,
        cross_year=returned_on.year > budget_year,
        handling=handling,
    )
    session.add(row)
    session.flush()
    return row, True


def returns_for_case(*, session: Session, case_id: int) -> list[PaymentReturn]:
    return list(
        session.scalars(select(PaymentReturn).where(PaymentReturn.case_id == case_id).order_by(PaymentReturn.id))
    )
