"""政策自测: facts typed in by anyone (not signed in), read into the calculator's facts one field of the condition field
catalogue at a time (schemas/fields.py decides the inputs), each bounded as the trust rules ask: short NFC text
without invisible characters, numbers within the field's real range, dates within 1900–2200, at most 20 tags.

Money is typed in 元 (two decimals at most), ratios in % (two decimals at most); an empty input means "no data",
which the evaluator reports as 缺少数据, as it does for an archive without the value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.archive_sources import industry_sections, region_codes
from schemas.fields import FIELDS, FieldSpec, FieldType
from schemas.text import BP_MAX, DATE_MAX, DATE_MIN, HEADCOUNT_MAX, MONEY_FEN_MAX

MAX_TEXT = 64
MAX_TAGS = 20
MAX_TAG = 40
INDUSTRY = re.compile(r"^[A-T](\d{2}(\d{1,2})?)?$")
# What each type's input asks for, shown beside it.
HINTS: dict[FieldType, str] = {
    FieldType.MONEY_FEN: "单位：元，最多两位小数",
    FieldType.RATIO_BP: "单位：%，最多两位小数",
    FieldType.INT: "整数",
    FieldType.DATE: "YYYY-MM-DD",
    FieldType.TAGS: "多个用顿号或逗号分隔",
}


def _text(spec: FieldSpec, raw: str) -> str:
    text = unicodedata.normalize("NFC", raw.strip())
    if spec.type is FieldType.TAGS and len(text) > MAX_TAGS * (MAX_TAG + 1):
        raise ValueError(f"{spec.label}：至多 {MAX_TAGS} 个，每个至多 {MAX_TAG} 个字符")
    if spec.type is not FieldType.TAGS and len(text) > MAX_TEXT:
        raise ValueError(f"{spec.label}：至多 {MAX_TEXT} 个字符")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text):
        raise ValueError(f"{spec.label}：不得包含控制字符、双向覆盖或零宽字符")
    return text


def _decimal(spec: FieldSpec, raw: str, unit: str) -> Decimal:
    text = raw.replace(",", "").replace("，", "").strip()
    if len(text) > 20:
        raise ValueError(f"{spec.label}：数值过长")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{spec.label}：须为数字（{unit}）") from None
    if not number.is_finite() or number.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"{spec.label}：须为数字，最多两位小数（{unit}）")
    return number


def parse_value(spec: FieldSpec, raw: str) -> Any:
    """One typed-in value as the field's fact (None: left empty); ValueError names the field and the rule."""
    raw = _text(spec, raw or "")
    if not raw:
        return [] if spec.type is FieldType.TAGS else None
    match spec.type:
        case FieldType.ENUM:
            if raw not in spec.choice_values:
                raise ValueError(f"{spec.label}：须为 {'、'.join(label for _, label in spec.choices)} 之一")
            return raw
        case FieldType.INT:
            if not re.fullmatch(r"\d{1,9}", raw):
                raise ValueError(f"{spec.label}：须为 0 至 {HEADCOUNT_MAX:,} 的整数")
            value = int(raw)
            if value > HEADCOUNT_MAX:
                raise ValueError(f"{spec.label}：须为 0 至 {HEADCOUNT_MAX:,} 的整数")
            return value
        case FieldType.MONEY_FEN:
            fen = int(_decimal(spec, raw, "元") * 100)
            if not 0 <= fen <= MONEY_FEN_MAX:
                raise ValueError(f"{spec.label}：须在 0 至 {MONEY_FEN_MAX // 100:,} 元之间")
            return fen
        case FieldType.RATIO_BP:
            bp = int(_decimal(spec, raw, "%") * 100)
            if not 0 <= bp <= BP_MAX:
                raise ValueError(f"{spec.label}：须在 0 至 100% 之间")
            return bp
        case FieldType.DATE:
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                raise ValueError(f"{spec.label}：须为 YYYY-MM-DD 格式的日期") from None
            if not DATE_MIN <= day <= DATE_MAX:
                raise ValueError(f"{spec.label}：日期须在 1900-01-01 至 2200-12-31 之间")
            return day
        case FieldType.TAGS:
            tags = [t.strip() for t in re.split(r"[、,，;；\s]+", raw) if t.strip()]
            if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
                raise ValueError(f"{spec.label}：至多 {MAX_TAGS} 个，每个至多 {MAX_TAG} 个字符")
            return list(dict.fromkeys(tags))
    if spec.name == "region_code":
        if raw not in region_codes():
            raise ValueError(f"{spec.label}：请从列表中选择（行政区划代码 {raw} 不在本平台服务范围内）")
    elif spec.name == "industry_code":
        raw = raw.upper()
        if not INDUSTRY.match(raw) or raw[0] not in industry_sections():
            raise ValueError(f"{spec.label}：须为国民经济行业分类代码，如 C 或 C3511")
    return raw


def parse_facts(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The facts of every catalogue field from a form (name → text; tags may come as a list), and the errors by field."""
    facts: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in FIELDS.items():
        raw = form.get(name, "")
        if isinstance(raw, list | tuple):
            raw = "、".join(str(r) for r in raw[: MAX_TAGS + 1])
        try:
            facts[name] = parse_value(spec, str(raw)[:2000])
        except ValueError as exc:
            errors[name] = str(exc)
            facts[name] = [] if spec.type is FieldType.TAGS else None
    return facts, errors
