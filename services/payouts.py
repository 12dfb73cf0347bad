"""Payout aggregation (奖补汇聚, Yichang rules art. 37) and the duplicate-benefit check (重复享受).

A finance bureau imports payouts made outside Zhida from one CSV or Excel file in the data standard of
docs/payout-standard.md. Every row is validated first; one bad row refuses the whole file with a Chinese report
(row, column, rule), so nothing is half-imported. A row already imported (the same USCC, item, purpose, amount, date and
source document) is skipped, so importing a file again changes nothing. The duplicate check then sets Zhida's paid
cases and the imported payouts side by side: the same enterprise paid more than once for the same purpose.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook
from sqlalchemy.orm import Session

from db.repositories import payouts as repo
from rules.money import parse_yuan
from schemas import uscc as uscc_rules
from schemas.localtime import local_date
from schemas.vocabulary import Role
from services import scope as scopes
from services.errors import Forbidden, Invalid
from services.scope import Scope

# The data standard's columns, in order: (header, field, maximum length).
COLUMNS: list[tuple[str, str, int]] = [
    ("统一社会信用代码", "uscc", 18),
    ("企业名称", "enterprise_name", 200),
    ("资金事项", "item_name", 300),
    ("资金用途", "purpose", 100),
    ("金额（元）", "amount", 32),
    ("拨付日期", "paid_on", 32),
    ("主管部门", "department_name", 128),
    ("拨付文件或凭证号", "source_document", 200),
]
HEADERS = [h for h, _, _ in COLUMNS]
MAX_ROWS = 100_000
MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class RowError:
    row: int  # the row number as the file shows it (the header is row 1)
    column: str
    message: str


class ImportRefused(Invalid):
    """The file was refused as a whole; `errors` lists every bad row."""

    def __init__(self, message: str, errors: list[RowError]) -> None:
        super().__init__(message, field="file", rule="payout_standard")
        self.errors = errors


@dataclass
class ImportResult:
    batch: str
    rows: int
    imported: int
    duplicates: int
    errors: list[RowError] = field(default_factory=list)


def _finance(scope: Scope) -> None:
    if scope.role not in (Role.FINANCE, Role.ADMIN):
        raise Forbidden("奖补汇聚仅限财政部门办理", rule="finance_only")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(raw: bytes, filename: str) -> list[list[str]]:
    """The file's rows as text cells: Excel (.xlsx) or CSV (UTF-8, with or without BOM, or GB18030)."""
    if len(raw) > MAX_BYTES:
        raise Invalid("文件超过 20 MB，请分批导入", field="file", rule="max_size")
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(raw), read_only=True, data_only=True).active
        except Exception as exc:
            raise Invalid("无法读取 Excel 文件（应为 .xlsx）", field="file", rule="xlsx") from exc
        return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise Invalid("无法识别文件编码（应为 UTF-8 或 GB18030）", field="file", rule="encoding")
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]


def _parse_date(text: str) -> date:
    for sep in ("-", "/", "."):
        parts = text.split(sep)
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
    raise ValueError(text)


