"""The stand-in's book: instructions taken in (new, resent or conflicting), settled after a delay, returned,
each money movement posted once to its ledger."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from schemas.treasury import (
    BatchItemResult,
    InstructionResult,
    InstructionStatus,
    LedgerAccount,
    LedgerSummary,
    PaymentInstruction,
)
from standins.treasury.callbacks import queue_callbacks
from standins.treasury.contracts import Refusal
from standins.treasury.faults import Faults
from standins.treasury.tables import instructions, ledger, result_of

# Deterministic fault: a payee name containing this mark fails as a name/number mismatch.
FAULT_PAYEE_NAME_MARK = "错误"
REASON_NAME_MISMATCH = "收款人账户名称与账号不符"
REASON_NO_ACCOUNT = "收款账号不存在"
REASON_RETURN_NAME = "收款人户名不符"
REASON_ACTIVE_RETURN = "收款人主动退回"


def settle_outcome(instruction: PaymentInstruction) -> tuple[InstructionStatus, int, str]:
    """What the bank does with an instruction: (status, paid fen, reason); deterministic for demos."""
    return outcome_for(instruction.PayeeAcctName, instruction.PayAmt)


def outcome_for(payee_name: str, amount: int) -> tuple[InstructionStatus, int, str]:
    """`settle_outcome` from the two fields it reads (the settler takes them from the stored payload)."""
    if FAULT_PAYEE_NAME_MARK in payee_name:
        return "failed", 0, REASON_NAME_MISMATCH
    return "paid", amount, ""


class Ledger:
    """Instructions and the money they moved; every method is one transaction, safe from several threads."""

    def __init__(self, *, engine: Engine, faults: Faults, settle_delay_seconds: float, settle_batch: int = 500) -> None:
        self.engine = engine
        self.faults = faults
        self._delay = settle_delay_seconds
        self._settle_batch = settle_batch

    def accept(
        self, items: list[PaymentInstruction], *, channel: str = "http", file_msg_id: str | None = None
    ) -> list[BatchItemResult]:
        """Store new instructions and classify the rest as resends or conflicts, in one transaction."""
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    return self._accept(conn, items, channel, file_msg_id)
            except IntegrityError:
                # A concurrent submission of the same VoucherNo won the insert (PostgreSQL); reclassify.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _accept(
        self, conn: Connection, items: list[PaymentInstruction], channel: str, file_msg_id: str | None
    ) -> list[BatchItemResult]:
        voucher_nos = list({i.VoucherNo for i in items})
        known: dict[str, dict[str, Any]] = {
            row["voucher_no"]: dict(row)
            for row in conn.execute(
                select(instructions).where(instructions.c.voucher_no.in_(voucher_nos))
            ).mappings()
        }
        now = time.time()
        today = datetime.now(UTC).strftime("%Y%m%d")
        new_rows: list[dict[str, Any]] = []
        out: list[BatchItemResult] = []
        for instruction in items:
            voucher_no, payload = instruction.VoucherNo, instruction.model_dump_json()
            row = known.get(voucher_no)
            if row is not None:
                if row["payload"] == payload:
                    out.append(
                        BatchItemResult(VoucherNo=voucher_no, Outcome="duplicate", Result=result_of(row))
                    )
                else:
                    reason = f"凭证号 {voucher_no} 已用于内容不同的支付指令"
                    out.append(BatchItemResult(VoucherNo=voucher_no, Outcome="conflict", Reason=reason))
                continue
            row = known[voucher_no] = {
                "voucher_no": voucher_no,
                "payload": payload,
                "pay_acct_no": instruction.PayAcctNo,
                "pay_amt": instruction.PayAmt,
                "notify_url": instruction.NotifyUrl,
                "status": "accepted",
                "paid_amt": 0,
                "reason": "",
                "treasury_ref": f"GK{today}{secrets.token_hex(6).upper()}",
                "accepted_at": now,
                "settled_at": None,
                "return_due_at": None,
                "return_reason": None,
                "return_type": None,
                "returned_amt": 0,
                "returned_at": None,
                "channel": channel,
                "file_msg_id": file_msg_id,
                "reported_status": None,
            }
            new_rows.append(row)
            out.append(BatchItemResult(VoucherNo=voucher_no, Outcome="accepted", Result=result_of(row)))
        if new_rows:
            conn.execute(insert(instructions), new_rows)
        return out

    def results(self, voucher_nos: list[str]) -> list[InstructionResult]:
        stmt = select(instructions).where(instructions.c.voucher_no.in_(voucher_nos))
        with self.engine.connect() as conn:
            return [result_of(row) for row in conn.execute(stmt).mappings()]

    def settle_due(self) -> tuple[int, float | None]:
        """Settle one batch of due instructions and due returns; (how many, when the next is due)."""
        now = time.time()
        due = (
            select(instructions)
            .where(instructions.c.status == "accepted", instructions.c.accepted_at <= now - self._delay)
            .order_by(instructions.c.accepted_at)
            .limit(self._settle_batch)
        )
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(due).mappings()]
            changes: list[dict[str, Any]] = []
            postings: list[dict[str, Any]] = []
            for row in rows:
                # The payload was validated when it was accepted; the outcome needs two of its fields.
                payload = json.loads(row["payload"])
                status, paid, reason = outcome_for(payload["PayeeAcctName"], payload["PayAmt"])
                fail = self.faults.for_voucher("fail", row["voucher_no"])
                if fail is not None:
                    status, paid, reason = "failed", 0, fail.Reason or REASON_NO_ACCOUNT
                back = self.faults.for_voucher("passive_return", row["voucher_no"]) if status == "paid" else None
                row.update(status=status, paid_amt=paid, reason=reason, settled_at=now)
                row["return_due_at"] = now + back.DelaySeconds if back else None
                row["return_reason"] = (back.Reason or REASON_RETURN_NAME) if back else None
                changes.append(
                    {"v": row["voucher_no"], "s": status, "p": paid, "r": reason, "rd": row["return_due_at"],
                     "rr": row["return_reason"]}
                )
                if paid:
                    postings.append(
                        {
                            "voucher_no": row["voucher_no"],
                            "entry": "paid",
                            "pay_acct_no": row["pay_acct_no"],
                            "amount": paid,
                            "posted_at": now,
                        }
                    )
            if changes:
                stmt = (
                    update(instructions)
                    .where(instructions.c.voucher_no == bindparam("v"), instructions.c.status == "accepted")
                    .values(
                        status=bindparam("s"),
                        paid_amt=bindparam("p"),
                        reason=bindparam("r"),
                        settled_at=now,
                        return_due_at=bindparam("rd"),
                        return_reason=bindparam("rr"),
                    )
                )
                conn.execute(stmt, changes)
            if postings:
                conn.execute(insert(ledger), postings)
            queue_callbacks(conn, self.faults, rows, "accepted", now)
            returned = self._return_due(conn, now)
            if len(rows) == self._settle_batch:
                return len(rows), now
            oldest = conn.execute(
                select(func.min(instructions.c.accepted_at)).where(instructions.c.status == "accepted")
            ).scalar()
            # Only a paid instruction has a return due (it is cleared when the return is applied): the index answers.
            next_return = conn.execute(select(func.min(instructions.c.return_due_at))).scalar()
        candidates = [t for t in (None if oldest is None else oldest + self._delay, next_return) if t is not None]
        return len(rows) + returned, min(candidates) if candidates else None

    def _return_due(self, conn: Connection, now: float) -> int:
        """Passive returns (退票) whose time has come: paid → returned, a ledger line back, a callback."""
        # By the return_due_at index alone (status == "paid" would lead the planner to scan every paid row).
        due = select(instructions).where(instructions.c.return_due_at <= now).limit(self._settle_batch)
        rows = [dict(r) for r in conn.execute(due).mappings() if r["status"] == "paid"]
        for row in rows:
            self._apply_return(conn, row, "passive", row["return_reason"] or REASON_RETURN_NAME, now)
        return len(rows)

    def _apply_return(self, conn: Connection, row: dict[str, Any], kind: str, reason: str, now: float) -> None:
        changed = conn.execute(
            update(instructions)
            .where(instructions.c.voucher_no == row["voucher_no"], instructions.c.status == "paid")
            .values(
                status="returned",
                return_type=kind,
                return_reason=reason,
                returned_amt=row["paid_amt"],
                returned_at=now,
                return_due_at=None,
            )
        ).rowcount
        if not changed:
            return
        conn.execute(
            insert(ledger).values(
                voucher_no=row["voucher_no"],
                entry="returned",
                pay_acct_no=row["pay_acct_no"],
                amount=row["paid_amt"],
                posted_at=now,
            )
        )
        row.update(status="returned", return_type=kind, return_reason=reason, returned_amt=row["paid_amt"],
                   returned_at=now)
        queue_callbacks(conn, self.faults, [row], "paid", now)

    def active_return(self, voucher_no: str, reason: str) -> InstructionResult:
        """The payee sent the money back (主动退回): recorded like a return, with its own type."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(instructions).where(instructions.c.voucher_no == voucher_no).with_for_update()
            ).mappings().first()
            if row is None:
                raise Refusal(404, f"未找到凭证号为 {voucher_no} 的支付指令")
            if row["status"] != "paid":
                raise Refusal(409, f"凭证 {voucher_no} 当前状态为 {row['status']}，只有已支付的指令可以退回")
            current = dict(row)
            self._apply_return(conn, current, "active", reason, time.time())
            return result_of(current)

    def summary(self) -> LedgerSummary:
        """Paid and returned totals per paying account."""
        stmt = (
            select(ledger.c.pay_acct_no, ledger.c.entry, func.sum(ledger.c.amount), func.count())
            .group_by(ledger.c.pay_acct_no, ledger.c.entry)
            .order_by(ledger.c.pay_acct_no)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        totals: dict[str, dict[str, int]] = {}
        for acct, entry, amount, count in rows:
            account = totals.setdefault(acct, {"PaidAmt": 0, "PaidCount": 0, "ReturnedAmt": 0, "ReturnedCount": 0})
            prefix = "Paid" if entry == "paid" else "Returned"
            account[f"{prefix}Amt"] += int(amount)
            account[f"{prefix}Count"] += count
        accounts = [
            LedgerAccount(PayAcctNo=acct, NetAmt=t["PaidAmt"] - t["ReturnedAmt"], **t) for acct, t in totals.items()
        ]
        return LedgerSummary(Accounts=accounts)
