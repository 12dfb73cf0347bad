"""Payment instructions: created once per (case, attempt), results recorded once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from db.models import PaymentInstruction
from schemas.treasury import InstructionResult

FINAL = ("paid", "failed", "returned")


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
    instruction = PaymentInstruction(voucher_no=voucher, case_id=case_id, attempt=attempt, status="created", **fields)
    session.add(instruction)
    session.flush()
    return instruction


def mark_accepted(*, session: Session, voucher: str, treasury_ref: str | None) -> bool:
    """created → accepted; True when it changed anything (a late `accepted` never moves a settled row back)."""
    instruction = _locked(session, voucher)
    if instruction and instruction.status == "created":
        instruction.status = "accepted"
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
    if instruction is None or instruction.status in FINAL or status not in ("paid", "failed"):
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
    if instruction is None or instruction.status in ("failed", "returned"):
        return False
    if instruction.status != "paid":  # the `paid` callback never arrived: the return proves it happened
        instruction.paid_amt_fen = result.ReturnedAmt
        instruction.settled_at = result.SettledAt
        instruction.accepted_at = instruction.accepted_at or result.AcceptedAt
    instruction.status = "returned"
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
    if result.Status == "accepted":
        changed = mark_accepted(session=session, voucher=result.VoucherNo, treasury_ref=result.TreasuryRef)
    elif result.Status == "returned":
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