def validate(rows: list[list[str]]) -> tuple[list[dict[str, Any]], list[RowError]]:
    """The rows as records, and every error found (row numbers as the file shows them)."""
    if not rows or [c.strip() for c in rows[0][: len(HEADERS)]] != HEADERS:
        raise ImportRefused(
            "表头不符合奖补汇聚数据标准：应依次为" + "、".join(HEADERS),
            [RowError(1, "表头", "表头应依次为：" + "、".join(HEADERS))],
        )
    body = [(n, r) for n, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if not body:
        raise ImportRefused("文件中没有数据行", [RowError(2, "—", "没有数据行")])
    if len(body) > MAX_ROWS:
        raise ImportRefused(f"一次最多导入 {MAX_ROWS} 行", [RowError(MAX_ROWS + 2, "—", "行数超过上限")])
    records, errors = [], []
    for number, row in body:
        cells = (row + [""] * len(COLUMNS))[: len(COLUMNS)]
        record: dict[str, Any] = {}
        for (header, name, limit), value in zip(COLUMNS, cells, strict=True):
            if not value:
                errors.append(RowError(number, header, f"{header}不能为空"))
            elif len(value) > limit:
                errors.append(RowError(number, header, f"{header}不能超过 {limit} 个字符"))
            record[name] = value
        if record["uscc"]:
            try:
                record["uscc"] = uscc_rules.validate(record["uscc"])
            except ValueError as exc:
                errors.append(RowError(number, "统一社会信用代码", str(exc).split(" / ")[0]))
        if record["amount"]:
            try:
                record["amount_fen"] = parse_yuan(record["amount"])
                if record["amount_fen"] <= 0:
                    errors.append(RowError(number, "金额（元）", "金额应大于 0"))
            except ValueError as exc:
                errors.append(RowError(number, "金额（元）", str(exc).split(" / ")[0]))
        if record["paid_on"]:
            try:
                record["paid_on"] = _parse_date(record["paid_on"])
            except ValueError:
                errors.append(
                    RowError(number, "拨付日期", f"拨付日期“{record['paid_on']}”无效，应为如 2026-09-30 的日期")
                )
        records.append(record)
    return records, errors


def row_key(record: dict[str, Any]) -> str:
    """What makes two rows the same payout: who, what for, how much, when, and by which document."""
    facts = [record["uscc"], record["item_name"], record["purpose"], str(record["amount_fen"]),
             record["paid_on"].isoformat(), record["source_document"]]  # fmt: skip
    return hashlib.sha256("\x1f".join(facts).encode()).hexdigest()


def import_file(*, session: Session, scope: Scope, raw: bytes, filename: str, now: datetime) -> ImportResult:
    """Validate every row, then store the new ones in one go; refuse the whole file on any bad row."""
    _finance(scope)
    records, errors = validate(read_rows(raw, filename))
    if errors:
        raise ImportRefused(f"文件有 {len(errors)} 处错误，未导入任何数据；请改正后重新导入", errors)
    region = scope.region_prefix or ""
    batch = f"{now.strftime('%Y%m%d%H%M%S')}-{hashlib.sha256(raw).hexdigest()[:8]}"
    unique: dict[str, dict[str, Any]] = {}
    for record in records:
        unique.setdefault(row_key(record), record)
    stored = repo.existing_keys(session=session, keys=sorted(unique))
    rows = [
        {"row_key": key, "uscc": r["uscc"], "enterprise_name": r["enterprise_name"], "item_name": r["item_name"],
         "purpose": r["purpose"], "amount_fen": r["amount_fen"], "paid_on": r["paid_on"],
         "department_name": r["department_name"], "region_code": region.ljust(6, "0"),
         "source_document": r["source_document"], "batch": batch, "imported_by": scope.actor, "created_at": now}
        for key, r in unique.items() if key not in stored
    ]  # fmt: skip
    repo.add_many(session=session, rows=rows)
    return ImportResult(batch, len(records), len(rows), len(records) - len(rows))


def purpose_of(item_name: str, config: dict | None) -> str:
    """An item's purpose for the duplicate check: its configured purpose tag (资金用途) or 功能分类, else its name."""
    config = config or {}
    return str(config.get("purpose") or config.get("functional_class") or item_name)


@dataclass(frozen=True)
class Duplicate:
    uscc: str
    enterprise_name: str
    purpose: str
    payouts: list[repo.Benefit]

    @property
    def total_fen(self) -> int:
        return sum(p.amount_fen for p in self.payouts)


def duplicates(*, session: Session, scope: Scope) -> list[Duplicate]:
    """Enterprises paid more than once for the same purpose, by Zhida or outside it, in the caller's region."""
    _finance(scope)
    benefits: list[repo.Benefit] = []
    for case_id, uscc, name, item, config, fen, paid_at in repo.paid_cases(
        session=session, scope=scopes.case_filter(scope)
    ):
        paid_on = local_date(paid_at) if paid_at else None
        benefits.append(repo.Benefit(uscc, name, item, purpose_of(item, config), fen, paid_on, "惠企直达", case_id))
    prefix = None if scope.role == Role.ADMIN else scope.region_prefix
    for row in repo.listing(session=session, region_prefix=prefix, limit=1_000_000):
        benefits.append(repo.Benefit(row.uscc, row.enterprise_name, row.item_name, row.purpose, row.amount_fen,
                                     row.paid_on, f"外部：{row.source_document}", None))  # fmt: skip
    groups: dict[tuple[str, str], list[repo.Benefit]] = defaultdict(list)
    for b in benefits:
        groups[(b.uscc, b.purpose)].append(b)
    out = [
        Duplicate(uscc, found[0].enterprise_name, purpose, sorted(found, key=lambda b: (str(b.paid_on), b.origin)))
        for (uscc, purpose), found in groups.items()
        if len(found) > 1
    ]
    return sorted(out, key=lambda d: (-d.total_fen, d.uscc, d.purpose))


def external(*, session: Session, scope: Scope, limit: int = 500) -> tuple[tuple[int, int], list]:
    """The external payouts of the caller's region: (rows, fen) and the newest rows."""
    _finance(scope)
    prefix = None if scope.role == Role.ADMIN else scope.region_prefix
    return repo.totals(session=session, region_prefix=prefix), repo.listing(
        session=session, region_prefix=prefix, limit=limit
    )
