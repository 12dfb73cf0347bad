"""Exports of every cockpit table: Excel (.xlsx, openpyxl) and CSV (UTF-8 with a BOM, so Excel reads the Chinese).

Headers are Chinese, amounts are yuan with two decimals (numbers in the workbook, text in CSV), times are Beijing time,
and where a payment voucher (支付凭证) is listed its amount is also written in capitals (大写金额).
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import IO, Any
from xml.sax.saxutils import escape

from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from db.session import reading
from rules.money import to_capitals
from schemas.cockpit import CockpitFilter
from schemas.localtime import format_local
from schemas.regions import region_name
from schemas.vocabulary import AuditKind, CaseStatus, FundItemMode, PaymentStatus
from services import audit, cockpit, cockpit_performance, payouts
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
    rows: Iterable[list[Any]]  # a list, or a generator read once as the file is written


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
    rows = cockpit.iter_cases(session=session, scope=scope, filters=filters, limit=EXPORT_LIMIT)
    return Table("cases", "办件清单", CASE_COLUMNS, (case_cells(r) for r in rows))


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


_PERFORMANCE_COLUMNS: list[Column] = [
    ("匹配企业", "int"), ("申报或确认", "int"), ("审核通过", "int"), ("已拨付办件", "int"), ("未通过", "int"),
    ("已拨付（元）", "yuan"), ("预算总额（元）", "yuan"), ("预算执行率", "percent"), ("中位用时（工作日）", "number"),
    ("逾期环节", "int"), ("已发送通知", "int"), ("已送达通知", "int"), ("通知送达率", "percent"),
    ("主要未通过原因", "text"),
]  # fmt: skip


def _performance_cells(r: Any) -> list[Any]:
    return [r.matched, r.applied, r.approved, r.paid, r.rejected, r.paid_fen, r.budget_fen, r.rate_bp, r.median_days,
            r.overdue, r.notices_sent, r.notices_delivered, r.delivery_bp, r.top_reason]  # fmt: skip


def _performance(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    view = cockpit_performance.performance(session=session, scope=scope, filters=filters)
    columns = [("资金事项", "text"), ("主管部门", "text"), ("兑付方式", "text"), *_PERFORMANCE_COLUMNS]
    rows = [[r.name, r.department_name, FundItemMode.label_of(r.mode), *_performance_cells(r)] for r in view.items]
    return Table("performance", "政策绩效（按资金事项）", columns, rows)


def _performance_departments(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    view = cockpit_performance.performance(session=session, scope=scope, filters=filters)
    columns = [("主管部门", "text"), *_PERFORMANCE_COLUMNS]
    rows = [[r.name, *_performance_cells(r)] for r in view.departments]
    return Table("performance_departments", "政策绩效（按主管部门）", columns, rows)


def _rejections(*, session: Session, scope: Scope, filters: CockpitFilter, **_: Any) -> Table:
    view = cockpit_performance.performance(session=session, scope=scope, filters=filters)
    columns = [("排名", "int"), ("未通过原因", "text"), ("资金事项", "text"), ("办件数", "int")]
    rows = [[n, r.reason, r.fund_item_name, r.cases] for n, r in enumerate(view.reasons, start=1)]
    return Table("rejections", "未通过原因排名", columns, rows)


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
    "performance": _performance,
    "performance_departments": _performance_departments,
    "rejections": _rejections,
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


def _plain(value: Any) -> Any:
    """A text or integer cell as _text writes it, leaving the csv module to write numbers and strings; None is empty."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return value


