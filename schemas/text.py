"""Shared input validators: text normalised to NFC with invisible and control characters refused, names trimmed and
non-empty, integers within int64 and the field's real range, dates within 1900–2200.

Used by the API models so every field refuses the same things with the same Chinese rule: a name with a right-to-left
override (U+202E) can show "公司限有" as "有限公司"; zero-width characters make two equal-looking names differ; NUL
and CR/LF break logs, CSV exports and SMS templates. Errors are PydanticCustomError, so the message is the rule
itself (no "Value error," prefix) and `type` names it: text_chars, name_blank, int_range, date_range.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

INT64_MAX = 2**63 - 1
# Largest money (fen), headcount and basis points anything real can hold: 1,000 亿元, 1,000 万人, 100%.
MONEY_FEN_MAX = 10**13
HEADCOUNT_MAX = 10**7
BP_MAX = 10_000
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2200, 12, 31)
# Format characters that change how text is shown but not what it says (bidi overrides and isolates, zero-width
# space/joiners, word joiner, BOM) are all in Unicode category Cf; control characters are Cc.
_ALLOWED_IN_TEXT = frozenset("\n\t")


def _refused(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


def clean_text(value: str, *, multiline: bool = False) -> str:
    """NFC-normalised text; refuses control, bidi-override and zero-width characters (multi-line text may hold
    line feeds and tabs)."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFC", value)
    for ch in text:
        if _refused(ch) and not (multiline and ch in _ALLOWED_IN_TEXT):
            raise PydanticCustomError(
                "text_chars",
                "不得包含控制字符、换行、双向覆盖或零宽字符（发现 U+{code}）",
                {"code": f"{ord(ch):04X}"},
            )
    return text


def clean_name(value: str) -> str:
    """A name: trimmed, NFC, no invisible characters, not empty."""
    if not isinstance(value, str):
        return value
    text = clean_text(value.strip())
    if not text:
        raise PydanticCustomError("name_blank", "不能为空（去除首尾空格后）")
    return text


def bounded_date(value: date) -> date:
    if isinstance(value, date) and not DATE_MIN <= value <= DATE_MAX:
        raise PydanticCustomError("date_range", "日期须在 1900-01-01 至 2200-12-31 之间")
    return value


def _int_before(value: object) -> object:
    """Refuse integers outside int64 before pydantic's own checks (so an error never mentions Python internals)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise PydanticCustomError("int_range", "数值超出 64 位整数范围")
    if isinstance(value, str) and len(value.strip().lstrip("+-")) > 19:
        raise PydanticCustomError("int_range", "数值超出 64 位整数范围")
    return value


Name = Annotated[str, AfterValidator(clean_name)]
Text = Annotated[str, AfterValidator(clean_text)]
LongText = Annotated[str, AfterValidator(lambda v: clean_text(v, multiline=True))]
Id = Annotated[int, BeforeValidator(_int_before), Field(ge=1, le=INT64_MAX)]
Int64 = Annotated[int, BeforeValidator(_int_before), Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Fen = Annotated[int, BeforeValidator(_int_before), Field(ge=0, le=MONEY_FEN_MAX)]
Headcount = Annotated[int, BeforeValidator(_int_before), Field(ge=0, le=HEADCOUNT_MAX)]
BasisPoints = Annotated[int, BeforeValidator(_int_before), Field(ge=0, le=BP_MAX)]
Day = Annotated[date, AfterValidator(bounded_date)]
