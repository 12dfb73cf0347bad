"""Budget indicator lines (指标): what each funding source of a fund item has left after the payments drawn from it.

A payment draws its parts (rules.indicators.split_by_shares over the item's indicator lines, in configuration order)
when its budget is committed, and a same-year return restores exactly the parts it drew; both are idempotent per
(case, attempt), like the budget ledger they follow (db/repositories/budget.py calls them). The budget ledger's
reservation is what refuses overspending; an indicator can only be overdrawn by the rounding of its parts (at most
one fen per payment, and only once the item's whole budget is spent), so its balance is kept, not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from db import bulk
from db.models import BudgetIndicator, IndicatorEntry
from rules.indicators import split_by_shares
from schemas.fund_items import Budget
from schemas.vocabulary import BudgetEntryKind

DRAW, RESTORE = BudgetEntryKind.COMMIT, BudgetEntryKind.RESTORE


@dataclass(frozen=True)
class SourceIndicator:
    """A funding source as the indicator ledger keeps it."""

    source: str
    share_bp: int
    total_fen: int
    indicator_no: str | None = None


def lines(*, session: Session, fund_item_id: int) -> list[BudgetIndicator]:
    """The item's indicator lines in configuration order."""
    query = select(BudgetIndicator).where(BudgetIndicator.fund_item_id == fund_item_id)
    return list(session.scalars(query.order_by(BudgetIndicator.position, BudgetIndicator.id)))


def sync(*, session: Session, fund_item_id: int, budget_year: int, sources: Sequence[SourceIndicator]) -> None:
    """Make the item's indicator lines follow its configuration: new sources get a line, changed ones take the new
    share, total and document number (what was drawn stays), a source that left keeps its line with a zero share."""
    existing = {line.source: line for line in lines(session=session, fund_item_id=fund_item_id)}
    for position, src in enumerate(sources):
        line = existing.pop(src.source, None)
        if line is None:
            line = BudgetIndicator(fund_item_id=fund_item_id, source=src.source, drawn_fen=0)
            session.add(line)
        line.position = position
        line.budget_year = budget_year
        line.share_bp = src.share_bp
        line.total_fen = src.total_fen
        line.indicator_no = src.indicator_no
    for gone in existing.values():
        gone.share_bp = 0
        gone.position = len(sources) + gone.position
    session.flush()


def sync_budget(*, session: Session, fund_item_id: int, budget: Budget) -> None:
    """`sync` from a fund item configuration's budget (资金来源 with their shares and indicator numbers)."""
    sources = [SourceIndicator(s.name, s.share_bp, s.amount_fen or 0, s.indicator_no) for s in budget.sources]
    sync(session=session, fund_item_id=fund_item_id, budget_year=budget.year, sources=sources)


def _move(session: Session, rows: list[dict[str, int]], kind: BudgetEntryKind) -> None:
    """Insert the entries (one statement for all) and move each line by its sum (one UPDATE per line)."""
    if not rows:
        return
    bulk.insert_rows(session, IndicatorEntry.__table__, [r | {"kind": kind} for r in rows])
    deltas: dict[int, int] = {}
    for row in rows:
        deltas[row["indicator_id"]] = deltas.get(row["indicator_id"], 0) + row["amount_fen"]
    sign = 1 if kind == DRAW else -1
    table = BudgetIndicator.__table__
    session.execute(
        update(table).where(table.c.id == bindparam("line")).values(drawn_fen=table.c.drawn_fen + bindparam("delta")),
        [{"line": line, "delta": sign * delta} for line, delta in deltas.items()],
    )


def _drawn(session: Session, case_ids: Sequence[int], attempt: int, kind: BudgetEntryKind) -> set[int]:
    entry = IndicatorEntry.__table__
    out: set[int] = set()
    for chunk in bulk.chunks(list(case_ids)):
        out.update(
            session.scalars(
                select(entry.c.case_id).where(
                    bulk.among(session, entry.c.case_id, chunk), entry.c.attempt == attempt, entry.c.kind == kind
                )
            )
        )
    return out


def draw_many(*, session: Session, fund_item_id: int, payments: Sequence[tuple[int, int]], attempt: int = 1) -> None:
    """Draw each (case, amount) payment's parts from the item's indicator lines, once per (case, attempt)."""
    active = [line for line in lines(session=session, fund_item_id=fund_item_id) if line.share_bp > 0]
    if not active or not payments:
        return
    done = _drawn(session, [cid for cid, _ in payments], attempt, DRAW)
    shares = [line.share_bp for line in active]
    rows = [
        {"indicator_id": line.id, "case_id": cid, "attempt": attempt, "amount_fen": part}
        for cid, amount in payments
        if cid not in done
        for line, part in zip(active, split_by_shares(amount, shares), strict=True)
        if part
    ]
    _move(session, rows, DRAW)


def draw(*, session: Session, fund_item_id: int, case_id: int, amount_fen: int, attempt: int = 1) -> None:
    """One payment's draw-down (`draw_many` for one)."""
    draw_many(session=session, fund_item_id=fund_item_id, payments=[(case_id, amount_fen)], attempt=attempt)


def restore(*, session: Session, case_id: int, attempt: int = 1) -> None:
    """A same-year return: the parts the attempt drew go back to their lines, once."""
    if _drawn(session, [case_id], attempt, RESTORE):
        return
    entry = IndicatorEntry.__table__
    drawn = session.execute(
        select(entry.c.indicator_id, entry.c.amount_fen).where(
            entry.c.case_id == case_id, entry.c.attempt == attempt, entry.c.kind == DRAW
        )
    ).all()
    rows = [{"indicator_id": i, "case_id": case_id, "attempt": attempt, "amount_fen": a} for i, a in drawn]
    _move(session, rows, RESTORE)


def parts(*, session: Session, case_id: int, attempt: int = 1) -> dict[str, int]:
    """What an attempt drew, by source (pages and tests)."""
    entry = IndicatorEntry.__table__
    rows = session.execute(
        select(BudgetIndicator.source, entry.c.amount_fen)
        .join(entry, entry.c.indicator_id == BudgetIndicator.id)
        .where(entry.c.case_id == case_id, entry.c.attempt == attempt, entry.c.kind == DRAW)
        .order_by(BudgetIndicator.position)
    ).all()
    return {source: amount for source, amount in rows}


def balances(*, session: Session, fund_item_id: int) -> dict[str, dict[str, int]]:
    """Each source's indicator total, drawn and balance."""
    return {
        line.source: {
            "total_fen": line.total_fen,
            "drawn_fen": line.drawn_fen,
            "balance_fen": line.total_fen - line.drawn_fen,
        }
        for line in lines(session=session, fund_item_id=fund_item_id)
    }
