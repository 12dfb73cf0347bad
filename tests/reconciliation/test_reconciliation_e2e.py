"""Reconciliation (对账) on the embedded stack: the Temporal schedule, a run that finds every injected mismatch,
alerts for the finance bureau (API and Chinese page), and the Excel export."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import load_workbook
from temporalio.client import ScheduleActionStartWorkflow

from cli.reconcile import ensure_reconciliation_schedule
from gateways.treasury import HttpTreasuryGateway
from schemas.reconciliation import ReconSummary
from schemas.treasury import PaymentInstruction
from standins.treasury import STATEMENT_TZ, FaultRule
from tests.reconciliation.stack_support import FINAL_CASE, admin, apply, eligible_usccs, instructions
from tests.stack import Stack
from tests.support import eventually
from workflows.client import connect
from workflows.reconciliation import SCHEDULE_ID


async def test_schedule_is_created_once_and_updated(stack: Stack) -> None:
    client = await connect(stack.settings)
    settings = stack.settings.model_copy(update={"reconciliation_time": "02:30"})
    assert await ensure_reconciliation_schedule(client, settings) == SCHEDULE_ID
    assert await ensure_reconciliation_schedule(client, settings) == SCHEDULE_ID  # idempotent
    later = settings.model_copy(update={"reconciliation_time": "03:15"})
    await ensure_reconciliation_schedule(client, later)
    described = await client.get_schedule_handle(SCHEDULE_ID).describe()
    [calendar] = described.schedule.spec.calendars
    assert ([r.start for r in calendar.hour], [r.start for r in calendar.minute]) == ([3], [15])
    assert described.schedule.spec.time_zone_name == "Asia/Shanghai"
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "ReconciliationWorkflow"
    assert action.task_queue == stack.settings.temporal_task_queue
    disabled = settings.model_copy(update={"reconciliation_schedule_enabled": False})
    assert await ensure_reconciliation_schedule(client, disabled) is None

    # Triggering the schedule runs the workflow (yesterday's statement: empty, so all zero).
    await client.get_schedule_handle(SCHEDULE_ID).trigger()
    runs = await eventually(
        lambda: stack.http.get("/api/v1/reconciliation/runs", headers=stack.token("finance", "YC-CZJ")).json(),
        lambda runs: bool(runs) and runs[0]["status"] == "done",
        what="the scheduled reconciliation run to finish",
    )
    assert runs[0]["trigger"] == "schedule" and runs[0]["statement_lines"] == 0


async def test_reconciliation_finds_every_injected_mismatch(stack: Stack) -> None:
    finance = stack.token("finance", "YC-CZJ")
    usccs = eligible_usccs(stack, 3)
    case_ids = [apply(stack, u) for u in usccs]
    for cid, u in zip(case_ids, usccs, strict=True):
        assert (await stack.wait_status(cid, FINAL_CASE, stack.token("enterprise", u)))["status"] == "paid"
    vouchers = {i.case_id: i.voucher_no for i in instructions(stack)}
    matched, dropped, altered = (vouchers[c] for c in case_ids)

    # An extra line on theirs: an instruction the treasury paid that Zhida never sent.
    extra = PaymentInstruction(
        VoucherNo="ZDEXTRA000000001",
        AdmDivCode="420500",
        StYear=2026,
        PayAcctNo=stack.settings.pay_acct_no,
        PayAcctName=stack.settings.pay_acct_name,
        PayeeAcctNo="6222020200112233445",
        PayeeAcctName="宜昌来历不明有限公司",
        PayeeAcctBankName="中国工商银行宜昌分行",
        PayeeAcctBankNo="102526000018",
        PayAmt=123_456,
        PaySummaryCode="30307",
        PaySummaryName="惠企政策奖补资金",
        FundSource="市级财政",
    )
    with HttpTreasuryGateway(
        stack.treasury.url, stack.settings.zhida_private_pem(), stack.settings.signing_key_id
    ) as gw:
        gw.submit(extra)
        await eventually(
            lambda: gw.query(extra.VoucherNo), lambda r: r.final, what=f"the treasury to settle {extra.VoucherNo}"
        )
    with admin(stack) as sim:  # a line missing on theirs, and an amount that differs by 1.00 yuan
        sim.set_faults(
            FaultRule(Kind="statement_drop", VoucherNo=dropped),
            FaultRule(Kind="statement_amount", VoucherNo=altered, AmountDelta=-100),
        )

    today = datetime.now(STATEMENT_TZ).date()
    started = stack.http.post(
        "/api/v1/reconciliation/runs", json={"statement_date": today.isoformat()}, headers=finance
    )
    assert started.status_code == 202, started.text
    client = await connect(stack.settings)
    handle = client.get_workflow_handle(started.json()["workflow_id"], result_type=ReconSummary)
    summary = await handle.result()
    assert (summary.statement_lines, summary.matched) == (3, 1)
    assert (summary.missing_ours, summary.missing_theirs, summary.amount_mismatch, summary.status_mismatch) == (
        1,
        1,
        1,
        0,
    )

    run = stack.http.get(f"/api/v1/reconciliation/runs/{summary.run_id}", headers=finance).json()
    outcomes = {line["voucher_no"]: line["outcome"] for line in run["lines"]}
    assert outcomes == {
        matched: "matched",
        dropped: "missing_theirs",
        altered: "amount_mismatch",
        extra.VoucherNo: "missing_ours",
    }
    assert run["their_paid_fen"] == 10_000_000 * 2 - 100 + 123_456 and run["our_paid_fen"] == 30_000_000

    alerts = stack.http.get("/api/v1/alerts", headers=finance).json()
    messages = {a["kind"]: a["message"] for a in alerts}
    assert set(messages) == {"recon_missing_ours", "recon_missing_theirs", "recon_amount_mismatch"}
    assert "我方无此支付指令" in messages["recon_missing_ours"] and extra.VoucherNo in messages["recon_missing_ours"]
    assert "国库对账单无此支付记录" in messages["recon_missing_theirs"]
    assert "我方 100,000.00元，国库 99,999.00元" in messages["recon_amount_mismatch"]

    # A second run of the same day does not duplicate alerts; closing one keeps it closed until seen again.
    again = stack.http.post("/api/v1/reconciliation/runs", json={"statement_date": today.isoformat()}, headers=finance)
    await client.get_workflow_handle(again.json()["workflow_id"]).result()
    assert len(stack.http.get("/api/v1/alerts", headers=finance).json()) == 3
    closed = stack.http.post(f"/api/v1/alerts/{alerts[0]['id']}/close", json={"note": "已与国库核实"}, headers=finance)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["closed_by"] == "finance:YC-CZJ"  # who closed it is recorded
    assert len(stack.http.get("/api/v1/alerts", headers=finance).json()) == 2

    # Excel export: Chinese headers, amounts in yuan with two decimals.
    export = stack.http.get(f"/api/v1/reconciliation/runs/{summary.run_id}/export.xlsx", headers=finance)
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(export.content))
    assert book.sheetnames == ["汇总", "明细"]
    sheet = book["明细"]
    header = [c.value for c in sheet[1]]
    assert header[:7] == ["凭证号", "类型", "对账结果", "我方状态", "国库状态", "我方金额（元）", "国库金额（元）"]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows[altered][2] == "金额不符" and (rows[altered][5], rows[altered][6]) == (100000.0, 99999.0)
    assert rows[extra.VoucherNo][2:5] == ("我方缺失", None, "已拨付")
    assert sheet.cell(row=2, column=6).number_format == "#,##0.00"

    # Pages: the finance bureau sees runs and open alerts in Chinese; enterprises and anonymous users do not.
    stack.http.cookies.set("zhida_token", finance["Authorization"][7:])
    page = stack.http.get("/web/reconciliation")
    assert page.status_code == 200 and "未处理告警（2）" in page.text and "对账记录" in page.text
    detail = stack.http.get(f"/web/reconciliation/{summary.run_id}")
    assert detail.status_code == 200 and "金额不符" in detail.text and "国库缺失" in detail.text
    stack.http.cookies.set("zhida_token", stack.token("enterprise", usccs[0])["Authorization"][7:])
    assert stack.http.get("/web/reconciliation").status_code == 403
    stack.http.cookies.clear()
    assert stack.http.get("/api/v1/alerts", headers=stack.token("enterprise", usccs[0])).status_code == 403
