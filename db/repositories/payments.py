"""Payment instructions: created once per (case, attempt), results recorded once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from db import bulk
from db.models import PaymentInstruction
from schemas.treasury import InstructionResult
from schemas.vocabulary import PaymentStatus

FINAL = PaymentStatus.finals()


def voucher_no(*, case_id: int, attempt: int) -> str:
    """Deterministic instruction number: a retried send can never mint a second voucher."""
    return f"ZD{case_id:012d}A{attempt:02d}"


def get(*, session: Session, voucher: str) -> PaymentInstruction | None:
    return session.scalar(select(PaymentInstruction).where(PaymentInstruction.voucher_no == voucher))


def for_case(*, session: Session, case_id: int) -> list[PaymentInstruction]:
    return list(
        session.scalars(
            select(PaymentInstruction).where(PaymentInstruction.case_id == case_id).order_by(PaymentInstruction.attempt)
        )
    )


def get_or_create(*, session: Session, case_id: int, attempt: int, **fields: object) -> PaymentInstruction:
    voucher = voucher_no(case_id=case_id, attempt=attempt)
    existing = get(session=session, voucher=voucher)
    if existing:
        return existing
    instruction = PaymentInstruction(
        voucher_no=voucher, case_id=case_id, attempt=attempt, status=PaymentStatus.CREATED, **fields
    )
    session.add(instruction)
    session.flush()
    return instruction


def mark_accepted(*, session: Session, voucher: str, treasury_ref: str | None) -> bool:
    """created → accepted; True when it changed anything (a late `accepted` never moves a settled row back)."""
    instruction = _locked(session, voucher)
    if instruction and instruction.status == PaymentStatus.CREATED:
        instruction.status = PaymentStatus.ACCEPTED
        instruction.treasury_ref = treasury_ref or instruction.treasury_ref
        instruction.accepted_at = datetime.now(UTC)
        return True
    return False


def _locked(session: Session, voucher: str) -> PaymentInstruction | None:
    """The row under a write lock (PostgreSQL), so two callbacks for one voucher apply one after the other."""
    return session.scalar(
        select(PaymentInstruction).where(PaymentInstruction.voucher_no == voucher).with_for_update()
    )


def record_result(
    *,
    session: Session,
    voucher: str,
    status: str,
    paid_amt_fen: int,
    reason: str | None,
    treasury_ref: str | None = None,
    settled_at: datetime | None = None,
) -> PaymentInstruction | None:
    """Store a paid/failed result once; a duplicate or late callback leaves the first result in place."""
    instruction = _locked(session, voucher)
    if instruction is None or instruction.status in FINAL or status not in (PaymentStatus.PAID, PaymentStatus.FAILED):
        return instruction
    instruction.status = status
    instruction.paid_amt_fen = paid_amt_fen
    instruction.fail_reason = reason or None
    instruction.treasury_ref = treasury_ref or instruction.treasury_ref
    instruction.settled_at = settled_at or datetime.now(UTC)
    session.flush()
    return instruction


def record_return(*, session: Session, result: InstructionResult) -> bool:
    """paid → returned with the return's facts; also from created/accepted when the paid result was missed.

    True when it changed the row: a repeated return, or a return of a failed instruction, changes nothing.
    """
    instruction = _locked(session, result.VoucherNo)
    if instruction is None or instruction.status in (PaymentStatus.FAILED, PaymentStatus.RETURNED):
        return False
    if instruction.status != PaymentStatus.PAID:  # the `paid` callback never arrived: the return proves it happened
        instruction.paid_amt_fen = result.ReturnedAmt
        instruction.settled_at = result.SettledAt
        instruction.accepted_at = instruction.accepted_at or result.AcceptedAt
    instruction.status = PaymentStatus.RETURNED
    instruction.treasury_ref = result.TreasuryRef or instruction.treasury_ref
    instruction.returned_at = result.ReturnedAt
    instruction.return_kind = result.ReturnType
    instruction.return_reason = result.Reason or None
    instruction.returned_amt_fen = result.ReturnedAmt
    session.flush()
    return True


StoreOutcome = Literal["applied", "unchanged", "unknown"]


def store_result(*, session: Session, result: InstructionResult) -> StoreOutcome:
    """Apply a treasury result idempotently and in order; shared by the callback endpoint and polling.

    Order: created → accepted → paid | failed, and paid → returned. A stale result (accepted after paid,
    paid after returned) or a repeated one changes nothing and reports `unchanged`.
    """
    if get(session=session, voucher=result.VoucherNo) is None:
        return "unknown"
    if result.Status == PaymentStatus.ACCEPTED:
        changed = mark_accepted(session=session, voucher=result.VoucherNo, treasury_ref=result.TreasuryRef)
    elif result.Status == PaymentStatus.RETURNED:
        changed = record_return(session=session, result=result)
    else:
        before = _locked(session, result.VoucherNo)
        was = before.status if before else None
        after = record_result(
            session=session,
            voucher=result.VoucherNo,
            status=result.Status,
            paid_amt_fen=result.PaidAmt,
            reason=result.Reason,
            treasury_ref=result.TreasuryRef,
            settled_at=result.SettledAt,
        )
        changed = after is not None and after.status != was
    return "applied" if changed else "unchanged"


def settled_between(*, session: Session, start: datetime, end: datetime) -> list[PaymentInstruction]:
    """Instructions whose settlement (paid/failed) or return falls in [start, end): our side of a statement day."""
    return list(
        session.scalars(
            select(PaymentInstruction)
            .where(
                or_(
                    and_(PaymentInstruction.settled_at >= start, PaymentInstruction.settled_at < end),
                    and_(PaymentInstruction.returned_at >= start, PaymentInstruction.returned_at < end),
                )
            )
            .order_by(PaymentInstruction.voucher_no)
        )
    )


def by_vouchers(*, session: Session, vouchers: list[str]) -> dict[str, PaymentInstruction]:
    """Instructions by VoucherNo, in chunks so a day's statement of any size fits in IN lists."""
    found: dict[str, PaymentInstruction] = {}
    for i in range(0, len(vouchers), 1000):
        chunk = vouchers[i : i + 1000]
        for row in session.scalars(select(PaymentInstruction).where(PaymentInstruction.voucher_no.in_(chunk))):
            found[row.voucher_no] = row
    return found


