"""Reading and validating an archive import file: rows from CSV, Excel or JSON, each checked against its source's
columns, with a Chinese error per bad cell (row number as the user counts it: the header is row 1).

Pure: bytes in, typed values and errors out; the database work is services/archive.py and db/repositories/archive.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from operator import mul
from typing import Any

from schemas import uscc as uscc_rules
from schemas.archive_sources import DATE_COLUMN, USCC_COLUMN, Column, Parse, Source, industry_sections, region_codes
from schemas.fields import FIELDS

MAX_FEN = 2**63 - 1
_DECIMAL = re.compile(r"^(\d+)(?:\.(\d{1,2}))?$")
_TAG_SPLIT = re.compile(r"[;；、,，]")
_INDUSTRY = re.compile(r"^([A-Z])(\d{2})(\d{0,2})$")
# A code already in canonical form takes this path (the checksum of GB 32100-2015 computed inline); anything else goes
# through schemas.uscc.validate, which normalizes it and names the broken rule. Same answers, far fewer calls.
_CANONICAL = re.compile(r"^[0-9A-HJ-NPQRTUWXY][0-9]{7}[0-9A-HJ-NPQRTUWXY]{10}$")
_VALUE = {c: i for i, c in enumerate(uscc_rules.ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def check_uscc(cell: str) -> str:
    """The validated, normalized USCC; ValueError (Chinese, naming the rule) otherwise."""
    if _CANONICAL.match(cell):
        total = sum(map(mul, map(_VALUE.__getitem__, cell[:17]), _WEIGHTS))
        if uscc_rules.ALPHABET[(31 - total % 31) % 31] == cell[17]:
            return cell
    return uscc_rules.validate(cell)


@dataclass(frozen=True)
class RowError:
    row: int  # as the user counts: the header is row 1 (JSON: the n-th object, from 1)
    column: str
    value: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "message": self.message}


@dataclass
class Parsed:
    """Valid rows (row number, uscc, source date, {field: value}) and every error found; the import stores nothing
    if there is any error."""

    rows: list[tuple[int, str, date | None, dict[str, Any]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total: int = 0


class FileError(ValueError):
    """The file as a whole cannot be read (format, encoding, missing columns): a Chinese message."""


def detect_format(file_name: str) -> str:
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if suffix in ("csv", "txt"):
        return "csv"
    if suffix in ("xlsx", "xlsm"):
        return "xlsx"
    if suffix == "json":
        return "json"
    raise FileError(f"文件 {file_name!r} 的格式无法识别：只接受 .csv、.xlsx、.json（文件格式规则）")


def read_table(data: bytes, fmt: str) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) from the file's bytes; every cell as the file gives it."""
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                raise FileError("CSV 文件编码无法识别：请使用 UTF-8 或 GB18030（编码规则）") from None
        table = list(csv.reader(io.StringIO(text)))
        if not table:
            raise FileError("文件为空：第1行应为表头（表头规则）")
        return [h.strip() for h in table[0]], table[1:]
    if fmt == "xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a damaged file
            raise FileError("Excel 文件无法读取：请上传 .xlsx 格式的工作簿（文件格式规则）") from None
        sheet = book.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        book.close()
        if not rows:
            raise FileError("工作表为空：第1行应为表头（表头规则）")
        return [str(h).strip() if h is not None else "" for h in rows[0]], rows[1:]
    if fmt == "json":
        try:
            items = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileError(f"JSON 文件无法解析：{exc}（JSON 格式规则）") from None
        if isinstance(items, dict) and isinstance(items.get("rows"), list):
            items = items["rows"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise FileError('JSON 文件应为对象数组 [{...}, ...] 或 {"rows": [...]}（JSON 格式规则）')
        header = list(dict.fromkeys(k for i in items for k in i))
        return header, [[i.get(k) for k in header] for i in items]
    raise FileError(f"不支持的格式 {fmt!r}：只接受 csv、xlsx、json（文件格式规则）")


def _text(value: Any) -> str:
    if type(value) is str:  # every CSV cell: the one test that matters first
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()[:10]
    return str(value).strip()


def _date(text: str) -> date:
    digits = text.replace("/", "-").replace(".", "-")
    try:
        if len(digits) == 8 and digits.isdigit():
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return date.fromisoformat(digits[:10])
    except ValueError:
        raise ValueError("不是有效日期，应写成 YYYY-MM-DD，如 2026-06-30（日期规则）") from None


def _hundredths(text: str, what: str) -> int:
    plain = text.replace(",", "").replace("，", "")
    match = _DECIMAL.match(plain)
    if match is None:
        raise ValueError(f"不是不小于0、最多两位小数的{what}，如 12345.67（{what}规则）")
    whole, frac = match.groups()
    value = int(whole) * 100 + int((frac or "").ljust(2, "0"))
    if value > MAX_FEN:
        raise ValueError(f"{what}超出可存储的范围（{what}规则）")
    return value


def parse_cell(column: Column, text: str, src: Source) -> Any:
    """The stored value of one non-empty cell; ValueError with the rule it breaks."""
    match column.parse:
        case Parse.REGION:
            if not (len(text) == 6 and text.isdigit()):
                raise ValueError("应为6位数字的行政区划代码（GB/T 2260 规则）")
            if text not in region_codes():
                raise ValueError("不在本平台的行政区划代码表中（GB/T 2260 代码表规则）")
            return text
        case Parse.INDUSTRY:
            code = text.upper()
            m = _INDUSTRY.match(code)
            section = industry_sections().get(m.group(1)) if m else None
            if m is None or section is None:
                raise ValueError("应为门类字母加2–4位数字，如 C3484（GB/T 4754-2017 规则）")
            first, last, name = section
            if not first <= int(m.group(2)) <= last:
                raise ValueError(
                    f"大类 {m.group(2)} 不属于门类 {m.group(1)}（{name}，大类 {first:02d}–{last:02d}）"
                    "（GB/T 4754-2017 规则）"
                )
            return code
        case Parse.DATE:
            return _date(text)
        case Parse.INT:
            plain = text.replace(",", "")
            if not plain.isdigit():
                raise ValueError("应为不小于0的整数（整数规则）")
            return int(plain)
        case Parse.YUAN:
            return _hundredths(text, "金额（元）")
        case Parse.PERCENT:
            return _hundredths(text, "百分比")
        case Parse.ENUM:
            spec = FIELDS[column.field]
            for value, label in spec.choices:
                if text in (value, label):
                    return value
            allowed = "、".join(label for _, label in spec.choices)
            raise ValueError(f"不是可选值；可选：{allowed}（枚举规则）")
        case Parse.TAGS:
            tags = [t.strip() for t in _TAG_SPLIT.split(text) if t.strip()]
            unknown = [t for t in tags if t not in src.tags]
            if unknown:
                raise ValueError(f"资质 {'、'.join(unknown)} 不在名单可选值中；可选：{'、'.join(src.tags)}（枚举规则）")
            return sorted(set(tags))
    return text


def _yuan_cell(text: str) -> int:
    match = _DECIMAL.match(text)
    if match is None or "," in text:
        return _hundredths(text, "金额（元）")  # thousands separators, and the error with its rule
    whole, frac = match.groups()
    value = int(whole) * 100 + (int(frac) * (10 if len(frac) == 1 else 1) if frac else 0)
    return value if value <= MAX_FEN else _hundredths(text, "金额（元）")


def _int_cell(text: str) -> int:
    if text.isdigit():
        return int(text)
    plain = text.replace(",", "")
    if not plain.isdigit():
        raise ValueError("应为不小于0的整数（整数规则）")
    return int(plain)


def compile_cell(column: Column, src: Source) -> Callable[[str], Any]:
    """The parser of one column, chosen once per file: the common kinds skip parse_cell's dispatch (same values,
    same errors)."""
    if column.parse == Parse.YUAN:
        return _yuan_cell
    if column.parse == Parse.INT:
        return _int_cell
    if column.parse == Parse.DATE:
        return _date
    return lambda text: parse_cell(column, text, src)


def _locate(header: list[str], src: Source) -> dict[str, int]:
    """Column key → position, by English key or Chinese header; FileError names what is missing or unknown."""
    known = {c.key: c for c in (USCC_COLUMN, *src.columns, DATE_COLUMN)}
    by_name = {name: c.key for c in known.values() for name in (c.key, c.header)}
    where: dict[str, int] = {}
    unknown = []
    for i, name in enumerate(header):
        if not name:
            continue
        key = by_name.get(name)
        if key is None:
            unknown.append(name)
        else:
            where[key] = i
    if unknown:
        raise FileError(
            f"表头中的列 {'、'.join(unknown)} 不属于数据来源「{src.label}」；可用列："
            + "、".join(f"{c.key}（{c.header}）" for c in known.values())
            + "（表头规则）"
        )
    missing = [c for c in known.values() if c.required and c.key not in where]
    if missing:
        raise FileError("缺少必填列：" + "、".join(f"{c.key}（{c.header}）" for c in missing) + "（表头规则）")
    return where


def validate(header: list[str], rows: list[list[Any]], src: Source) -> Parsed:
    """Every row checked (nothing stops at the first error); the same USCC twice in one file is an error too."""
    where = _locate(header, src)
    out = Parsed(total=len(rows))
    cols = [(c, where[c.key], compile_cell(c, src)) for c in src.columns if c.key in where]
    date_at = where.get(DATE_COLUMN.key)
    uscc_at = where[USCC_COLUMN.key]
    seen: dict[str, int] = {}
    for n, raw in enumerate(rows, start=2):
        if not any(_text(v) for v in raw):
            out.total -= 1
            continue
        errors: list[RowError] = []
        cell = _text(raw[uscc_at]) if uscc_at < len(raw) else ""
        code = ""
        try:
            code = check_uscc(cell)
        except ValueError as exc:
            errors.append(RowError(n, USCC_COLUMN.header, cell, str(exc).split(" / ")[0]))
        if code and code in seen:
            errors.append(
                RowError(n, USCC_COLUMN.header, cell, f"与第{seen[code]}行重复：同一企业在一个文件中只能出现一次")
            )
        elif code:
            seen[code] = n
        values: dict[str, Any] = {}
        for column, at, parse in cols:
            text = _text(raw[at]) if at < len(raw) else ""
            if not text:
                if column.required:
                    errors.append(RowError(n, column.header, "", "必填，不能为空（必填规则）"))
                continue
            try:
                values[column.field] = parse(text)
            except ValueError as exc:
                errors.append(RowError(n, column.header, text, str(exc)))
        when = None
        if date_at is not None:
            text = _text(raw[date_at]) if date_at < len(raw) else ""
            if text:
                try:
                    when = _date(text)
                except ValueError as exc:
                    errors.append(RowError(n, DATE_COLUMN.header, text, str(exc)))
        if errors:
            out.errors.extend(errors)
        else:
            out.rows.append((n, code, when, values))
    return out


def error_report_csv(errors: list[dict[str, Any]]) -> str:
    """The per-row error report as a CSV users open in Excel (UTF-8 with BOM)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["行号", "列", "原值", "错误说明"])
    for e in errors:
        writer.writerow([e["row"], e["column"], e["value"], e["message"]])
    return "\ufeff" + buf.getvalue()
