"""The budget ledger: reserve → commit, or reserve → release; the database refuses to overspend."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from db import bulk
from db.models import BudgetEntry, BudgetLine
from db.repositories import indicators
from rules.money import format_yuan
from schemas.vocabulary import BudgetEntryKind

RESERVE, COMMIT, RELEASE, RESTORE = (
    BudgetEntryKind.RESERVE,
    BudgetEntryKind.COMMIT,
    BudgetEntryKind.RELEASE,
    BudgetEntryKind.RESTORE,
)


class BudgetExhausted(Exception):
    """No budget line of the fund item has room for the amount."""


class BudgetMoved(Exception):
    """A budget line changed under a bulk move (a concurrent reservation); the caller recomputes and retries."""


def lines(*, session: Session, fund_item_id: int) -> list[BudgetLine]:
    return list(
        session.scalars(select(BudgetLine).where(BudgetLine.fund_item_id == fund_item_id).order_by(BudgetLine.id))
    )


def add_line(*, session: Session, fund_item_id: int, source: str, budget_year: int, total_fen: int) -> BudgetLine:
    line = BudgetLine(
        fund_item_id=fund_item_id,
        source=source,
        budget_year=budget_year,
        total_fen=total_fen,
        reserved_fen=0,
        committed_fen=0,
    )
    session.add(line)
    session.flush()
    return line


def _entry(*, session: Session, case_id: int, kind: str, attempt: int) -> BudgetEntry | None:
    return session.scalar(
        select(BudgetEntry).where(
            BudgetEntry.case_id == case_id, BudgetEntry.kind == kind, BudgetEntry.attempt == attempt
        )
    )


def reserve(*, session: Session, fund_item_id: int, case_id: int, amount_fen: int, attempt: int = 1) -> BudgetEntry:
    """Reserve on the first line with room; the conditional UPDATE and the CHECK make races safe.

    Core statements only: no ORM load of the lines and no flush, so the caller's pending changes to the case (its
    status and amount) are written once when its unit of work ends, not once more here (each UPDATE of a case runs
    the cockpit's summary triggers). The entry returned is a detached copy of the row written."""
    done = _entry(session=session, case_id=case_id, kind=RESERVE, attempt=attempt)
    if done:
        return done
    for line_id in session.scalars(_LINE_IDS, {"fund_item_id": fund_item_id}):
        result = session.execute(_RESERVE_ON_LINE, {"line_id": line_id, "amount": amount_fen})
        if result.rowcount == 1:
            # A concurrent duplicate fails here on the unique key and its transaction rolls back whole.
            return _insert_entry(
                session, budget_line_id=line_id, case_id=case_id, kind=RESERVE, attempt=attempt, amount_fen=amount_fen
            )
    raise BudgetExhausted(f"资金事项 {fund_item_id} 预算额度不足，无法预留 {format_yuan(amount_fen)}")


_line_t = BudgetLine.__table__
_entry_t = BudgetEntry.__table__
_LINE_IDS = select(_line_t.c.id).where(_line_t.c.fund_item_id == bindparam("fund_item_id")).order_by(_line_t.c.id)
_RESERVE_ON_LINE = (
    update(_line_t)
    .where(
        _line_t.c.id == bindparam("line_id"),
        _line_t.c.reserved_fen + _line_t.c.committed_fen + bindparam("amount") <= _line_t.c.total_fen,
    )
    .values(reserved_fen=_line_t.c.reserved_fen + bindparam("amount"))
)
_INSERT_ENTRY = insert(_entry_t).returning(_entry_t.c.id, _entry_t.c.created_at)


def _insert_entry(session: Session, **values: int | str) -> BudgetEntry:
    """One ledger row by a Core INSERT (no flush of the session's other pending changes); a detached copy of it."""
    row = session.execute(_INSERT_ENTRY, values).one()
    return BudgetEntry(id=row.id, created_at=row.created_at, **values)


def _settle(*, session: Session, case_id: int, attempt: int, kind: str) -> BudgetEntry | None:
    """Turn a reservation into a commit or a release, once."""
    # The attempt's entries in one read (at most one per kind: the unique key), instead of one query per kind.
    entries: dict[str, BudgetEntry] = {}
    for e in session.scalars(
        select(BudgetEntry).where(BudgetEntry.case_id == case_id, BudgetEntry.attempt == attempt).order_by(BudgetEntry.id)
    ):
        entries.setdefault(e.kind, e)
    done = entries.get(kind)
    if done:
        return done
    res = entries.get(RESERVE)
    if res is None:
        return None
    other = RELEASE if kind == COMMIT else COMMIT
    if entries.get(other):
        raise ValueError(f"case {case_id} attempt {attempt} is already {other}d")
    values = {"reserved_fen": BudgetLine.reserved_fen - res.amount_fen}
    if kind == COMMIT:
        values["committed_fen"] = BudgetLine.committed_fen + res.amount_fen
    session.execute(
        update(BudgetLine)
        .where(BudgetLine.id == res.budget_line_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    entry = _insert_entry(
        session, budget_line_id=res.budget_line_id, case_id=case_id, kind=kind, attempt=attempt, amount_fen=res.amount_fen
    )
    if kind == COMMIT:  # the payment draws its parts from the item's indicator lines (指标)
        item_id = session.scalar(select(BudgetLine.fund_item_id).where(BudgetLine.id == res.budget_line_id))
        indicators.draw(session=session, fund_item_id=item_id, case_id=case_id, amount_fen=res.amount_fen, attempt=attempt)
    return entry


def commit(*, session: Session, case_id: int, attempt: int = 1) -> BudgetEntry | None:
    return _settle(session=session, case_id=case_id, attempt=attempt, kind=COMMIT)


def release(*, session: Session, case_id: int, attempt: int = 1) -> BudgetEntry | None:
    return _settle(session=session, case_id=case_id, attempt=attempt, kind=RELEASE)


def restore(*, session: Session, case_id: int, attempt: int = 1) -> BudgetEntry | None:
    """A same-year return: the committed amount of the attempt goes back to the quota, once."""
    done = _entry(session=session, case_id=case_id, kind=RESTORE, attempt=attempt)
    if done:
        return done
    committed = _entry(session=session, case_id=case_id, kind=COMMIT, attempt=attempt)
    if committed is None:
        return None
    session.execute(
        update(BudgetLine)
        .where(BudgetLine.id == committed.budget_line_id)
        .values(committed_fen=BudgetLine.committed_fen - committed.amount_fen)
        .execution_options(synchronize_session=False)
    )
    indicators.restore(session=session, case_id=case_id, attempt=attempt)
    entry = BudgetEntry(
        budget_line_id=committed.budget_line_id,
        case_id=case_id,
        kind=RESTORE,
        attempt=attempt,
        amount_fen=committed.amount_fen,
    )
    session.add(entry)
    session.flush()
    return entry


def entries(*, session: Session, case_id: int) -> list[BudgetEntry]:
    """The case's ledger in order (tests and the case page read it)."""
    return list(session.scalars(select(BudgetEntry).where(BudgetEntry.case_id == case_id).order_by(BudgetEntry.id)))


def line_year(*, session: Session, case_id: int, attempt: int) -> int | None:
    """The budget year of the line an attempt was reserved on."""
    res = _entry(session=session, case_id=case_id, kind=RESERVE, attempt=attempt)
    if res is None:
        return None
    return session.scalar(select(BudgetLine.budget_year).where(BudgetLine.id == res.budget_line_id))


def open_reservation(*, session: Session, case_id: int) -> int | None:
    """The attempt whose reservation is neither committed nor released (at most one per case)."""
    rows = session.execute(
        select(BudgetEntry.attempt, BudgetEntry.kind).where(BudgetEntry.case_id == case_id)
    ).all()
    reserved = {a for a, k in rows if k == RESERVE}
    settled = {a for a, k in rows if k in (COMMIT, RELEASE)}
    open_ = sorted(reserved - settled)
    return open_[-1] if open_ else None


def totals(*, session: Session, fund_item_id: int) -> dict[str, int]:
    row = session.execute(
        select(
            func.coalesce(func.sum(BudgetLine.total_fen), 0),
            func.coalesce(func.sum(BudgetLine.reserved_fen), 0),
            func.coalesce(func.sum(BudgetLine.committed_fen), 0),
        ).where(BudgetLine.fund_item_id == fund_item_id)
    ).one()
    total, reserved, committed = (int(v) for v in row)
    return {
        "total_fen": total,
        "reserved_fen": reserved,
        "committed_fen": committed,
        "available_fen": total - reserved - committed,
    }


# ---------------------------------------------------------------------------------------------- in bulk


def locked_lines(*, session: Session, fund_item_id: int) -> list[BudgetLine]:
    """The fund item's lines under a write lock (PostgreSQL), for a batch that plans its reservations."""
    query = select(BudgetLine).where(BudgetLine.fund_item_id == fund_item_id).order_by(BudgetLine.id)
    return list(session.scalars(query.with_for_update()))


def _move_lines(session: Session, deltas: dict[int, tuple[int, int]]) -> None:
    """Add (reserved, committed) deltas to budget lines; a line that would overspend raises BudgetMoved."""
    line_t = BudgetLine.__table__
    for line_id, (reserved, committed) in deltas.items():
        if not reserved and not committed:
            continue
        result = session.execute(
            update(line_t)
            .where(
                line_t.c.id == line_id,
                line_t.c.reserved_fen + line_t.c.committed_fen + reserved + committed <= line_t.c.total_fen,
                line_t.c.reserved_fen + reserved >= 0,
            )
            .values(
                reserved_fen=line_t.c.reserved_fen + reserved,
                committed_fen=line_t.c.committed_fen + committed,
            )
        )
        if result.rowcount != 1:
            raise BudgetMoved(f"budget line {line_id} changed under the batch")


def reserve_many(
    *, session: Session, reservations: Sequence[tuple[int, int, int]], attempt: int = 1, beat: bulk.Beat = bulk.no_beat
) -> None:
    """`reserve` in bulk for (budget line, case, amount) rows the caller placed: each line moves once by its sum
    under the same conditional UPDATE, so a line that no longer has room raises BudgetMoved."""
    deltas: dict[int, tuple[int, int]] = {}
    for line_id, _, amount in reservations:
        deltas[line_id] = (deltas.get(line_id, (0, 0))[0] + amount, 0)
    _move_lines(session, deltas)
    bulk.insert_rows(
        session,
        BudgetEntry.__table__,
        [
            {"budget_line_id": line_id, "case_id": cid, "kind": RESERVE, "attempt": attempt, "amount_fen": amount}
            for line_id, cid, amount in reservations
        ],
        beat=beat,
    )


def _settle_many(
    session: Session, case_ids: Sequence[int], attempt: int, kind: BudgetEntryKind, beat: bulk.Beat
) -> None:
    """Turn the open reservations of these cases into commits or releases, once (`commit` / `release` in bulk)."""
    entry_t = BudgetEntry.__table__
    settled = entry_t.alias("settled")
    deltas: dict[int, tuple[int, int]] = {}
    out = []
    for chunk in bulk.chunks(list(case_ids)):
        rows = session.execute(
            select(entry_t.c.budget_line_id, entry_t.c.case_id, entry_t.c.amount_fen).where(
                bulk.among(session, entry_t.c.case_id, chunk),
                entry_t.c.kind == RESERVE,
                entry_t.c.attempt == attempt,
                ~exists().where(
                    settled.c.case_id == entry_t.c.case_id,
                    settled.c.attempt == attempt,
                    settled.c.kind.in_((COMMIT, RELEASE)),
                ),
            )
        ).all()
        for line_id, cid, amount in rows:
            reserved, committed = deltas.get(line_id, (0, 0))
            deltas[line_id] = (reserved - amount, committed + (amount if kind == COMMIT else 0))
            out.append(
                {"budget_line_id": line_id, "case_id": cid, "kind": kind, "attempt": attempt, "amount_fen": amount}
            )
    _move_lines(session, deltas)
    bulk.insert_rows(session, entry_t, out, beat=beat)
    if kind == COMMIT and out:  # the payments draw their parts from the items' indicator lines (指标)
        item_of = dict(
            session.execute(select(BudgetLine.id, BudgetLine.fund_item_id).where(BudgetLine.id.in_(deltas))).all()
        )
        by_item: dict[int, list[tuple[int, int]]] = {}
        for row in out:
            by_item.setdefault(item_of[row["budget_line_id"]], []).append((row["case_id"], row["amount_fen"]))
        for item_id, drawn in by_item.items():
            indicators.draw_many(session=session, fund_item_id=item_id, payments=drawn, attempt=attempt)


def commit_many(*, session: Session, case_ids: Sequence[int], attempt: int = 1, beat: bulk.Beat = bulk.no_beat) -> None:
    """`commit` for many cases: their open reservations become spending."""
    _settle_many(session, case_ids, attempt, COMMIT, beat)


def release_many(
    *, session: Session, case_ids: Sequence[int], attempt: int = 1, beat: bulk.Beat = bulk.no_beat
) -> None:
    """`release` for many cases: their open reservations go back to the quota."""
    _settle_many(session, case_ids, attempt, RELEASE, beat)