def csv_chunks(t: Table, rows_per_chunk: int = 2000) -> Iterator[bytes]:
    """The table as CSV (UTF-8 with a BOM), a few thousand rows per chunk, as the rows arrive."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for header, _ in t.columns])
    # One formatter per column, chosen once (the export writes millions of cells): text columns need no dispatch.
    formats = [_plain if kind in ("text", "int") else (lambda v, kind=kind: _text(kind, v)) for _, kind in t.columns]
    first, pending = True, 0
    for row in t.rows:
        writer.writerow([f(value) for f, value in zip(formats, row, strict=True)])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue().encode("utf-8-sig" if first else "utf-8")
            buffer.seek(0), buffer.truncate()
            first, pending = False, 0
    if first or pending:
        yield buffer.getvalue().encode("utf-8-sig" if first else "utf-8")


def to_csv(t: Table) -> bytes:
    return b"".join(csv_chunks(t))


FORMATS = {"yuan": "#,##0.00", "percent": "0.00%", "date": "yyyy-mm-dd"}
_STYLE = {"yuan": 1, "percent": 2, "date": 4}  # cellXfs below; 3 is the bold heading
_EPOCH = date(1899, 12, 30)  # Excel's day 0 (the 1900 system)

_STATIC = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>',
    "xl/styles.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="#,##0.00"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="10" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
}


def _workbook_xml(title: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{escape(title[:31])}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


def _yuan_xml(ref: str, value: Any) -> str:
    if value is None or value == "":
        return f'<c r="{ref}" s="1"/>'  # empty, but formatted as the column is
    sign = "-" if value < 0 else ""
    yuan, fen = divmod(abs(value), 100)
    return f'<c r="{ref}" s="1"><v>{sign}{yuan}.{fen:02d}</v></c>'


def _percent_xml(ref: str, value: Any) -> str:
    return f'<c r="{ref}" s="2"/>' if value is None or value == "" else f'<c r="{ref}" s="2"><v>{value / 10_000!r}</v></c>'


def _any_xml(ref: str, value: Any) -> str:
    """A cell of any other kind: moments as Beijing time text, dates as dates, numbers, text inline."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return f'<c r="{ref}" t="inlineStr"><is><t>{format_local(value)}</t></is></c>'
    if isinstance(value, date):
        return f'<c r="{ref}" s="4"><v>{(value - _EPOCH).days}</v></c>'
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_clean(str(value))}</t></is></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def _text_xml(ref: str, value: Any) -> str:
    if value.__class__ is str:  # the common case first; anything else as _any_xml writes it
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_clean(value)}</t></is></c>' if value else ""
    return _any_xml(ref, value)


def _int_xml(ref: str, value: Any) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>' if value.__class__ is int else _any_xml(ref, value)


def _moment_xml(ref: str, value: Any) -> str:
    if value.__class__ is datetime:
        return f'<c r="{ref}" t="inlineStr"><is><t>{format_local(value)}</t></is></c>'
    return _any_xml(ref, value)


# Per column kind, so a cell costs one call: the general _any_xml tests the value's type for every cell.
_XML = {"yuan": _yuan_xml, "percent": _percent_xml, "text": _text_xml, "int": _int_xml, "moment": _moment_xml}


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MARKUP = re.compile(r"[&<>]")
_SPECIAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f&<>]")  # either of the two: one search for most text


def _clean(text: str) -> str:
    """Text escaped for XML, without the control characters XML 1.0 cannot carry (searched first: most text has
    neither, and the export writes millions of cells)."""
    if not _SPECIAL.search(text):
        return text
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return escape(text) if _MARKUP.search(text) else text


def write_xlsx(t: Table, out: IO[bytes]) -> None:
    """The table as a workbook written straight to `out`, row by row as the rows arrive: SpreadsheetML streamed into
    the zip (openpyxl's write-only mode spent about a millisecond a row, 100,000 rows took over a minute on 2 cores).
    Chinese headers in bold, a frozen heading row, yuan as #,##0.00, rates as 0.00%, dates as yyyy-mm-dd."""
    letters = [get_column_letter(i) for i in range(1, len(t.columns) + 1)]
    writers = [_XML.get(kind, _any_xml) for _, kind in t.columns]
    widths = "".join(
        f'<col min="{i}" max="{i}" width="{max(10, min(40, len(h) * 2 + 2))}" customWidth="1"/>'
        for i, (h, _) in enumerate(t.columns, start=1)
    )
    head = "".join(
        f'<c r="{c}1" s="3" t="inlineStr"><is><t>{escape(h)}</t></is></c>'
        for c, (h, _) in zip(letters, t.columns, strict=True)
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, text in _STATIC.items():
            book.writestr(name, text)
        book.writestr("xl/workbook.xml", _workbook_xml(t.title))
        with book.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetViews>'
                '<sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
                f'state="frozen"/></sheetView></sheetViews><cols>{widths}</cols><sheetData>'
                f'<row r="1">{head}</row>'.encode()
            )
            parts: list[str] = []
            for number, row in enumerate(t.rows, start=2):
                n = str(number)
                cells = "".join([w(c + n, v) for c, w, v in zip(letters, writers, row, strict=True)])
                parts.append(f'<row r="{number}">{cells}</row>')
                if len(parts) >= 1000:
                    sheet.write("".join(parts).encode())
                    parts.clear()
            sheet.write(("".join(parts) + "</sheetData></worksheet>").encode())


