"""Payment instructions: created once per (case, attempt), results recorded once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Literal

from sqlalchemy import and_, bindparam, func, or_, select, update
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


def _locked(session: Session, voucher: str) -> PaymentInstruction | None:
    """The row under a write lock (PostgreSQL), so two callbacks for one voucher apply one after the other."""
    return session.scalar(
        select(PaymentInstruction).where(PaymentInstruction.voucher_no == voucher).with_for_update()
    )


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

    Accepted, paid and failed — every result of the instant hot path — are one conditional Core UPDATE (on
    PostgreSQL it takes the row lock as SELECT … FOR UPDATE did); only a miss asks whether the voucher exists.
    Returns keep the ORM path (rare, and they move many columns)."""
    if result.Status == PaymentStatus.RETURNED:
        if get(session=session, voucher=result.VoucherNo) is None:
            return "unknown"
        return "applied" if record_return(session=session, result=result) else "unchanged"
    ref = result.TreasuryRef or None
    if result.Status == PaymentStatus.ACCEPTED:
        changed = session.execute(
            _MARK_ACCEPTED, {"voucher": result.VoucherNo, "ref": ref, "at": datetime.now(UTC)}
        ).rowcount
    elif result.Status in (PaymentStatus.PAID, PaymentStatus.FAILED):
        changed = session.execute(
            _RECORD_FINAL,
            {
                "voucher": result.VoucherNo,
                "status": result.Status,
                "paid": result.PaidAmt,
                "reason": result.Reason or None,
                "ref": ref,
                "at": result.SettledAt or datetime.now(UTC),
            },
        ).rowcount
    else:
        changed = 0
    if changed:
        _expire_loaded(session, result.VoucherNo)
        return "applied"
    return "unchanged" if session.execute(_VOUCHER_ID, {"voucher": result.VoucherNo}).first() else "unknown"


def _expire_loaded(session: Session, voucher: str) -> None:
    """A Core UPDATE leaves an instruction already loaded in this session stale: expire it, so its next read sees
    the row (the hot path loads none, so this finds nothing there)."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, PaymentInstruction) and obj.__dict__.get("voucher_no") == voucher:
            session.expire(obj)


_t = PaymentInstruction.__table__
_VOUCHER_ID = select(_t.c.id).where(_t.c.voucher_no == bindparam("voucher"))
_ref = func.coalesce(bindparam("ref", type_=_t.c.treasury_ref.type), _t.c.treasury_ref)
_MARK_ACCEPTED = (
    update(_t)
    .where(_t.c.voucher_no == bindparam("voucher"), _t.c.status == PaymentStatus.CREATED)
    .values(status=PaymentStatus.ACCEPTED, treasury_ref=_ref, accepted_at=bindparam("at", type_=_t.c.accepted_at.type))
)
_RECORD_FINAL = (
    update(_t)
    .where(_t.c.voucher_no == bindparam("voucher"), _t.c.status.not_in(list(FINAL)))
    .values(
        status=bindparam("status", type_=_t.c.status.type),
        paid_amt_fen=bindparam("paid", type_=_t.c.paid_amt_fen.type),
        fail_reason=bindparam("reason", type_=_t.c.fail_reason.type),
        treasury_ref=_ref,
        settled_at=bindparam("at", type_=_t.c.settled_at.type),
    )
)
_case_t = PaymentInstruction.metadata.tables["case"]
_CASE_OF = (
    select(_t.c.case_id, _case_t.c.id.label("found"), _case_t.c.workflow_id, _case_t.c.status.label("case_status"))
    .select_from(_t.outerjoin(_case_t, _case_t.c.id == _t.c.case_id))
    .where(_t.c.voucher_no == bindparam("voucher"))
)
_STATE = select(_t.c.voucher_no, _t.c.status, _t.c.paid_amt_fen, _t.c.fail_reason, _t.c.case_id).where(
    _t.c.voucher_no == bindparam("voucher")
)


def case_of(*, session: Session, voucher: str) -> Any | None:
    """(case_id, found, workflow_id, case_status) of a voucher's case by one Core SELECT (the callback's lookup);
    None for an unknown voucher, `found` None when the case row is gone."""
    return session.execute(_CASE_OF, {"voucher": voucher}).first()


def state(*, session: Session, voucher: str) -> Any | None:
    """The columns a payment's state is made of (voucher_no, status, paid_amt_fen, fail_reason, case_id), read by
    one prebuilt Core SELECT: no ORM object for a poll or a state after a store."""
    return session.execute(_STATE, {"voucher": voucher}).first()


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
    """`store_result` for many final treasury results in one executemany; a result already stored stays (the first
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
    now = datetime.now(UTC).replace(microsecond=0)

    moment = bulk.moments()

    def when(r: InstructionResult) -> Any:
        at = r.SettledAt or now
        return at if pg else moment(at)

    params = [(str(r.Status), r.PaidAmt, r.Reason or None, r.TreasuryRef or None, when(r), r.VoucherNo) for r in final_bulk]
    if pg:
        sql = (
            "UPDATE payment_instruction SET status = %s, paid_amt_fen = %s, fail_reason = %s, treasury_ref = %s, "
            "settled_at = %s WHERE voucher_no = %s AND status IN ('created', 'accepted')"
        )
        session.connection().exec_driver_sql(sql, params)
        return len(final)
    # SQLite: one UPDATE … FROM (VALUES …) per 500 results, so the statement and the cockpit's trigger on the table
    # start once per 500 rows, not once per row; the open statuses compared in place (an IN list fills a temporary
    # index per execution). A voucher given twice keeps its first result, as one UPDATE per result did.
    seen: set[str] = set()
    params = [p for p in params if not (p[5] in seen or seen.add(p[5]))]
    head = "UPDATE payment_instruction SET status = v.column1, paid_amt_fen = v.column2, fail_reason = v.column3, " \
           "treasury_ref = v.column4, settled_at = v.column5 FROM (VALUES "  # fmt: skip
    tail = (
        ") AS v WHERE payment_instruction.voucher_no = v.column6 "
        "AND (payment_instruction.status = 'created' OR payment_instruction.status = 'accepted')"
    )
    connection = session.connection()
    for start in range(0, len(params), bulk.SQLITE_ROWS):
        part = params[start : start + bulk.SQLITE_ROWS]
        sql = head + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part)) + tail
        connection.exec_driver_sql(sql, tuple(chain.from_iterable(part)))
    return len(final)
