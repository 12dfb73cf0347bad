"""Exports of every cockpit table: Excel (.xlsx, openpyxl) and CSV (UTF-8 with a BOM, so Excel reads the Chinese).

Headers are Chinese, amounts are yuan with two decimals (numbers in the workbook, text in CSV), times are Beijing time,
and where a payment voucher (支付凭证) is listed its amount is also written in capitals (大写金额).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from rules.money import to_capitals
from schemas.cockpit import CockpitFilter
from schemas.localtime import format_local
from schemas.regions import region_name
from schemas.vocabulary import AuditKind, CaseStatus, PaymentStatus
from services import audit, cockpit, payouts
from services.errors import Invalid, NotFound
from services.scope import Scope

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
EXPORT_LIMIT = 200_000  # rows of one export of cases; more is a job for a narrower filter

# A column: its Chinese header and its kind (text, int, yuan, percent, moment, date).
Column = tuple[str, str]


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]


def _group_table(by: str) -> Callable[..., Table]:
    def build(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
        rows = cockpit.breakdown(session=session, scope=scope, filters=filters, by=by)
        columns = [
            (cockpit.GROUPS[by], "text"),
            ("办件数", "int"),
            ("核定金额（元）", "yuan"),
            ("已拨付（元）", "yuan"),
        ]
        return Table(
            by, f"按{cockpit.GROUPS[by]}", columns, [[r.name, r.cases, r.amount_fen, r.paid_fen] for r in rows]
        )

    return build


def _budget(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    rows = cockpit.budget(session=session, scope=scope, filters=filters)
    columns = [("资金事项", "text"), ("资金来源", "text"), ("预算年度", "int"), ("预算总额（元）", "yuan"),
               ("已预留（元）", "yuan"), ("已支出（元）", "yuan"), ("已拨付（元）", "yuan"), ("已退回（元）", "yuan"),
               ("可用（元）", "yuan"), ("执行率", "percent"), ("办件数", "int")]  # fmt: skip
    out = [
        [r.fund_item_name, r.line.source, r.line.budget_year, r.line.total_fen, r.line.reserved_fen,
         r.line.committed_fen, r.line.paid_fen, r.line.returned_fen, r.available_fen, r.rate_bp, r.line.cases]
        for r in rows
    ]  # fmt: skip
    return Table("budget", "预算执行", columns, out)


def _months(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    rows = cockpit.months(session=session, scope=scope, filters=filters)
    columns = [("月份", "text"), ("支付笔数", "int"), ("已拨付（元）", "yuan")]
    return Table("months", "按月拨付", columns, [[m, n, fen] for m, n, fen, _ in rows])


def _timeliness(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    rows = cockpit.timeliness(session=session, scope=scope, filters=filters)
    columns = [("资金事项", "text"), ("已拨付办件", "int"), ("中位用时（工作日）", "number"),
               ("90%办件用时不超过（工作日）", "int")]  # fmt: skip
    return Table(
        "timeliness", "兑付时效", columns, [[r.fund_item_name, r.cases, r.median_days, r.p90_days] for r in rows]
    )


def _overdue(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    rows = cockpit.overdue(session=session, scope=scope, filters=filters)
    columns = [("部门", "text"), ("逾期环节", "int"), ("涉及办件", "int")]
    return Table("overdue", "逾期环节", columns, [[r.department_name, r.stages, r.cases] for r in rows])


CASE_COLUMNS: list[Column] = [
    ("办件编号", "int"), ("企业名称", "text"), ("统一社会信用代码", "text"), ("企业所在地区", "text"),
    ("资金事项", "text"), ("主管部门", "text"), ("资金来源", "text"), ("状态", "text"), ("核定金额（元）", "yuan"),
    ("已拨付（元）", "yuan"), ("受理或匹配时间", "moment"), ("办结时间", "moment"), ("支付凭证号", "text"),
    ("凭证状态", "text"), ("凭证金额（元）", "yuan"), ("凭证金额大写", "text"), ("支付时间", "moment"),
    ("退票原因", "text"), ("退票日期", "date"),
]  # fmt: skip


def case_cells(r: Any) -> list[Any]:
    capitals = to_capitals(r.voucher_amount_fen) if r.voucher_amount_fen is not None else ""
    return [
        r.id, r.enterprise_name, r.uscc, region_name(r.region_code), r.fund_item_name, r.department_name,
        r.source or "", CaseStatus.label_of(r.status), r.amount_fen, r.paid_fen, r.created_at, r.closed_at,
        r.voucher_no or "", PaymentStatus.label_of(r.voucher_status, default="") if r.voucher_status else "",
        r.voucher_amount_fen, capitals, r.settled_at, r.return_reason or "", r.returned_on,
    ]  # fmt: skip


def _cases(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    rows = cockpit.all_cases(session=session, scope=scope, filters=filters, limit=EXPORT_LIMIT)
    return Table("cases", "办件清单", CASE_COLUMNS, [case_cells(r) for r in rows])


def _returns(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    rows = cockpit.returns(session=session, scope=scope, filters=filters)
    return Table("returns", "退票待更正", CASE_COLUMNS, [case_cells(r) for r in rows])


def _alerts(*, session: Session, scope: Scope, treasury_division: str, **_: Any) -> Table:
    rows = cockpit.alerts(session=session, principal=scope.principal, treasury_division=treasury_division)
    columns = [("告警编号", "int"), ("内容", "text"), ("发现时间", "moment")]
    return Table("alerts", "对账告警", columns, [[a.id, a.message, a.created_at] for a in rows])


def _external(*, session: Session, scope: Scope, **_: Any) -> Table:
    _, rows = payouts.external(session=session, scope=scope, limit=EXPORT_LIMIT)
    columns = [(h, "text") for h in payouts.HEADERS]
    columns[4], columns[5] = ("金额（元）", "yuan"), ("拨付日期", "date")
    out = [[r.uscc, r.enterprise_name, r.item_name, r.purpose, r.amount_fen, r.paid_on, r.department_name,
            r.source_document] for r in rows]  # fmt: skip
    return Table("external", "外部兑付", columns, out)


def _duplicates(*, session: Session, scope: Scope, **_: Any) -> Table:
    columns = [("统一社会信用代码", "text"), ("企业名称", "text"), ("资金用途", "text"), ("资金事项", "text"),
               ("金额（元）", "yuan"), ("拨付日期", "date"), ("来源", "text"), ("办件编号", "int")]  # fmt: skip
    out = [
        [d.uscc, d.enterprise_name, d.purpose, p.item_name, p.amount_fen, p.paid_on, p.origin, p.case_id]
        for d in payouts.duplicates(session=session, scope=scope)
        for p in d.payouts
    ]
    return Table("duplicates", "重复享受", columns, out)


def _ledger(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    columns = [("统一社会信用代码", "text"), ("受益企业", "text"), ("资金事项", "text"), ("资金来源", "text"),
               ("月份", "text"), ("支付笔数", "int"), ("已拨付（元）", "yuan")]  # fmt: skip
    rows = cockpit.ledger(session=session, scope=scope, filters=filters)
    return Table("ledger", "实名台账", columns, [[u, n, i, s or "未预留额度", m, c, f] for u, n, i, s, m, c, f in rows])


TABLES: dict[str, Callable[..., Table]] = {
    **{by: _group_table(by) for by in cockpit.GROUPS},
    "budget": _budget,
    "months": _months,
    "timeliness": _timeliness,
    "overdue": _overdue,
    "returns": _returns,
    "alerts": _alerts,
    "cases": _cases,
    "external": _external,
    "ledger": _ledger,
    "duplicates": _duplicates,
}


def table(*, session: Session, scope: Scope, name: str, filters: CockpitFilter, treasury_division: str) -> Table:
    if name not in TABLES:
        raise NotFound(f"看板没有名为“{name}”的表格", field="table", rule="cockpit_table")
    return TABLES[name](session=session, scope=scope, filters=filters, treasury_division=treasury_division)


def _text(kind: str, value: Any) -> str:
    """A cell as CSV text: yuan with two decimals, percent with two, moments in Beijing time."""
    if value is None or value == "":
        return ""
    if kind == "yuan":
        sign = "-" if value < 0 else ""
        yuan, fen = divmod(abs(value), 100)
        return f"{sign}{yuan}.{fen:02d}"
    if kind == "percent":
        return f"{value // 100}.{value % 100:02d}%"
    if kind == "moment":
        return format_local(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def to_csv(t: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for header, _ in t.columns])
    for row in t.rows:
        writer.writerow([_text(kind, value) for (_, kind), value in zip(t.columns, row, strict=True)])
    return buffer.getvalue().encode("utf-8-sig")


def _cell(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "yuan":
        return value / 100
    if kind == "percent":
        return value / 10_000
    if kind == "moment" and isinstance(value, datetime):
        return format_local(value)
    return value


FORMATS = {"yuan": "#,##0.00", "percent": "0.00%"}


def to_xlsx(t: Table) -> bytes:
    """The table as a workbook, written row by row (openpyxl's write-only mode: a 100,000-row export stays fast)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(t.title)
    sheet.freeze_panes = "A2"
    for index, (header, _) in enumerate(t.columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, len(header) * 2 + 2))
    bold = Font(bold=True)
    heading = []
    for header, _ in t.columns:
        cell = WriteOnlyCell(sheet, value=header)
        cell.font = bold
        heading.append(cell)
    sheet.append(heading)
    formats = [FORMATS.get(kind) for _, kind in t.columns]
    for row in t.rows:
        cells: list[Any] = []
        for (_, kind), fmt, value in zip(t.columns, formats, row, strict=True):
            value = _cell(kind, value)
            if fmt is None or value is None:
                cells.append(value)
            else:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = fmt
                cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export(
    *, session: Session, scope: Scope, name: str, fmt: str, filters: CockpitFilter, treasury_division: str
) -> tuple[str, str, bytes]:
    """(file name, media type, bytes) of one table in one format."""
    if fmt not in ("xlsx", "csv"):
        raise Invalid("导出格式应为 xlsx 或 csv", field="format", rule="export_format")
    t = table(session=session, scope=scope, name=name, filters=filters, treasury_division=treasury_division)
    data = to_csv(t) if fmt == "csv" else to_xlsx(t)
    audit.record(session=session, kind=AuditKind.EXPORT, actor=scope.actor, subject=f"cockpit:{name}",
                 data={"format": fmt, "rows": len(t.rows), "filters": {k: v for k, v in asdict(filters).items() if v is not None}})  # fmt: skip
    if fmt == "csv":
        return f"cockpit-{name}.csv", CSV, data
    return f"cockpit-{name}.xlsx", XLSX, data