def to_xlsx(t: Table) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(t, buffer)
    return buffer.getvalue()


def xlsx_chunks(t: Table, size: int = 1 << 16) -> Iterator[bytes]:
    """The workbook in chunks: written to a temporary file as the rows arrive, then read back."""
    with tempfile.TemporaryFile() as spool:
        write_xlsx(t, spool)
        spool.seek(0)
        while chunk := spool.read(size):
            yield chunk


def export(
    *, session: Session, scope: Scope, name: str, fmt: str, filters: CockpitFilter, treasury_division: str
) -> tuple[str, str, bytes]:
    """(file name, media type, bytes) of one table in one format."""
    _check_format(fmt)
    t = table(session=session, scope=scope, name=name, filters=filters, treasury_division=treasury_division)
    data = to_csv(t) if fmt == "csv" else to_xlsx(t)
    rows = len(t.rows) if isinstance(t.rows, list) else None
    _record_export(session=session, scope=scope, name=name, fmt=fmt, filters=filters, rows=rows)
    if fmt == "csv":
        return f"cockpit-{name}.csv", CSV, data
    return f"cockpit-{name}.xlsx", XLSX, data


def _check_format(fmt: str) -> None:
    if fmt not in ("xlsx", "csv"):
        raise Invalid("导出格式应为 xlsx 或 csv", field="format", rule="export_format")


def _record_export(
    *, session: Session, scope: Scope, name: str, fmt: str, filters: CockpitFilter, **extra: int | None
) -> None:
    """Every export is an audit record: who took which table, in which format, with which filters."""
    chosen = {k: v for k, v in asdict(filters).items() if v is not None}
    audit.record(
        session=session,
        kind=AuditKind.EXPORT,
        actor=scope.actor,
        subject=f"cockpit:{name}",
        data={"format": fmt, **extra, "filters": chosen},
    )


def stream_cases(
    *,
    db_url: str,
    scope: Scope,
    fmt: str,
    filters: CockpitFilter,
    limit: int = EXPORT_LIMIT,
    session: Session | None = None,
) -> tuple[str, str, Iterator[bytes]]:
    """(file name, media type, chunks) of the drill-down list of cases, streamed: the rows are read a thousand at a
    time in a read-only unit of work of the stream's own (so no write lock is held while the file goes out) and
    written as they arrive — CSV chunk by chunk, the workbook into a temporary file sent as it is read back."""
    _check_format(fmt)
    cockpit.require_finance(scope)
    if session is not None:  # the export is recorded when it is asked for (benches pass no session)
        _record_export(session=session, scope=scope, name="cases", fmt=fmt, filters=filters, limit=limit)

    def chunks() -> Iterator[bytes]:
        with reading(db_url) as session:
            rows = cockpit.iter_cases(session=session, scope=scope, filters=filters, limit=limit)
            t = Table("cases", "办件清单", CASE_COLUMNS, (case_cells(r) for r in rows))
            yield from (csv_chunks(t) if fmt == "csv" else xlsx_chunks(t))

    media = CSV if fmt == "csv" else XLSX
    return f"cockpit-cases.{fmt}", media, chunks()
