"""Payment instructions: created once per (case, attempt), results recorded once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
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


def mark_accepted(*, session: Session, voucher: str, treasury_ref: str | None) -> None:
    instruction = get(session=session, voucher=voucher)
    if instruction and instruction.status == "created":
        instruction.status = "accepted"
        instruction.treasury_ref = treasury_ref
        instruction.accepted_at = datetime.now(UTC)


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
    """Store a final result once; a duplicate or late callback leaves the first result in place."""
    instruction = session.scalar(
        select(PaymentInstruction).where(PaymentInstruction.voucher_no == voucher).with_for_update()
    )
    if instruction is None or instruction.status in FINAL or status not in FINAL:
        return instruction
    instruction.status = status
    instruction.paid_amt_fen = paid_amt_fen
    instruction.fail_reason = reason
    instruction.treasury_ref = treasury_ref or instruction.treasury_ref
    instruction.settled_at = settled_at or datetime.now(UTC)
    session.flush()
    return instruction


def store_result(*, session: Session, result: InstructionResult) -> None:
    """Shared by the callback endpoint and the polling fallback."""
    if result.Status == "accepted":
        mark_accepted(session=session, voucher=result.VoucherNo, treasury_ref=result.TreasuryRef)
    else:
        record_result(
            session=session,
            voucher=result.VoucherNo,
            status=result.Status,
            paid_amt_fen=result.PaidAmt,
            reason=result.Reason,
            treasury_ref=result.TreasuryRef,
            settled_at=result.SettledAt,
        )
