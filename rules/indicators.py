"""How one payment is shared between the budget indicators (指标) of its funding sources (市区分担).

The rule, stated once and used for the voucher's DetailList lines and for the draw-down alike:

- every source first gets ``floor(amount × share_bp / 10000)`` fen;
- the fen left over (always fewer than the number of sources) go one each to the sources whose discarded
  fractions are largest, the earlier source in the fund item's configuration first when two are equal
  (the largest-remainder method);
- so the parts are whole fen, each within one fen of its exact share, and they always sum to the amount.

Sources with a zero share (a source that left the configuration) get nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.fund_items import FundingSource
from schemas.treasury import InstructionDetail

FULL_SHARE_BP = 10_000


def split_by_shares(amount_fen: int, shares_bp: Sequence[int]) -> list[int]:
    """The parts of `amount_fen` for sources with these shares (basis points summing to 10,000), in order."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 0:
        raise ValueError(f"金额必须是非负整数分，实际为 {amount_fen!r}")
    if any(s < 0 for s in shares_bp) or sum(shares_bp) != FULL_SHARE_BP:
        raise ValueError(f"分担比例合计须为 {FULL_SHARE_BP} 基点，实际为 {list(shares_bp)}")
    parts = [amount_fen * s // FULL_SHARE_BP for s in shares_bp]
    # The discarded fraction of part i, in units of 1/10000 fen; ties go to the earlier source.
    fractions = [(amount_fen * s % FULL_SHARE_BP, -i) for i, s in enumerate(shares_bp)]
    left = amount_fen - sum(parts)
    for _, neg_index in sorted(fractions, reverse=True)[:left]:
        parts[-neg_index] += 1
    return parts


def voucher_details(sources: Sequence[FundingSource], amount_fen: int) -> list[InstructionDetail]:
    """The DetailList lines of one payment: one per funding source with a share, its part by the rule above."""
    return [InstructionDetail(**line) for line in voucher_detail_fields(sources, amount_fen)]


def voucher_detail_fields(sources: Sequence[FundingSource], amount_fen: int) -> list[dict[str, Any]]:
    """`voucher_details` as the lines' fields, for a caller that validates many vouchers at once (a campaign's batch
    goes through one list validation instead of a model per line)."""
    active = [s for s in sources if s.share_bp > 0]
    shares = [s.share_bp for s in active]
    parts = [amount_fen] if shares == [FULL_SHARE_BP] and _whole_fen(amount_fen) else split_by_shares(amount_fen, shares)
    return [
        {
            "Source": s.name,
            "IndicatorNo": s.indicator_no,
            "BudgetLevel": s.budget_level,
            "ExpFuncCode": s.exp_func_code,
            "GovExpEcoCode": s.gov_eco_code,
            "DepExpEcoCode": s.dep_eco_code,
            "FundTypeCode": s.fund_type_code,
            "Amt": part,
        }
        for s, part in zip(active, parts, strict=True)
    ]


def _whole_fen(amount_fen: object) -> bool:
    """What split_by_shares accepts as an amount (it raises on anything else)."""
    return type(amount_fen) is int and amount_fen >= 0


def details_from_config(config: Mapping[str, Any], amount_fen: int) -> list[InstructionDetail] | None:
    """`voucher_details` from a stored (frozen) configuration's budget; None when it has none."""
    budget = config.get("budget") or {}
    raw = budget.get("sources") or []
    if not raw:
        return None
    return voucher_details([FundingSource.model_validate(s) for s in raw], amount_fen)
