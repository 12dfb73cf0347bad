"""Money at the edges: integer fen (分) inside, Decimal only when parsing, 大写金额 on notices."""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

MAX_FEN = 2**63 - 1  # BigInteger columns
_MAX_YUAN = Decimal(MAX_FEN) / 100
_CAPITALS_MAX_FEN = 10**18 - 1  # cn2an writes at most 16 integer digits of yuan
_AMOUNT = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$")


def _require_fen(fen: object) -> int:
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"金额必须是整数分 / amount must be integer fen, got {type(fen).__name__}")
    return fen


def to_capitals(fen: int) -> str:
    """Amount in Chinese capitals (大写金额), e.g. 10000000 → 壹拾万元整, 10005 → 壹佰元零伍分, 0 → 零元整."""
    fen = _require_fen(fen)
    if fen < 0:
        raise ValueError(f"大写金额不能为负数 / capitals need a non-negative amount, got {fen} fen")
    if fen > _CAPITALS_MAX_FEN:
        raise ValueError(f"金额超出大写金额范围（16位整数元）/ amount too large for capitals: {fen} fen")
    yuan, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    if not yuan:
        if not cents:
            return "零元整"
        return (f"{_DIGITS[jiao]}角" if jiao else "") + (f"{_DIGITS[fen_digit]}分" if fen_digit else "")
    if not cents:
        tail = "整"
    elif not jiao:
        tail = f"零{_DIGITS[fen_digit]}分"
    else:
        tail = f"{_DIGITS[jiao]}角" + (f"{_DIGITS[fen_digit]}分" if fen_digit else "")
    return f"{_yuan_capitals(yuan)}元{tail}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("仟", "佰", "拾", "")
_SECTIONS = ("", "万", "亿", "万")  # the fourth section is 万亿, its 亿 written after it


def _yuan_capitals(yuan: int) -> str:
    """Whole yuan in capitals, writing 零 as cn2an's rmb mode does (tests/rules/test_money.py compares the two): one
    零 for zeros between digits of a section or leading a section after the first, none for trailing zeros or a
    section of zeros alone. Written here because the exports spell every voucher (cn2an took ~0.2 ms each)."""
    text = str(yuan)
    text = "0" * (-len(text) % 4) + text
    groups = [text[i : i + 4] for i in range(0, len(text), 4)]
    out: list[str] = []
    for index, group in enumerate(groups):
        section = len(groups) - 1 - index
        if group == "0000":
            if section == 2 and index > 0 and groups[index - 1] != "0000":
                out.append("亿")  # 壹万亿: the 亿 of 万亿 with a section of zeros under it
            continue
        out.append(_section_capitals(group, index > 0))
        out.append(_SECTIONS[section])
    return "".join(out)


@lru_cache(maxsize=20_000)  # 10,000 sections × (first or not): an export of 100,000 vouchers spells each once
def _section_capitals(group: str, after_first: bool) -> str:
    """Four digits of a section (not all zero) in capitals; a section after the first writes its leading zeros as 零."""
    out: list[str] = []
    zero, started = False, False
    for place, ch in enumerate(group):
        if ch == "0":
            zero = zero or started or after_first
            continue
        if zero:
            out.append("零")
        out.append(_DIGITS[int(ch)] + _PLACES[place])
        zero, started = False, True
    return "".join(out)


def format_yuan(fen: int) -> str:
    """Amount for display, e.g. 10000000 → '100,000.00元'."""
    fen = _require_fen(fen)
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}元"


def parse_yuan(text: str | Decimal) -> int:
    """Fen from a yuan amount typed by a person ('100,000.00元', '¥1.5', '１２３'); half-up to the fen."""
    if isinstance(text, Decimal):
        value = text
        if not value.is_finite():
            raise ValueError(f"金额无效 / amount is not a finite number: {text}")
    elif isinstance(text, str):
        cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
        cleaned = cleaned.removeprefix("人民币").lstrip("¥").removesuffix("元")
        if cleaned.startswith(("+", "-")):
            cleaned = cleaned[0] + cleaned[1:].lstrip("¥")
        if not _AMOUNT.match(cleaned):
            raise ValueError(
                f"金额格式不正确：“{text}”，应为如 100,000.00 的元金额"
                f" / bad amount {text!r}, expected yuan like 100,000.00"
            )
        try:
            value = Decimal(cleaned.replace(",", ""))
        except InvalidOperation as exc:  # pragma: no cover - the pattern already rules this out
            raise ValueError(f"金额格式不正确 / bad amount {text!r}") from exc
    else:
        raise TypeError(
            f"parse_yuan 需要文本或 Decimal（不接受浮点数）"
            f" / expected str or Decimal, got {type(text).__name__}"
        )
    if abs(value) > _MAX_YUAN:
        raise ValueError(f"金额超出可记录范围 / amount out of range: {text}")
    fen = int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if abs(fen) > MAX_FEN:
        raise ValueError(f"金额超出可记录范围 / amount out of range: {text}")
    return fen
