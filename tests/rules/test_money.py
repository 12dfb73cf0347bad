"""Money formatting: 大写金额, display, and parsing typed amounts to integer fen."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.money import MAX_FEN, format_yuan, parse_yuan, to_capitals


@pytest.mark.parametrize(
    ("fen", "capitals"),
    [
        (0, "零元整"),
        (100, "壹元整"),
        (10000000, "壹拾万元整"),
        (1000, "壹拾元整"),
        (50, "伍角"),
        (5, "伍分"),
        (53, "伍角叁分"),
        (10005, "壹佰元零伍分"),
        (10050, "壹佰元伍角"),
        (140950, "壹仟肆佰零玖元伍角"),
        (600714, "陆仟零柒元壹角肆分"),
        (32504, "叁佰贰拾伍元零肆分"),
        (10700053, "壹拾万柒仟元伍角叁分"),
        (100010000 * 100, "壹亿零壹万元整"),
        (123456789012, "壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元壹角贰分"),
        (10**18 - 1, "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_capitals(fen: int, capitals: str) -> None:
    assert to_capitals(fen) == capitals


def test_capitals_rejects_floats_negatives_and_overflow() -> None:
    with pytest.raises(TypeError, match="整数分"):
        to_capitals(100.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_capitals(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="负数"):
        to_capitals(-1)
    with pytest.raises(ValueError, match="超出"):
        to_capitals(10**18)


@given(fen=st.integers(min_value=0, max_value=10**18 - 1))
def test_capitals_shape(fen: int) -> None:
    text = to_capitals(fen)
    assert text.endswith(("整", "角", "分"))
    assert text.endswith("整") == (fen % 100 == 0)
    assert ("分" in text) == (fen % 10 != 0)
    assert not set(text) & set("0123456789一二三四五六七八九十百千")


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00元"), (5, "0.05元"), (10000000, "100,000.00元"), (123456789, "1,234,567.89元"), (-150, "-1.50元")],
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("100,000.00元", 10000000),
        ("100000", 10000000),
        ("¥1.5", 150),
        ("￥ 1,234.56 元", 123456),
        ("人民币100元", 10000),
        ("１２３．４５", 12345),
        ("0.005", 1),  # half-up
        ("0.0049", 0),
        ("1.005", 101),
        ("2.675", 268),  # a float would give 2.67
        ("-1.005", -101),
        (".5", 50),
        ("92233720368547758.07", MAX_FEN),
    ],
)
def test_parse_yuan(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


def test_parse_decimal() -> None:
    assert parse_yuan(Decimal("0.125")) == 13
    with pytest.raises(ValueError):
        parse_yuan(Decimal("NaN"))


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1,00", "1e5", "12,34.5", "--1", "1元2角", "Infinity", "1 000,0"])
def test_parse_yuan_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValueError, match="金额格式不正确") as err:
        parse_yuan(text)
    assert "100,000.00" in str(err.value)


def test_parse_yuan_rejects_floats_and_overflow() -> None:
    with pytest.raises(TypeError, match="浮点数"):
        parse_yuan(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="超出"):
        parse_yuan("92233720368547758.08")
    with pytest.raises(ValueError, match="超出"):
        parse_yuan("9" * 60)


@given(fen=st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_round_trips(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


def test_capitals_write_zeros_as_cn2an_does_over_many_amounts() -> None:
    """rules.money writes 大写金额 itself (the exports spell every voucher); cn2an's rmb mode is the reference."""
    import random

    import cn2an

    rng = random.Random(14)
    amounts = [0, 5, 50, 55, 10005, 10050, 100050, 1005000, 10001000000, 10000100000, 11000100000, 100010000000000,
               100000000000000, 10000000000000001, 10**18 - 1]  # fmt: skip
    amounts += [int("".join(rng.choice("0000123456789") for _ in range(rng.randrange(1, 19)))) for _ in range(3000)]
    for fen in amounts:
        yuan, cents = divmod(fen, 100)
        assert to_capitals(fen) == cn2an.an2cn(f"{yuan}.{cents:02d}", "rmb"), fen
