"""Reconciliation (对账) for the finance bureau: runs, lines, alerts, Excel export, and the Chinese pages."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import SessionDep, SettingsDep, TemporalDep, require
from api.errors import NotFound
from api.routers.web import BEIJING, _principal, templates
from db.models import Alert, ReconLine, ReconRun
from db.repositories import reconciliation
from workflows.reconciliation import start_reconciliation

router = APIRouter(tags=["reconciliation 对账"])
FinanceDep = Annotated[Principal, Depends(require("finance"))]

OUTCOME_ZH = {
    "matched": "一致",
    "missing_ours": "我方缺失",
    "missing_theirs": "国库缺失",
    "amount_mismatch": "金额不符",
    "status_mismatch": "状态不符",
}
LINE_STATUS_ZH = {"paid": "已支付", "failed": "支付失败", "returned": "已退回", "accepted": "国库已受理", "created": "未发送"}
LINE_TYPE_ZH = {"settle": "支付", "return": "退回"}
ALERT_KIND_ZH = {f"recon_{k}": f"对账{v}" for k, v in OUTCOME_ZH.items()}
templates.env.filters["outcome_zh"] = lambda s: OUTCOME_ZH.get(s, s)
templates.env.filters["line_status_zh"] = lambda s: "—" if s is None else LINE_STATUS_ZH.get(s, s)
templates.env.filters["line_type_zh"] = lambda s: LINE_TYPE_ZH.get(s, s)
templates.env.filters["alert_kind_zh"] = lambda s: ALERT_KIND_ZH.get(s, s)


class ReconRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    statement_date: date
    trigger: str
    status: str
    statement_lines: int
    matched: int
    missing_ours: int
    missing_theirs: int
    amount_mismatch: int
    status_mismatch: int
    their_paid_fen: int
    their_returned_fen: int
    our_paid_fen: int
    our_returned_fen: int
    started_at: datetime
    finished_at: datetime | None


class ReconLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    voucher_no: str
    line_type: Literal["settle", "return"]
    outcome: str
    our_status: str | None
    their_status: str | None
    our_amt_fen: int | None
    their_amt_fen: int | None
    treasury_ref: str | None
    settled_at: datetime | None
    note: str


class ReconRunDetail(ReconRunOut):
    lines: list[ReconLineOut]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    ref: str
    message: str
    status: Literal["open", "closed"]
    recon_run_id: int | None
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    close_note: str | None


class ReconStartIn(BaseModel):
    statement_date: date = Field(description="对账日期（北京时间）")


class ReconStarted(BaseModel):
    workflow_id: str


class AlertCloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=500, description="处理说明")


def _run(session: Session, run_id: int) -> ReconRun:
    run = reconciliation.get_run(session=session, run_id=run_id)
    if run is None:
        raise NotFound(f"对账批次 {run_id} 不存在", field="run_id")
    return run


@router.get("/api/v1/reconciliation/runs", response_model=list[ReconRunOut])
def list_runs(session: SessionDep, _p: FinanceDep) -> list[ReconRun]:
    """Recent reconciliation runs, newest statement day first."""
    return reconciliation.list_runs(session=session)


@router.post("/api/v1/reconciliation/runs", response_model=ReconStarted, status_code=202)
async def start_run(body: ReconStartIn, settings: SettingsDep, client: TemporalDep, _p: FinanceDep) -> ReconStarted:
    """Reconcile one day now (the daily schedule does yesterday on its own)."""
    workflow_id = await start_reconciliation(
        client, statement_date=body.statement_date, task_queue=settings.temporal_task_queue
    )
    return ReconStarted(workflow_id=workflow_id)


@router.get("/api/v1/reconciliation/runs/{run_id}", response_model=ReconRunDetail)
def get_run(run_id: int, session: SessionDep, _p: FinanceDep, mismatches_only: bool = False) -> ReconRunDetail:
    run = _run(session, run_id)
    lines = reconciliation.lines(session=session, run_id=run.id, mismatches_only=mismatches_only)
    return ReconRunDetail.model_validate(
        ReconRunOut.model_validate(run).model_dump() | {"lines": [ReconLineOut.model_validate(x) for x in lines]}
    )


@router.get("/api/v1/reconciliation/runs/{run_id}/export.xlsx")
def export_run(run_id: int, session: SessionDep, _p: FinanceDep) -> Response:
    """The run as an Excel workbook: a summary sheet and every line, Chinese headers, amounts in yuan."""
    run = _run(session, run_id)
    data = workbook(run, reconciliation.lines(session=session, run_id=run.id))
    name = f"reconciliation-{run.statement_date.isoformat()}-{run.id}.xlsx"
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/api/v1/alerts", response_model=list[AlertOut])
def list_alerts(
    session: SessionDep, _p: FinanceDep, status: Literal["open", "closed", "all"] = "open"
) -> list[Alert]:
    """Alerts for the finance bureau (reconciliation mismatches), open ones by default."""
    return reconciliation.list_alerts(session=session, status=None if status == "all" else status)


@router.post("/api/v1/alerts/{alert_id}/close", response_model=AlertOut)
def close_alert(alert_id: int, body: AlertCloseIn, session: SessionDep, principal: FinanceDep) -> Alert:
    """Close an alert with a note saying how it was resolved."""
    alert = reconciliation.close_alert(session=session, alert_id=alert_id, by=str(principal), note=body.note)
    if alert is None:
        raise NotFound(f"告警 {alert_id} 不存在", field="alert_id")
    return alert


def _yuan(fen: int | None) -> float | None:
    return None if fen is None else round(fen / 100, 2)


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def workbook(run: ReconRun, lines: list[ReconLine]) -> bytes:
    """对账报告.xlsx: 汇总 (summary) and 明细 (lines); amounts are numbers in yuan formatted with two decimals."""
    book = Workbook()
    summary = book.active
    summary.title = "汇总"
    rows = [
        ("对账日期", run.statement_date.isoformat()),
        ("对账批次", run.id),
        ("触发方式", "定时" if run.trigger == "schedule" else "手工"),
        ("对账单笔数", run.statement_lines),
        ("一致", run.matched),
        ("我方缺失", run.missing_ours),
        ("国库缺失", run.missing_theirs),
        ("金额不符", run.amount_mismatch),
        ("状态不符", run.status_mismatch),
        ("国库支付金额（元）", _yuan(run.their_paid_fen)),
        ("我方支付金额（元）", _yuan(run.our_paid_fen)),
        ("国库退回金额（元）", _yuan(run.their_returned_fen)),
        ("我方退回金额（元）", _yuan(run.our_returned_fen)),
        ("完成时间", _local(run.finished_at)),
    ]
    for row in rows:
        summary.append(row)
    for row in summary.iter_rows(min_row=10, max_row=13, min_col=2, max_col=2):
        row[0].number_format = "#,##0.00"
    summary.column_dimensions["A"].width = 22
    summary.column_dimensions["B"].width = 20
    detail = book.create_sheet("明细")
    headers = ["凭证号", "类型", "对账结果", "我方状态", "国库状态", "我方金额（元）", "国库金额（元）", "国库流水号",
               "发生时间", "说明"]
    detail.append(headers)
    for cell in detail[1]:
        cell.font = Font(bold=True)
    for line in lines:
        detail.append(
            [
                line.voucher_no,
                LINE_TYPE_ZH.get(line.line_type, line.line_type),
                OUTCOME_ZH.get(line.outcome, line.outcome),
                LINE_STATUS_ZH.get(line.our_status, line.our_status) if line.our_status else "",
                LINE_STATUS_ZH.get(line.their_status, line.their_status) if line.their_status else "",
                _yuan(line.our_amt_fen),
                _yuan(line.their_amt_fen),
                line.treasury_ref or "",
                _local(line.settled_at),
                line.note,
            ]
        )
    for row in detail.iter_rows(min_row=2, min_col=6, max_col=7):
        for cell in row:
            cell.number_format = "#,##0.00"
    for column, width in zip("ABCDEFGHIJ", (22, 8, 12, 12, 12, 16, 16, 26, 20, 60), strict=True):
        detail.column_dimensions[column].width = width
    detail.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# Pages ---------------------------------------------------------------------------------------------------


def _finance_page(request: Request) -> Principal | Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    if principal.role not in ("finance", "admin"):
        return templates.TemplateResponse(
            request, "error.html", {"message": "对账页面仅限财政局查看"}, status_code=403
        )
    return principal


@router.get("/web/reconciliation", response_class=HTMLResponse, include_in_schema=False)
def reconciliation_page(request: Request, session: SessionDep) -> Response:
    principal = _finance_page(request)
    if isinstance(principal, Response):
        return principal
    return templates.TemplateResponse(
        request,
        "reconciliation.html",
        {
            "principal": principal,
            "runs": reconciliation.list_runs(session=session),
            "alerts": reconciliation.list_alerts(session=session, status="open"),
        },
    )


@router.get("/web/reconciliation/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def reconciliation_run_page(run_id: int, request: Request, session: SessionDep) -> Response:
    principal = _finance_page(request)
    if isinstance(principal, Response):
        return principal
    run = reconciliation.get_run(session=session, run_id=run_id)
    if run is None:
        return templates.TemplateResponse(request, "error.html", {"message": f"对账批次 {run_id} 不存在"}, status_code=404)
    return templates.TemplateResponse(
        request,
        "reconciliation_run.html",
        {"principal": principal, "run": run, "lines": reconciliation.lines(session=session, run_id=run.id)},
    )
