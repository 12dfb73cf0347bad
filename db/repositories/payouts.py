"""Payouts made outside Zhida (奖补汇聚): the imported rows, and the paid cases of Zhida itself that the
duplicate-benefit check (重复享受) sets beside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db import bulk
from db.models import Case, Enterprise, ExternalPayout, FundItem, FundItemVersion
from schemas.vocabulary import CaseStatus


def existing_keys(*, session: Session, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        found |= set(session.scalars(select(ExternalPayout.row_key).where(ExternalPayout.row_key.in_(chunk))))
    return found


def add_many(*, session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows (all or nothing: the caller's transaction); a row already stored is skipped by its key."""
    if not rows:
        return 0
    bulk.insert_rows(session, ExternalPayout.__table__, rows, ignore_duplicates=True)
    return len(rows)


def in_region(region_prefix: str | None) -> ColumnElement[bool]:
    return ExternalPayout.region_code.startswith(region_prefix or "")


def listing(*, session: Session, region_prefix: str | None, limit: int = 500) -> list[ExternalPayout]:
    stmt = (
        select(ExternalPayout)
        .where(in_region(region_prefix))
        .order_by(ExternalPayout.paid_on.desc(), ExternalPayout.id.desc())
    )
    return list(session.scalars(stmt.limit(limit)))


def totals(*, session: Session, region_prefix: str | None) -> tuple[int, int]:
    """(rows, fen) of the external payouts of the region."""
    n, fen = session.execute(
        select(func.count(ExternalPayout.id), func.coalesce(func.sum(ExternalPayout.amount_fen), 0)).where(
            in_region(region_prefix)
        )
    ).one()
    return int(n), int(fen)


@dataclass(frozen=True)
class Benefit:
    """One payout to an enterprise, from Zhida or from outside, as the duplicate check compares them."""

    uscc: str
    enterprise_name: str
    item_name: str
    purpose: str
    amount_fen: int
    paid_on: datetime | Any
    origin: str  # "zhida" or the source document of an external payout
    case_id: int | None


def paid_cases(*, session: Session, scope: ColumnElement[bool]) -> list[tuple]:
    """(case id, USCC, enterprise name, item name, item config, paid fen, paid moment) of Zhida's paid cases."""
    stmt = (
        select(
            Case.id,
            Enterprise.uscc,
            Enterprise.name,
            FundItem.name,
            FundItemVersion.config,
            Case.paid_fen,
            Case.closed_at,
        )
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(FundItem, FundItem.id == Case.fund_item_id)
        .join(
            FundItemVersion,
            (FundItemVersion.fund_item_id == Case.fund_item_id) & (FundItemVersion.version == Case.fund_item_version),
            isouter=True,
        )
        .where(scope, Case.status == CaseStatus.PAID)
    )
    return [tuple(row) for row in session.execute(stmt)]
