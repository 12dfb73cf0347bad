"""Reconciliation (对账) activities: fetch the treasury's daily statement, match it line by line, store and alert.

`match_statement` is the pure matching rule; the activity around it is one gateway call and one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.models import PaymentInstruction
from db.repositories import payments, reconciliation
from db.session import transaction
from gateways.treasury import StatementSource, TreasuryRejected, TreasuryUnavailable
from rules.money import format_yuan
from schemas.reconciliation import ReconInput, ReconRequest, ReconSummary
from schemas.treasury import DailyStatement, StatementLine
from schemas.vocabulary import PaymentStatus

BEIJING = ZoneInfo("Asia/Shanghai")
STATUS_ZH = {s.value: s.label for s in PaymentStatus}  # "paid" reads 已拨付 here as on every page
LINE_TYPE_ZH = {"settle": "支付", "return": "退回"}


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Beijing calendar day, in UTC (how times are stored)."""
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """Stored times are UTC; SQLite hands them back naive."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Ours:
    voucher_no: str
    line_type: str  # settle | return
    status: str  # paid | failed | returned
    amount_fen: int
    at: datetime | None


def our_lines(rows: list[PaymentInstruction], start: datetime, end: datetime) -> dict[tuple[str, str], _Ours]:
    """Our side of a statement day: each settlement (paid or failed) and each return that happened in it."""
    out: dict[tuple[str, str], _Ours] = {}
    for row in rows:
        settled, returned = _aware(row.settled_at), _aware(row.returned_at)
        if settled and start <= settled < end and row.status in ("paid", "failed", "returned"):
            status = "failed" if row.status == "failed" else "paid"
            amount = row.paid_amt_fen if status == "paid" else 0
            out[(row.voucher_no, "settle")] = _Ours(row.voucher_no, "settle", status, amount, settled)
        if returned and start <= returned < end and row.status == "returned":
            out[(row.voucher_no, "return")] = _Ours(row.voucher_no, "return", "returned", row.returned_amt_fen, returned)
    return out


def _their_key(line: StatementLine) -> tuple[str, str]:
    return line.VoucherNo, "return" if line.LineType == "returned" else "settle"


def match_statement(
    statement: DailyStatement,
    ours: dict[tuple[str, str], _Ours],
    known: dict[str, PaymentInstruction],
) -> list[dict[str, Any]]:
    """Line-by-line outcome: matched, missing_ours, missing_theirs, amount_mismatch or status_mismatch.

    `ours` is our side of the day; `known` holds our instructions for statement vouchers outside it (a callback
    we never received, a settlement we dated another day), which are status mismatches, not missing lines.
    """
    remaining = dict(ours)
    out: list[dict[str, Any]] = []
    for line in statement.Lines:
        key = _their_key(line)
        mine = remaining.pop(key, None)
        row: dict[str, Any] = {
            "voucher_no": line.VoucherNo,
            "line_type": key[1],
            "their_status": line.LineType,
            "their_amt_fen": line.Amount,
            "treasury_ref": line.TreasuryRef or None,
            "settled_at": line.SettledAt,
            "our_status": None,
            "our_amt_fen": None,
        }
        if mine is not None:
            row |= {"our_status": mine.status, "our_amt_fen": mine.amount_fen}
            if mine.status != line.LineType:
                row |= {"outcome": "status_mismatch", "note": _status_note(line.VoucherNo, mine.status, line.LineType)}
            elif mine.amount_fen != line.Amount:
                note = (
                    f"凭证 {line.VoucherNo} {LINE_TYPE_ZH[key[1]]}金额不符：我方 {format_yuan(mine.amount_fen)}，"
                    f"国库 {format_yuan(line.Amount)}"
                )
                row |= {"outcome": "amount_mismatch", "note": note}
            else:
                row |= {"outcome": "matched", "note": ""}
        elif (instruction := known.get(line.VoucherNo)) is not None:
            row |= {
                "our_status": instruction.status,
                "our_amt_fen": instruction.paid_amt_fen,
                "outcome": "status_mismatch",
                "note": _status_note(line.VoucherNo, instruction.status, line.LineType, elsewhere=True),
            }
        else:
            note = (
                f"国库对账单有凭证 {line.VoucherNo}（{STATUS_ZH[line.LineType]} {format_yuan(line.Amount)}），"
                "我方无此支付指令"
            )
            row |= {"outcome": "missing_ours", "note": note}
        out.append(row)
    for (voucher, line_type), mine in sorted(remaining.items()):
        note = (
            f"我方凭证 {voucher} {STATUS_ZH[mine.status]} {format_yuan(mine.amount_fen)}，"
            f"国库对账单无此{LINE_TYPE_ZH[line_type]}记录"
        )
        out.append(
            {
                "voucher_no": voucher,
                "line_type": line_type,
                "their_status": None,
                "their_amt_fen": None,
                "treasury_ref": None,
                "settled_at": mine.at,
                "our_status": mine.status,
                "our_amt_fen": mine.amount_fen,
                "outcome": "missing_theirs",
                "note": note,
            }
        )
    return out


def _status_note(voucher: str, ours: str, theirs: str, *, elsewhere: bool = False) -> str:
    where = "（我方该日无此记录）" if elsewhere else ""
    return f"凭证 {voucher} 状态不符：我方「{STATUS_ZH.get(ours, ours)}」，国库「{STATUS_ZH.get(theirs, theirs)}」{where}"


class ReconciliationActivities:
    """Holds the database URL and the statement source (the HTTP treasury adapter, signed both ways)."""

    def __init__(self, *, db_url: str, statements: StatementSource) -> None:
        self.db_url = db_url
        self.statements = statements

    @activity.defn
    def resolve_statement_day(self, request: ReconRequest) -> date:
        """The day to reconcile: the one asked for, else yesterday in Beijing time (clock read here, not in the workflow)."""
        return request.statement_date or (datetime.now(BEIJING).date() - timedelta(days=1))

    @activity.defn
    def reconcile(self, request: ReconInput) -> ReconSummary:
        """Fetch the statement, match it against our instructions, store the run and raise alerts: idempotent by run_key."""
        try:
            statement = self.statements.statement(request.statement_date)
        except TreasuryRejected as exc:
            raise ApplicationError(str(exc), non_retryable=True, type="TreasuryRejected") from exc
        except TreasuryUnavailable as exc:
            raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
        start, end = day_window(request.statement_date)
        with transaction(self.db_url) as session:
            run = reconciliation.start_run(
                session=session, run_key=request.run_key, statement_date=request.statement_date, trigger=request.trigger
            )
            rows = payments.settled_between(session=session, start=start, end=end)
            ours = our_lines(rows, start, end)
            outside = [line.VoucherNo for line in statement.Lines if _their_key(line) not in ours]
            known = payments.by_vouchers(session=session, vouchers=sorted(set(outside)))
            lines = match_statement(statement, ours, known)
            reconciliation.replace_lines(session=session, run=run, lines=lines)
            alerts = 0
            for line in lines:
                if line["outcome"] == "matched":
                    continue
                reconciliation.raise_alert(
                    session=session,
                    kind=f"recon_{line['outcome']}",
                    ref=f"{request.statement_date.isoformat()}:{line['voucher_no']}:{line['line_type']}",
                    message=f"{request.statement_date.isoformat()} 对账：{line['note']}",
                    recon_run_id=run.id,
                )
                alerts += 1
            reconciliation.finish_run(
                session=session,
                run=run,
                totals={
                    "statement_lines": statement.LineCount,
                    "their_paid_fen": statement.TotalPaidAmt,
                    "their_returned_fen": statement.TotalReturnedAmt,
                    "our_paid_fen": sum(o.amount_fen for o in ours.values() if o.status == "paid"),
                    "our_returned_fen": sum(o.amount_fen for o in ours.values() if o.status == "returned"),
                },
            )
            return ReconSummary(
                run_id=run.id,
                statement_date=request.statement_date,
                statement_lines=statement.LineCount,
                matched=run.matched,
                missing_ours=run.missing_ours,
                missing_theirs=run.missing_theirs,
                amount_mismatch=run.amount_mismatch,
                status_mismatch=run.status_mismatch,
                alerts=alerts,
            )
