"""Support standards: fixed, rate × base with floor and cap, tiers, sums, manual; rounding half-up to the fen."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from db.models import Enterprise
from rules.amounts import compute_amount, is_fully_quantified, parse_standard, round_half_up
from schemas.standards import RateOfBase, Standard

FACTS: dict[str, Any] = {
    "tax_paid_fen": 123_456_789,  # 1,234,567.89 元
    "revenue_fen": 60_000_000_000,  # 6 亿元
    "employees": 120,
    "rd_ratio_bp": 450,
}


def amount(standard: dict[str, Any], **facts: Any) -> Any:
    return compute_amount(standard, {**FACTS, **facts})


def rate(base_fen: int, value: str | int, key: str = "rate", **extra: Any) -> Any:
    return amount({"kind": "rate", "base": "tax_paid_fen", key: value, **extra}, tax_paid_fen=base_fen)


# ---------------------------------------------------------------- fixed


def test_fixed_amount() -> None:
    result = amount({"kind": "fixed", "amount_fen": 10_000_000})
    assert (result.amount_fen, result.quantified) == (10_000_000, True)
    assert result.explanation == "定额奖补 100,000.00 元"


# ---------------------------------------------------------------- rate × base, rounding


def test_rate_as_decimal_string_and_as_basis_points_agree() -> None:
    by_string = rate(123_456_789, "0.05")
    by_bp = rate(123_456_789, 500, key="rate_bp")
    assert by_string.amount_fen == by_bp.amount_fen == 6_172_839  # 6,172,839.45 分 → 6,172,839
    assert by_string.explanation == ("按纳税额的 5% 计：1,234,567.89 元 × 5% = 61,728.39 元（按四舍五入保留到分）")
    assert by_string.quantified and by_string.missing_fields == []


@pytest.mark.parametrize(
    ("base_fen", "rate_text", "expected"),
    [
        (1, "0.5", 1),  # 0.5 分 → 1 (half goes up)
        (3, "0.5", 2),  # 1.5 → 2
        (5, "0.5", 3),  # 2.5 → 3, not banker's 2
        (25, "0.1", 3),  # 2.5 → 3 although 0.1 is inexact in binary floating point
        (24, "0.1", 2),  # 2.4 → 2
        (1005, "0.01", 10),  # 10.05 → 10
        (1050, "0.01", 11),  # 10.5 → 11
        (4, "0.125", 1),  # 0.5 → 1
        (3, "0.125", 0),  # 0.375 → 0
        (1, "0.4999999999", 0),
        (1, "0.5000000001", 1),
        (2**62, "0.0000000001", 461_168_602),  # 461168601.8427387904 → exact on big numbers
        (10**18 + 1, "0.5", 5 * 10**17 + 1),  # a float would lose the last fen
        (0, "0.05", 0),
        (12345, "0", 0),
        (12345, "1", 12345),
    ],
)
def test_rounding_is_half_up_to_the_fen(base_fen: int, rate_text: str, expected: int) -> None:
    assert rate(base_fen, rate_text).amount_fen == expected


def test_rounding_note_only_when_rounding_happened() -> None:
    assert "四舍五入" not in rate(10_000, "0.05").explanation
    assert "四舍五入" in rate(10_001, "0.05").explanation


def test_negative_base_pays_nothing() -> None:
    result = rate(-100_000, "0.05")
    assert result.amount_fen == 0 and "基数为负，按 0 元计" in result.explanation


@given(base=st.integers(-(10**15), 10**15), bp=st.integers(0, 20_000))
def test_round_half_up_agrees_with_decimal(base: int, bp: int) -> None:
    exact = Decimal(base) * Decimal(bp) / Decimal(10_000)
    assert round_half_up(Fraction(base) * Fraction(bp, 10_000)) == int(exact.quantize(Decimal(1), ROUND_HALF_UP))


def test_round_half_up_halves_go_away_from_zero() -> None:
    assert [round_half_up(Fraction(n, 2)) for n in (-3, -1, 1, 3)] == [-2, -1, 1, 2]
    assert round_half_up(Decimal("2.5")) == 3 and round_half_up(7) == 7


def test_floor_and_cap() -> None:
    capped = rate(123_456_789, "0.05", cap_fen=5_000_000)
    assert capped.amount_fen == 5_000_000
    assert capped.explanation.endswith("超过封顶金额，按封顶 50,000.00 元 核定")
    floored = rate(1_000, "0.05", floor_fen=100_000, cap_fen=5_000_000)
    assert floored.amount_fen == 100_000
    assert floored.explanation.endswith("低于保底金额，按保底 1,000.00 元 核定")
    within = rate(1_000_000, "0.05", floor_fen=100, cap_fen=5_000_000)
    assert within.amount_fen == 50_000 and "保底" not in within.explanation and "封顶" not in within.explanation
    assert rate(100_000_000, "0.05", cap_fen=5_000_000).amount_fen == 5_000_000  # exactly at the cap


def test_missing_base_is_a_clear_result_not_a_crash() -> None:
    result = amount({"kind": "rate", "base": "tax_paid_fen", "rate": "0.05", "floor_fen": 100}, tax_paid_fen=None)
    assert (result.amount_fen, result.quantified, result.missing_fields) == (0, False, ["tax_paid_fen"])
    assert result.explanation == "缺少纳税额（tax_paid_fen）数据，无法按比例计算金额，金额暂按 0 元计"


# ---------------------------------------------------------------- tiers

TIERS = {
    "kind": "tiers",
    "base": "revenue_fen",
    "tiers": [
        {"at_least": 10_000_000_000, "amount_fen": 20_000_000, "label": "营收首次突破1亿元"},
        {"at_least": 50_000_000_000, "amount_fen": 50_000_000},
        {"at_least": 100_000_000_000, "rate": "0.001"},
    ],
}


@pytest.mark.parametrize(
    ("revenue_fen", "expected", "words"),
    [
        (9_999_999_999, 0, "未达到最低档门槛（≥ 100,000,000.00 元），不予奖补"),
        (10_000_000_000, 20_000_000, "达到营收首次突破1亿元（≥ 100,000,000.00 元），奖补 200,000.00 元"),
        (49_999_999_999, 20_000_000, "营收首次突破1亿元"),
        (50_000_000_000, 50_000_000, "达到第2档（≥ 500,000,000.00 元），奖补 500,000.00 元"),
        (200_000_000_050, 200_000_000, "达到第3档"),  # 0.1% of 2,000,000,000.50 元 = 2,000,000.0005 元
    ],
)
def test_tiers_pick_the_highest_tier_reached(revenue_fen: int, expected: int, words: str) -> None:
    result = amount(TIERS, revenue_fen=revenue_fen)
    assert result.amount_fen == expected and result.quantified
    assert words in result.explanation


def test_rate_tier_rounds_and_tiers_can_be_capped() -> None:
    result = amount({**TIERS, "cap_fen": 100_000_000}, revenue_fen=200_000_000_500)
    assert result.amount_fen == 100_000_000 and "按封顶 1,000,000.00 元" in result.explanation
    assert amount(TIERS, revenue_fen=100_000_000_500).amount_fen == 100_000_001  # 100,000,000.5 → 100,000,001


def test_tiers_on_a_count_field() -> None:
    standard = {
        "kind": "tiers",
        "base": "employees",
        "tiers": [{"at_least": 100, "amount_fen": 1_000_000}, {"at_least": 500, "amount_fen": 3_000_000}],
    }
    result = amount(standard, employees=120)
    assert result.amount_fen == 1_000_000
    assert result.explanation == "从业人数 120 人，达到第1档（≥ 100 人），奖补 10,000.00 元"
    missing = amount(standard, employees=None)
    assert (missing.amount_fen, missing.quantified, missing.missing_fields) == (0, False, ["employees"])
    assert "缺少从业人数（employees）数据" in missing.explanation


# ---------------------------------------------------------------- sums and manual parts


def test_sum_of_parts_with_cap() -> None:
    standard = {
        "kind": "sum",
        "parts": [
            {"kind": "fixed", "amount_fen": 5_000_000},
            {"kind": "rate", "base": "tax_paid_fen", "rate_bp": 300},
        ],
    }
    result = amount(standard, tax_paid_fen=100_000_000)
    assert result.amount_fen == 8_000_000
    assert result.explanation == (
        "（1）定额奖补 50,000.00 元；（2）按纳税额的 3% 计：1,000,000.00 元 × 3% = 30,000.00 元；合计 80,000.00 元"
    )
    capped = amount({**standard, "cap_fen": 6_000_000}, tax_paid_fen=100_000_000)
    assert capped.amount_fen == 6_000_000 and capped.explanation.endswith("按封顶 60,000.00 元 核定")


def test_sum_with_missing_data_keeps_the_known_parts_and_says_what_is_missing() -> None:
    standard = {
        "kind": "sum",
        "parts": [
            {"kind": "fixed", "amount_fen": 5_000_000},
            {"kind": "rate", "base": "tax_paid_fen", "rate": "0.03"},
            {"kind": "tiers", "base": "revenue_fen", "tiers": [{"at_least": 0, "amount_fen": 1}]},
            {"kind": "rate", "base": "tax_paid_fen", "rate": "0.01"},
        ],
    }
    result = amount(standard, tax_paid_fen=None, revenue_fen=None)
    assert result.amount_fen == 5_000_000 and not result.quantified
    assert result.missing_fields == ["tax_paid_fen", "revenue_fen"]
    assert "缺少纳税额" in result.explanation and "缺少营业收入" in result.explanation


def test_manual_amount_is_not_quantified() -> None:
    manual = {"kind": "manual", "max_fen": 50_000_000, "note": "按专家评审结果确定"}
    result = amount(manual)
    assert (result.amount_fen, result.quantified) == (0, False)
    assert result.explanation == "金额由评审确定：按专家评审结果确定（最高 500,000.00 元），暂按 0 元计"
    assert not is_fully_quantified(manual)
    assert not is_fully_quantified({"kind": "sum", "parts": [{"kind": "fixed", "amount_fen": 1}, manual]})
    assert not amount({"kind": "sum", "parts": [{"kind": "fixed", "amount_fen": 1}, manual]}).quantified


@pytest.mark.parametrize(
    "standard",
    [
        {"kind": "fixed", "amount_fen": 1},
        {"kind": "rate", "base": "revenue_fen", "rate": "0.01"},
        TIERS,
        {"kind": "sum", "parts": [{"kind": "fixed", "amount_fen": 1}, TIERS]},
    ],
)
def test_data_driven_standards_are_fully_quantified(standard: dict[str, Any]) -> None:
    assert is_fully_quantified(standard)
    assert is_fully_quantified(parse_standard(standard))


def test_compute_amount_takes_an_enterprise_row_and_parsed_models() -> None:
    row = Enterprise(uscc="91420500MA4F0Q1X2K", name="某公司", region_code="420502", tax_paid_fen=2_000_000)
    standard = parse_standard({"kind": "rate", "base": "tax_paid_fen", "rate": "0.1"})
    assert isinstance(standard, RateOfBase)
    assert compute_amount(standard, row).amount_fen == 200_000


def test_standard_is_a_pydantic_field_type_and_round_trips() -> None:
    class FundItemMoney(BaseModel):
        standard: Standard

    data = {"kind": "sum", "cap_fen": 10, "parts": [{"kind": "rate", "base": "revenue_fen", "rate": "0.05"}]}
    model = FundItemMoney(standard=data)
    assert model.model_dump(mode="json")["standard"]["parts"][0] == {
        "kind": "rate",
        "base": "revenue_fen",
        "rate": "0.05",
        "rate_bp": None,
        "floor_fen": None,
        "cap_fen": None,
    }
    assert FundItemMoney.model_validate(model.model_dump(mode="json")) == model
    assert "examples" in str(FundItemMoney.model_json_schema())


# ---------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"kind": "fixed", "amount_fen": -1}, ["amount_fen", "greater than or equal to 0"]),
        ({"kind": "fixed", "amount_fen": 1.5}, ["amount_fen", "valid integer"]),
        ({"kind": "fixed", "amount_fen": "100"}, ["amount_fen", "valid integer"]),
        ({"kind": "bonus"}, ["kind", "bonus"]),
        ({"kind": "rate", "base": "tax_paid_fen", "rate": 0.05}, ["rate", "字符串小数", "0.05"]),
        ({"kind": "rate", "base": "tax_paid_fen", "rate": "5%"}, ["rate", "'5%'", "不是小数"]),
        ({"kind": "rate", "base": "tax_paid_fen", "rate": "-0.1"}, ["rate", "不小于 0"]),
        ({"kind": "rate", "base": "tax_paid_fen", "rate": "NaN"}, ["rate", "有限小数"]),
        ({"kind": "rate", "base": "tax_paid_fen"}, ["rate", "rate_bp", "之一"]),
        ({"kind": "rate", "base": "tax_paid_fen", "rate": "0.1", "rate_bp": 10}, ["rate_bp", "之一"]),
        ({"kind": "rate", "base": "tax_paid_fen", "rate_bp": -5}, ["rate_bp", "greater than or equal to 0"]),
        ({"kind": "rate", "base": "profit_fen", "rate": "0.1"}, ["base", "'profit_fen'", "数值字段"]),
        ({"kind": "rate", "base": "employees", "rate": "0.1"}, ["base", "'employees'", "从业人数", "不是金额字段"]),
        ({"kind": "rate", "base": "tags", "rate": "0.1"}, ["base", "'tags'", "数值字段"]),
        (
            {"kind": "rate", "base": "tax_paid_fen", "rate": "0.1", "floor_fen": 10, "cap_fen": 5},
            ["floor_fen=10", "cap_fen=5", "保底金额"],
        ),
        ({"kind": "tiers", "base": "revenue_fen", "tiers": []}, ["tiers", "不能为空"]),
        (
            {
                "kind": "tiers",
                "base": "revenue_fen",
                "tiers": [{"at_least": 10, "amount_fen": 1}, {"at_least": 10, "amount_fen": 2}],
            },
            ["at_least", "严格递增", "10 之后是 10"],
        ),
        (
            {"kind": "tiers", "base": "revenue_fen", "tiers": [{"at_least": 10, "amount_fen": 1, "rate": "0.1"}]},
            ["at_least=10", "amount_fen、rate、rate_bp 之一"],
        ),
        ({"kind": "tiers", "base": "revenue_fen", "tiers": [{"at_least": 10}]}, ["at_least=10", "之一"]),
        (
            {"kind": "tiers", "base": "employees", "tiers": [{"at_least": 10, "rate": "0.1"}]},
            ["base='employees'", "不是金额字段", "amount_fen"],
        ),
        ({"kind": "tiers", "base": "region_code", "tiers": [{"at_least": 1, "amount_fen": 1}]}, ["region_code"]),
        ({"kind": "sum", "parts": []}, ["parts", "不能为空"]),
        ({"kind": "sum", "parts": [{"kind": "rate", "base": "x", "rate": "1"}]}, ["sum.parts.0.rate.base", "'x'"]),
        ({"kind": "fixed", "amount_fen": 1, "extra": 1}, ["extra", "Extra inputs are not permitted"]),
    ],
)
def test_validation_errors_name_the_field_and_the_rule(data: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        parse_standard(data)
    message = str(info.value)
    for word in words:
        assert word in message