# ---------------------------------------------------------------------------------------------- in bulk


def create_many(*, session: Session, rows: Sequence[dict[str, Any]], beat: bulk.Beat = bulk.no_beat) -> None:
    """`get_or_create` for many new instructions in one executemany (the caller selected cases without one); each
    row names its voucher_no (see `voucher_no`) and the instruction's columns."""
    defaults = {"status": PaymentStatus.CREATED, "paid_amt_fen": 0, "created_at": datetime.now(UTC)}
    bulk.insert_rows(session, PaymentInstruction.__table__, [defaults | dict(row) for row in rows], beat=beat)


def mark_accepted_many(*, session: Session, vouchers: Sequence[str]) -> None:
    """`mark_accepted` for many instructions (their treasury reference comes again with the final result)."""
    table = PaymentInstruction.__table__
    now = datetime.now(UTC).replace(microsecond=0)
    for chunk in bulk.chunks(list(vouchers)):
        session.execute(
            update(table)
            .where(table.c.voucher_no.in_(chunk), table.c.status == PaymentStatus.CREATED)
            .values(status=PaymentStatus.ACCEPTED, accepted_at=now)
        )


def record_results_many(*, session: Session, results: Sequence[InstructionResult]) -> int:
    """`record_result` for many final treasury results in one executemany; a result already stored stays (the first
    one wins). Returns how many final results were given."""
    final = [r for r in results if r.Status in FINAL]
    # A result that is already `returned` (paid, then sent back before we asked) says the money went out and came
    # back: it is stored as a return, with its amounts, as a return callback would be (found by `zhida soak`: the
    # bulk UPDATE stored it as returned with 0 paid and no return, so our ledger disagreed with the treasury's).
    returned = [r for r in final if r.Status == PaymentStatus.RETURNED]
    for r in returned:
        record_return(session=session, result=r)
    if returned:
        session.flush()
    final_bulk = [r for r in final if r.Status != PaymentStatus.RETURNED]
    if not final_bulk:
        return len(final)
    pg = bulk.is_postgres(session)
    mark = "%s" if pg else "?"
    now = datetime.now(UTC).replace(microsecond=0)

    moment = bulk.moments()

    def when(r: InstructionResult) -> Any:
        at = r.SettledAt or now
        return at if pg else moment(at)

    open_ = ", ".join(f"'{s.value}'" for s in (PaymentStatus.CREATED, PaymentStatus.ACCEPTED))
    sql = (
        f"UPDATE payment_instruction SET status = {mark}, paid_amt_fen = {mark}, fail_reason = {mark}, "
        f"treasury_ref = {mark}, settled_at = {mark} "
        f"WHERE voucher_no = {mark} AND status IN ({open_})"
    )
    session.connection().exec_driver_sql(
        sql,
        [(str(r.Status), r.PaidAmt, r.Reason or None, r.TreasuryRef or None, when(r), r.VoucherNo) for r in final_bulk],
    )
    return len(final)
