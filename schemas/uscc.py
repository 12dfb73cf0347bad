"""Unified social credit code (统一社会信用代码, GB 32100-2015): validation and realistic test codes.

Layout: 1 registration authority (登记管理部门) · 2 entity type (机构类别) · 3–8 region (行政区划) ·
9–17 organisation code (主体标识码, GB 11714, its own check char last) · 18 check char.
python-stdnum's `cn.uscc` computes the check char, but rejects a letter in position 1, which the
standard allows (A 中央军委改革和编制办公室, N 农业, Y 其他), so the format rules are applied here.
"""

from __future__ import annotations

import random
import unicodedata

from stdnum.cn import uscc as _stdnum_uscc

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # digits and capitals except I, O, Z, S, V
LENGTH = 18

# (registration authority + entity type, weight) for demo data: mostly enterprises (91).
_KINDS: list[tuple[str, int]] = [
    ("91", 850),  # 工商 · 企业
    ("92", 50),  # 工商 · 个体工商户
    ("93", 30),  # 工商 · 农民专业合作社
    ("12", 20),  # 机构编制 · 事业单位
    ("52", 20),  # 民政 · 民办非企业单位
    ("51", 10),  # 民政 · 社会团体
    ("N2", 15),  # 农业 · 村级集体经济组织
    ("Y1", 5),  # 其他
]
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _normalize(code: object) -> str:
    if not isinstance(code, str):
        raise ValueError(f"统一社会信用代码必须是文本 / USCC must be a string, got {type(code).__name__}")
    return _stdnum_uscc.compact(unicodedata.normalize("NFKC", code))


def _check_characters(code: str) -> None:
    """Positions 2–8 are digits (type code and region); the others come from the 31-character set."""
    for i, c in enumerate(code, start=1):
        allowed = "0123456789" if 2 <= i <= 8 else ALPHABET
        if c not in allowed:
            rule = (
                "第2–8位（机构类别与行政区划码）只能是数字"
                if 2 <= i <= 8
                else "只能是数字或除 I、O、Z、S、V 外的大写字母"
            )
            raise ValueError(
                f"统一社会信用代码第{i}位“{c}”不合规：{rule}（字符规则，GB 32100-2015）"
                f" / USCC character {i} {c!r} is not allowed there"
            )


def check_char(first17: str) -> str:
    """The check character (position 18) for the first 17 characters."""
    body = _normalize(first17)
    if len(body) != LENGTH - 1:
        raise ValueError(
            f"计算校验码需要前17位，实为{len(body)}位（长度规则）"
            f" / check char needs 17 characters, got {len(body)}"
        )
    _check_characters(body)
    return _stdnum_uscc.calc_check_digit(body)


def validate(code: str) -> str:
    """The normalized code (spaces and dashes removed, upper case); ValueError names the broken rule."""
    code = _normalize(code)
    if len(code) != LENGTH:
        raise ValueError(
            f"统一社会信用代码应为18位，实为{len(code)}位（长度规则，GB 32100-2015）"
            f" / USCC must be 18 characters, got {len(code)}"
        )
    _check_characters(code)
    expected = _stdnum_uscc.calc_check_digit(code[:17])
    if code[17] != expected:
        raise ValueError(
            f"统一社会信用代码校验码错误：第18位应为“{expected}”，实为“{code[17]}”"
            "（校验码规则，GB 32100-2015）"
            f" / USCC check character should be {expected!r}, got {code[17]!r}"
        )
    return code


def is_valid(code: object) -> bool:
    try:
        validate(code)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def organisation_check_char(first8: str) -> str:
    """GB 11714 check char of an organisation code (position 17 of a USCC): 0–9 or X."""
    if len(first8) != 8 or any(c not in ALPHABET for c in first8):
        raise ValueError(
            f"组织机构代码本体应为8位合规字符 / organisation code body must be 8 characters: {first8!r}"
        )
    total = sum(int(c, 36) * w for c, w in zip(first8, _GB11714_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def generate(rng: random.Random, region_code: str = "420500") -> str:
    """A realistic valid code for demo data and benchmarks (default region 420500 宜昌市)."""
    if len(region_code) != 6 or not region_code.isdigit():
        raise ValueError(f"行政区划码应为6位数字 / region code must be 6 digits: {region_code!r}")
    kinds, weights = zip(*_KINDS, strict=True)
    kind = rng.choices(kinds, weights=weights)[0]
    if rng.random() < 0.6:
        # Codes assigned since 2015 start with "MA" (e.g. 91420500MA4F…); older ones are 8 digits.
        body = "MA" + "".join(rng.choice(ALPHABET) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = kind + region_code + body + organisation_check_char(body)
    return first17 + check_char(first17)
