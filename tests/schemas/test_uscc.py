"""Unified social credit code (GB 32100-2015)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc

from schemas.uscc import ALPHABET, check_char, generate, is_valid, organisation_check_char, validate

VALID = "91110000600037341L"  # python-stdnum's documented example


def test_known_valid_code() -> None:
    assert validate(VALID) == VALID
    assert is_valid(VALID)
    assert check_char(VALID[:17]) == "L"


def test_normalizes_spaces_dashes_case_and_full_width() -> None:
    assert validate(" 9111 0000-6000 3734 1l ") == VALID
    assert validate("９１１１００００６０００３７３４１Ｌ") == VALID


def test_letter_in_position_one_is_valid() -> None:
    # N (农业) · 2 village collective; stdnum wrongly refuses the letter.
    body = "N2420500" + "MA4F0Q1X" + organisation_check_char("MA4F0Q1X")
    code = body + check_char(body)
    assert validate(code) == code
    assert not stdnum_uscc.is_valid(code)
    for first in "AY":
        other = first + code[1:17]
        assert is_valid(other + check_char(other))


@pytest.mark.parametrize("code", ["", "91110000600037341", "91110000600037341LL", "9"])
def test_length_rule(code: str) -> None:
    with pytest.raises(ValueError, match=r"应为18位.*长度规则") as err:
        validate(code)
    assert "18 characters" in str(err.value)
    assert not is_valid(code)


@pytest.mark.parametrize(
    ("code", "position"),
    [
        ("91110000600I37341L", 12),  # I is never used
        ("9111000060003734OL", 17),  # O is never used
        ("9A110000600037341L", 2),  # entity type is a digit
        ("9111A000600037341L", 5),  # region code is digits
        ("I1110000600037341L", 1),
        ("91110000600037341*", 18),
    ],
)
def test_character_rule(code: str, position: int) -> None:
    with pytest.raises(ValueError, match=rf"第{position}位.*字符规则"):
        validate(code)
    assert not is_valid(code)


def test_check_digit_rule() -> None:
    with pytest.raises(ValueError, match=r"校验码错误：第18位应为“L”，实为“M”.*校验码规则"):
        validate(VALID[:17] + "M")
    assert not is_valid(VALID[:17] + "M")


def test_check_char_needs_seventeen_valid_characters() -> None:
    with pytest.raises(ValueError, match="前17位"):
        check_char(VALID)
    with pytest.raises(ValueError, match="字符规则"):
        check_char("9111000060003734I")


def test_non_strings_are_invalid() -> None:
    assert not is_valid(None)
    assert not is_valid(91110000600037341)
    with pytest.raises(ValueError, match="文本"):
        validate(None)  # type: ignore[arg-type]


def test_organisation_code_check_char() -> None:
    # 60003734-1: the organisation code inside the stdnum example.
    assert organisation_check_char("60003734") == "1"
    assert organisation_check_char("MA4F0Q1X") in "0123456789X"
    with pytest.raises(ValueError):
        organisation_check_char("6000373")


def test_generate_is_deterministic_and_uses_the_region() -> None:
    first = [generate(random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    code = generate(random.Random(7), region_code="110105")
    assert code[2:8] == "110105"
    with pytest.raises(ValueError, match="6位数字"):
        generate(random.Random(7), region_code="4205")


@settings(max_examples=500)
@given(seed=st.integers(min_value=0, max_value=2**32), region=st.from_regex(r"[1-6][0-9]{5}", fullmatch=True))
def test_generated_codes_always_validate(seed: int, region: str) -> None:
    code = generate(random.Random(seed), region_code=region)
    assert validate(code) == code
    assert code[2:8] == region
    assert code[16] == organisation_check_char(code[8:16])
    if code[0].isdigit():
        assert stdnum_uscc.is_valid(code)


@settings(max_examples=300)
@given(body=st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_check_char_agrees_with_the_standard_formula(body: str) -> None:
    body = body[0] + "1" + "420500" + body[8:]
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, weights, strict=True))
    assert check_char(body) == ALPHABET[(31 - total % 31) % 31]


@settings(max_examples=300)
@given(seed=st.integers(min_value=0, max_value=2**32), position=st.integers(min_value=0, max_value=17))
def test_any_single_substitution_is_caught(seed: int, position: int) -> None:
    rng = random.Random(seed)
    code = generate(rng)
    allowed = "0123456789" if 1 <= position <= 7 else ALPHABET
    replacement = rng.choice([c for c in allowed if c != code[position]])
    assert not is_valid(code[:position] + replacement + code[position + 1 :])
