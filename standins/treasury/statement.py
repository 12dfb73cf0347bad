"""The daily statement (对账单): every settlement and return of one Beijing day, shaped by statement faults."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from schemas.treasury import DailyStatement, StatementLine
from standins.treasury.faults import Faults
from standins.treasury.tables import instructions, ledger, utc

STATEMENT_TZ = ZoneInfo("Asia/Shanghai")


def statement_window(day: date) -> tuple[float, float]:
    """Epoch seconds [start, end) of a statement day in Beijing time."""
    start = datetime(day.year, day.month, day.day, tzinfo=STATEMENT_TZ)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def daily_statement(engine: Engine, faults: Faults, day: date) -> DailyStatement:
    """Every settlement and return of one Beijing day; statement faults leave out or alter lines."""
    start, end = statement_window(day)
    cols = instructions.c
    money = (
        select(ledger, cols.pay_amt, cols.reason, cols.return_reason, cols.treasury_ref)
        .join(instructions, instructions.c.voucher_no == ledger.c.voucher_no)
        .where(ledger.c.posted_at >= start, ledger.c.posted_at < end)
    )
    failed = select(instructions).where(cols.status == "failed", cols.settled_at >= start, cols.settled_at < end)
    lines: list[StatementLine] = []
    with engine.connect() as conn:
        for row in conn.execute(money).mappings():
            returned = row["entry"] == "returned"
            lines.append(
                StatementLine(
                    VoucherNo=row["voucher_no"],
                    LineType="returned" if returned else "paid",
                    PayAcctNo=row["pay_acct_no"],
                    PayAmt=row["pay_amt"],
                    Amount=row["amount"],
                    Reason=(row["return_reason"] or "") if returned else "",
                    TreasuryRef=row["treasury_ref"],
                    SettledAt=utc(row["posted_at"]),
                )
            )
        for row in conn.execute(failed).mappings():
            lines.append(
                StatementLine(
                    VoucherNo=row["voucher_no"],
                    LineType="failed",
                    PayAcctNo=row["pay_acct_no"],
                    PayAmt=row["pay_amt"],
                    Amount=0,
                    Reason=row["reason"],
                    TreasuryRef=row["treasury_ref"],
                    SettledAt=utc(row["settled_at"]),
                )
            )
    shaped: list[StatementLine] = []
    for line in sorted(lines, key=lambda x: (x.SettledAt, x.VoucherNo, x.LineType)):
        if faults.statement_rule("statement_drop", line.VoucherNo):
            continue
        altered = faults.statement_rule("statement_amount", line.VoucherNo)
        if altered is not None and line.LineType == "paid":
            line = line.model_copy(update={"Amount": max(line.Amount + altered.AmountDelta, 0)})
        shaped.append(line)
    return DailyStatement(
        StatementDate=day,
        Lines=shaped,
        LineCount=len(shaped),
        TotalPaidAmt=sum(x.Amount for x in shaped if x.LineType == "paid"),
        TotalReturnedAmt=sum(x.Amount for x in shaped if x.LineType == "returned"),
    )
