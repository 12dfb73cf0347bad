"""Apply a support standard (扶持标准) to an enterprise's facts: the amount in fen and the working shown.

Rounding: base × rate is computed exactly (fractions, never floats) and rounded to the fen half-up,
i.e. like Decimal ROUND_HALF_UP: a half fen goes away from zero (12.5 分 → 13 分, 12.49 分 → 12 分).
A negative base (e.g. a loss) yields 0 before the floor. Floors and caps apply after rounding; a sum's
cap applies after adding its parts. Missing base data never raises: the part counts 0 and the result
says so (`quantified=False`, `missing_fields`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rules.conditions import facts_of
from schemas.fields import FIELDS, format_fen
from schemas.standards import (
    AmountResult,
    AnyStandard,
    FixedAmount,
    ManualAmount,
    RateOfBase,
    SumOfParts,
    Tiered,
    is_fully_quantified,
    parse_standard,
)

__all__ = ["AmountResult", "AnyStandard", "compute_amount", "is_fully_quantified", "parse_standard", "round_half_up"]


def round_half_up(value: Fraction | Decimal | int) -> int:
    """Nearest integer, halves away from zero (ROUND_HALF_UP), computed exactly."""
    exact = Fraction(value)
    magnitude = math.floor(abs(exact) + Fraction(1, 2))
    return -magnitude if exact < 0 else magnitude


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _times_rate(base_fen: int, rate: Decimal) -> tuple[int, str]:
    """base × rate rounded to the fen, and the working (notes when rounding or a negative base changed it)."""
    # Exact in integers: the same as Fraction(base_fen) * Fraction(rate) rounded half-up, without Fraction's cost.
    numerator, denominator = rate.as_integer_ratio()
    product = base_fen * numerator  # exact = product / denominator, denominator > 0
    amount = (2 * product + denominator) // (2 * denominator) if product > 0 else 0
    text = f"{format_fen(base_fen)} × {_percent(rate)} = {format_fen(amount)}"
    if product < 0:
        text += "（基数为负，按 0 元计）"
    elif product % denominator:
        text += "（按四舍五入保留到分）"
    return amount, text


def _capped(amount: int, text: str, cap_fen: int | None) -> tuple[int, str]:
    if cap_fen is not None and amount > cap_fen:
        return cap_fen, f"{text}，超过封顶金额，按封顶 {format_fen(cap_fen)} 核定"
    return amount, text


def _missing(field: str, what: str) -> AmountResult:
    label = FIELDS[field].label
    return AmountResult(
        amount_fen=0,
        explanation=f"缺少{label}（{field}）数据，无法{what}，金额暂按 0 元计",
        quantified=False,
        missing_fields=[field],
    )


def _fixed(standard: FixedAmount) -> AmountResult:
    return AmountResult(
        amount_fen=standard.amount_fen, explanation=f"定额奖补 {format_fen(standard.amount_fen)}", quantified=True
    )


def _rate(standard: RateOfBase, facts: Mapping[str, Any]) -> AmountResult:
    spec = FIELDS[standard.base]
    base = facts.get(spec.name)
    if base is None:
        return _missing(spec.name, "按比例计算金额")
    rate = standard.rate_value()
    assert rate is not None  # the model requires rate or rate_bp
    amount, working = _times_rate(base, rate)
    text = f"按{spec.label}的 {_percent(rate)} 计：{working}"
    if standard.floor_fen is not None and amount < standard.floor_fen:
        amount = standard.floor_fen
        text += f"，低于保底金额，按保底 {format_fen(amount)} 核定"
    amount, text = _capped(amount, text, standard.cap_fen)
    return AmountResult(amount_fen=amount, explanation=text, quantified=True)


def _tiers(standard: Tiered, facts: Mapping[str, Any]) -> AmountResult:
    spec = FIELDS[standard.base]
    base = facts.get(spec.name)
    if base is None:
        return _missing(spec.name, "确定奖补档位")
    reached = [(i, tier) for i, tier in enumerate(standard.tiers) if base >= tier.at_least]
    if not reached:
        first = standard.tiers[0]
        return AmountResult(
            amount_fen=0,
            explanation=f"{spec.label} {spec.format(base)}，未达到最低档门槛（≥ {spec.format(first.at_least)}），"
            "不予奖补",
            quantified=True,
        )
    index, tier = reached[-1]
    name = tier.label or f"第{index + 1}档"
    text = f"{spec.label} {spec.format(base)}，达到{name}（≥ {spec.format(tier.at_least)}）"
    if tier.amount_fen is not None:
        amount = tier.amount_fen
        text += f"，奖补 {format_fen(amount)}"
    else:
        rate = tier.rate_value()
        assert rate is not None  # the model requires exactly one of amount_fen, rate, rate_bp
        amount, working = _times_rate(base, rate)
        text += f"，按 {_percent(rate)} 计：{working}"
    amount, text = _capped(amount, text, standard.cap_fen)
    return AmountResult(amount_fen=amount, explanation=text, quantified=True)


def _manual(standard: ManualAmount) -> AmountResult:
    text = "金额由评审确定" + (f"：{standard.note}" if standard.note else "")
    if standard.max_fen is not None:
        text += f"（最高 {format_fen(standard.max_fen)}）"
    return AmountResult(amount_fen=0, explanation=text + "，暂按 0 元计", quantified=False)


def _sum(standard: SumOfParts, facts: Mapping[str, Any]) -> AmountResult:
    parts = [_compute(part, facts) for part in standard.parts]
    total = sum(part.amount_fen for part in parts)
    working = "；".join(f"（{i}）{part.explanation}" for i, part in enumerate(parts, start=1))
    text = f"{working}；合计 {format_fen(total)}"
    total, text = _capped(total, text, standard.cap_fen)
    missing = list(dict.fromkeys(name for part in parts for name in part.missing_fields))
    return AmountResult(
        amount_fen=total,
        explanation=text,
        quantified=all(part.quantified for part in parts),
        missing_fields=missing,
    )


def _compute(standard: AnyStandard, facts: Mapping[str, Any]) -> AmountResult:
    match standard:
        case FixedAmount():
            return _fixed(standard)
        case RateOfBase():
            return _rate(standard, facts)
        case Tiered():
            return _tiers(standard, facts)
        case SumOfParts():
            return _sum(standard, facts)
        case ManualAmount():
            return _manual(standard)
    raise TypeError(f"未知的扶持标准类型：{type(standard).__name__}")


def compute_amount(standard: AnyStandard | Mapping[str, Any], facts: Any) -> AmountResult:
    """The amount an enterprise gets under `standard`, rounded to the fen half-up, with a Chinese working."""
    parsed = standard if isinstance(standard, AnyStandard) else parse_standard(standard)
    return _compute(parsed, facts_of(facts))


def amount_for_facts(standard: AnyStandard, facts: Mapping[str, Any]) -> AmountResult:
    """`compute_amount` for a parsed standard and facts already normalised by `facts_of` (the calculator's loop)."""
    return _compute(standard, facts)
