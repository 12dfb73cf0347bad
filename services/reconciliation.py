"""Reconciliation (对账) use cases for the finance bureau: runs and their lines, alerts, the Excel workbook.

The statements reconciled are those of the deployment's treasury, whose administrative division is
`settings.adm_div_code` (the caller passes it as `treasury_division`). A finance bureau whose region covers that
division (宜昌市财政局 for 420500) sees its runs and alerts and closes them; a bureau of another region sees none,
and a run or alert it names reads as unknown. Administrators see everything.
"""

from __future__ import annotations

import io
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy.orm import Session
from temporalio.client import Client

from db.models import Alert, ReconLine, ReconRun
from db.repositories import reconciliation as repo
from schemas.localtime import format_local
from schemas.principal import Principal
from schemas.reconciliation import ReconLineOut, ReconRunDetail, ReconRunOut
from schemas.vocabulary import AlertStatus, AuditKind, PaymentStatus, ReconLineType, ReconOutcome, ReconTrigger, Role
from services import audit, scope
from services.errors import Forbidden, NotFound
from workflows.reconciliation import start_reconciliation

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _sees(*, session: Session, principal: Principal, treasury_division: str) -> bool:
    """Whether the caller (finance or an administrator) sees this treasury's reconciliation."""
    caller = scope.resolve(session=session, principal=principal)
    if caller.role == Role.ADMIN:
        return True
    if caller.role != Role.FINANCE:
        raise Forbidden("对账仅限财政部门查看", rule="finance_only")
    return bool(caller.region_prefix) and treasury_division.startswith(caller.region_prefix or "")


def _run(session: Session, principal: Principal, treasury_division: str, run_id: int) -> ReconRun:
    run = repo.get_run(session=session, run_id=run_id)
    if run is None or not _sees(session=session, principal=principal, treasury_division=treasury_division):
        raise NotFound(f"对账批次 {run_id} 不存在", field="run_id")
    return run


def list_runs(*, session: Session, principal: Principal, treasury_division: str) -> list[ReconRun]:
    """Recent reconciliation runs the caller sees, newest statement day first."""
    if not _sees(session=session, principal=principal, treasury_division=treasury_division):
        return []
    return repo.list_runs(session=session)


def get_run(
    *, session: Session, principal: Principal, treasury_division: str, run_id: int, mismatches_only: bool = False
) -> ReconRunDetail:
    """One run with its lines (or only the mismatched ones)."""
    run = _run(session, principal, treasury_division, run_id)
    lines = repo.lines(session=session, run_id=run.id, mismatches_only=mismatches_only)
    return ReconRunDetail.model_validate(
        ReconRunOut.model_validate(run).model_dump() | {"lines": [ReconLineOut.model_validate(x) for x in lines]}
    )


def export_run(*, session: Session, principal: Principal, treasury_division: str, run_id: int) -> tuple[str, bytes]:
    """The run as an Excel workbook: (file name, bytes)."""
    run = _run(session, principal, treasury_division, run_id)
    data = workbook(run, repo.lines(session=session, run_id=run.id))
    audit.record(session=session, kind=AuditKind.EXPORT, actor=principal.actor, subject=f"recon_run:{run.id}",
                 data={"export": "reconciliation_xlsx", "bytes": len(data)})  # fmt: skip
    return f"reconciliation-{run.statement_date.isoformat()}-{run.id}.xlsx", data


def may_start(*, session: Session, principal: Principal, treasury_division: str) -> None:
    """Refuse a manual run by a finance bureau whose region does not cover the treasury."""
    if not _sees(session=session, principal=principal, treasury_division=treasury_division):
        raise Forbidden("本财政部门无权核对该国库的对账单", rule="treasury_region")


async def start_run(*, client: Client, task_queue: str, statement_date: date) -> str:
    """Reconcile one day now (the daily schedule does yesterday on its own); returns the workflow id."""
    return await start_reconciliation(client, statement_date=statement_date, task_queue=task_queue)


def list_alerts(
    *, session: Session, principal: Principal, treasury_division: str, status: AlertStatus | None = AlertStatus.OPEN
) -> list[Alert]:
    """Alerts the caller sees (reconciliation mismatches), open ones by default; None for all."""
    if not _sees(session=session, principal=principal, treasury_division=treasury_division):
        return []
    return repo.list_alerts(session=session, status=status)


def close_alert(*, session: Session, principal: Principal, treasury_division: str, alert_id: int, note: str) -> Alert:
    """Close an alert with a note saying how it was resolved; the closer is recorded as its actor."""
    if not _sees(session=session, principal=principal, treasury_division=treasury_division):
        raise NotFound(f"告警 {alert_id} 不存在", field="alert_id")
    alert = repo.close_alert(session=session, alert_id=alert_id, by=principal.actor, note=note)
    if alert is None:
        raise NotFound(f"告警 {alert_id} 不存在", field="alert_id")
    audit.record(session=session, kind=AuditKind.ALERT_CLOSED, actor=principal.actor, subject=f"alert:{alert.id}",
                 data={"kind": alert.kind, "ref": alert.ref, "note": note})  # fmt: skip
    return alert


# ---------------------------------------------------------------------------------------------- the workbook


def _yuan(fen: int | None) -> float | None:
    return None if fen is None else round(fen / 100, 2)


def _local(moment: datetime | None) -> str:
    return format_local(moment, empty="")


def workbook(run: ReconRun, lines: list[ReconLine]) -> bytes:
    """对账报告.xlsx: 汇总 (summary) and 明细 (lines); amounts are numbers in yuan formatted with two decimals."""
    book = Workbook()
    summary = book.active
    summary.title = "汇总"
    rows = [
        ("对账日期", run.statement_date.isoformat()),
        ("对账批次", run.id),
        ("触发方式", ReconTrigger.label_of(run.trigger)),
        ("对账单笔数", run.statement_lines),
        (ReconOutcome.MATCHED.label, run.matched),
        (ReconOutcome.MISSING_OURS.label, run.missing_ours),
        (ReconOutcome.MISSING_THEIRS.label, run.missing_theirs),
        (ReconOutcome.AMOUNT_MISMATCH.label, run.amount_mismatch),
        (ReconOutcome.STATUS_MISMATCH.label, run.status_mismatch),
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
               "发生时间", "说明"]  # fmt: skip
    detail.append(headers)
    for cell in detail[1]:
        cell.font = Font(bold=True)
    for line in lines:
        detail.append(
            [
                line.voucher_no,
                ReconLineType.label_of(line.line_type),
                ReconOutcome.label_of(line.outcome),
                PaymentStatus.label_of(line.our_status, default="") if line.our_status else "",
                PaymentStatus.label_of(line.their_status, default="") if line.their_status else "",
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
