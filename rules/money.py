"""Money at the edges: integer fen (分) inside, Decimal only when parsing, 大写金额 on notices."""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import cn2an

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
    # A string keeps cn2an away from floats; it handles 零 and 整 per the 支付结算 writing rules.
    return cn2an.an2cn(f"{yuan}.{cents:02d}", "rmb")


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
