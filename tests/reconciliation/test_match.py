"""The matching rule of reconciliation, line by line, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from activities.reconciliation import day_window, match_statement, our_lines
from db.models import PaymentInstruction
from schemas.treasury import DailyStatement, StatementLine

DAY = date(2026, 11, 22)
START, END = day_window(DAY)
AT = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 Beijing time


def ours(voucher: str, status: str, paid: int = 100, **fields: object) -> PaymentInstruction:
    values = {
        "voucher_no": voucher,
        "status": status,
        "paid_amt_fen": paid,
        "returned_amt_fen": 0,
        "settled_at": AT,
        "returned_at": None,
    }
    return PaymentInstruction(**(values | fields))


def line(voucher: str, kind: str, amount: int = 100, at: datetime = AT) -> StatementLine:
    return StatementLine(
        VoucherNo=voucher,
        LineType=kind,
        PayAcctNo="420500000000000001",
        PayAmt=100,
        Amount=amount,
        TreasuryRef="GK1",
        SettledAt=at,
    )


def statement(*lines: StatementLine) -> DailyStatement:
    return DailyStatement(
        StatementDate=DAY,
        Lines=list(lines),
        LineCount=len(lines),
        TotalPaidAmt=sum(x.Amount for x in lines if x.LineType == "paid"),
        TotalReturnedAmt=sum(x.Amount for x in lines if x.LineType == "returned"),
    )


def outcomes(rows: list[PaymentInstruction], stmt: DailyStatement, known: list[PaymentInstruction] = ()) -> dict:
    matched = match_statement(stmt, our_lines(rows, START, END), {k.voucher_no: k for k in known})
    return {(m["voucher_no"], m["line_type"]): m["outcome"] for m in matched}


def test_beijing_day_window() -> None:
    assert datetime(2026, 11, 21, 16, 0, tzinfo=UTC) == START and datetime(2026, 11, 22, 16, 0, tzinfo=UTC) == END


def test_every_outcome() -> None:
    rows = [
        ours("V1", "paid"),
        ours("V2", "paid", 100),
        ours("V3", "paid"),  # theirs says failed
        ours("V4", "failed", 0),
        ours("V5", "paid"),  # not on their statement
        ours("V6", "returned", 100, returned_amt_fen=100, returned_at=AT),
    ]
    stmt = statement(
        line("V1", "paid"),
        line("V2", "paid", 90),
        line("V3", "failed", 0),
        line("V4", "failed", 0),
        line("V6", "paid"),
        line("V6", "returned"),
        line("VX", "paid"),
    )
    assert outcomes(rows, stmt) == {
        ("V1", "settle"): "matched",
        ("V2", "settle"): "amount_mismatch",
        ("V3", "settle"): "status_mismatch",
        ("V4", "settle"): "matched",
        ("V5", "settle"): "missing_theirs",
        ("V6", "settle"): "matched",
        ("V6", "return"): "matched",
        ("VX", "settle"): "missing_ours",
    }


def test_a_lost_callback_is_a_status_mismatch_not_a_missing_line() -> None:
    pending = ours("V7", "accepted", 0, settled_at=None)
    assert outcomes([], statement(line("V7", "paid")), known=[pending]) == {("V7", "settle"): "status_mismatch"}


def test_a_return_today_of_a_payment_made_earlier() -> None:
    earlier = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    row = ours("V8", "returned", 100, settled_at=earlier, returned_amt_fen=100, returned_at=AT)
    assert outcomes([row], statement(line("V8", "returned"))) == {("V8", "return"): "matched"}
    assert outcomes([row], statement()) == {("V8", "return"): "missing_theirs"}


def test_notes_are_chinese_and_name_amounts_in_yuan() -> None:
    matched = match_statement(
        statement(line("V2", "paid", 12_345)), our_lines([ours("V2", "paid", 12_300)], START, END), {}
    )
    assert matched[0]["note"] == "凭证 V2 支付金额不符：我方 123.00元，国库 123.45元"
