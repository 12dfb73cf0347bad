"""What every case activity starts from: the case with its enterprise and fund item in one round trip, and the
frozen configuration of the item version the case applied under (immutable once published, so cached)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Case, Enterprise, FundItem, FundItemVersion


def load(*, session: Session, case_id: int) -> tuple[Case, Enterprise, FundItem] | None:
    """The case, its enterprise and its item: one SELECT with two joins instead of three loads."""
    row = session.execute(
        select(Case, Enterprise, FundItem)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(FundItem, FundItem.id == Case.fund_item_id)
        .where(Case.id == case_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def frozen_config(*, session: Session, db_url: str, fund_item_id: int, number: int) -> dict[str, Any] | None:
    """The version's configuration; read once per (database, item, version) by this process.

    Callers must not mutate it (it is shared)."""
    config = _cached(db_url, fund_item_id, number)
    if config is None:
        config = session.scalar(
            select(FundItemVersion.config).where(
                FundItemVersion.fund_item_id == fund_item_id, FundItemVersion.version == number
            )
        )
        if config is not None:
            _remember(db_url, fund_item_id, number, config)
    return config


_configs: dict[tuple[str, int, int], dict[str, Any]] = {}
_MAX_CACHED = 4096


def _cached(db_url: str, fund_item_id: int, number: int) -> dict[str, Any] | None:
    return _configs.get((db_url, fund_item_id, number))


def _remember(db_url: str, fund_item_id: int, number: int, config: dict[str, Any]) -> None:
    if len(_configs) >= _MAX_CACHED:
        _configs.clear()  # a process that saw thousands of versions starts over; correctness never depends on it
    _configs[(db_url, fund_item_id, number)] = config
