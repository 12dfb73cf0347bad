"""What every campaign module shares: the batch event, the tables, notice amounts, now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from db.models import Case, Enterprise, PaymentInstruction
from db.repositories import cases
from rules import sms_templates
from schemas.vocabulary import CaseStatus, SystemActor

ACTOR = SystemActor.CAMPAIGN
# Cases of a wave waiting for its finance decision.
BEFORE_FINANCE = (CaseStatus.RESERVED, CaseStatus.READY, CaseStatus.PUBLICITY)

case_t = Case.__table__
ent_t = Enterprise.__table__
instr_t = PaymentInstruction.__table__


def event(
    case_id: int,
    from_status: str | None,
    to_status: str | None,
    key: str,
    kind: str,
    *,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    actor: str = ACTOR,
) -> cases.NewEvent:
    """One case event of a campaign batch (the campaign is its actor unless said otherwise)."""
    return cases.NewEvent(case_id, from_status, to_status, key, kind, actor, reason, data)


@lru_cache(maxsize=65536)
def money(amount_fen: int) -> dict[str, str]:
    """大写金额 and figure for a notice; campaigns repeat the same amounts (floors, caps) thousands of times."""
    return sms_templates.money_params(amount_fen)


def now() -> datetime:
    """Now in UTC, to the second (as case events store it)."""
    return datetime.now(UTC).replace(microsecond=0)


def selected(query: Any, case_ids: Sequence[int] | None) -> Any:
    """The query limited to `case_ids` when the caller names them (a correction loop, a ruling)."""
    return query.where(case_t.c.id.in_(case_ids)) if case_ids is not None else query
