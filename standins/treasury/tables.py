"""The stand-in's own database: instructions as received, callbacks to deliver, and the ledger of money moved."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
)

from schemas.treasury import InstructionResult

metadata = MetaData()

instructions = Table(
    "tsim_instruction",
    metadata,
    Column("voucher_no", String(40), primary_key=True),
    # The instruction as first received (canonical JSON): a resend must match it exactly.
    Column("payload", Text, nullable=False),
    Column("pay_acct_no", String(40), nullable=False),
    Column("pay_amt", BigInteger, nullable=False),
    Column("notify_url", Text),  # None: the sender polls instead of being called back
    Column("status", String(16), nullable=False),  # accepted | paid | failed | returned
    Column("paid_amt", BigInteger, nullable=False, default=0),  # what was paid at settlement (kept on return)
    Column("reason", Text, nullable=False, default=""),
    Column("treasury_ref", String(64), nullable=False, unique=True),
    # Epoch seconds: exact, portable across SQLite and PostgreSQL, cheap to compare.
    Column("accepted_at", Float, nullable=False),
    Column("settled_at", Float),
    Column("return_due_at", Float),  # a passive return (退票) is scheduled for this time
    Column("return_reason", Text),
    Column("return_type", String(16)),  # passive | active
    Column("returned_amt", BigInteger, nullable=False, default=0),
    Column("returned_at", Float),
    Column("channel", String(8), nullable=False, default="http"),  # http | file
    Column("file_msg_id", String(35)),  # the pain.001 MsgId it came in
    Column("reported_status", String(16)),  # last status reported in a file (pain.002 / camt.054)
    Index("ix_tsim_instruction_due", "status", "accepted_at"),
    Index("ix_tsim_instruction_return_due", "return_due_at"),
    Index("ix_tsim_instruction_report", "channel", "reported_status"),
)

callbacks = Table(
    "tsim_callback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("voucher_no", String(40), nullable=False, index=True),
    Column("notify_url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the InstructionResult as it was when queued (stale ones too)
    Column("state", String(16), nullable=False, default="pending"),  # pending | delivered
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float),
    Column("error", Text),
    Index("ix_tsim_callback_due", "state", "next_at"),
)

ledger = Table(
    "tsim_ledger_entry",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("voucher_no", String(40), nullable=False),
    Column("entry", String(16), nullable=False),  # paid | returned (amounts positive; the entry says which way)
    Column("pay_acct_no", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("posted_at", Float, nullable=False),
    # At most one paid and one returned entry per voucher: the database itself refuses paying twice.
    UniqueConstraint("voucher_no", "entry", name="uq_tsim_ledger_voucher_entry"),
    Index("ix_tsim_ledger_posted", "posted_at"),
)



def utc(epoch: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime (None stays None)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def result_of(row: Mapping[str, Any], as_status: str | None = None) -> InstructionResult:
    """The row as an InstructionResult; `as_status` renders an earlier state (for stale callbacks)."""
    status = as_status or row["status"]
    returned = status == "returned"
    if not returned:
        # The stand-in's own rows, written by its own rules: built without validation (most of the cost of answering
        # a batch of a thousand); a returned row, with its enum, is validated as before.
        return InstructionResult.model_construct(
            VoucherNo=row["voucher_no"],
            Status=status,
            PaidAmt=row["paid_amt"] if status == "paid" else 0,
            Reason=row["reason"] if status == "failed" else "",
            TreasuryRef=row["treasury_ref"],
            AcceptedAt=utc(row["accepted_at"]),
            SettledAt=None if status == "accepted" else utc(row["settled_at"]),
            ReturnType=None,
            ReturnedAmt=0,
            ReturnedAt=None,
        )
    return InstructionResult(
        VoucherNo=row["voucher_no"],
        Status=status,
        PaidAmt=row["paid_amt"] if status == "paid" else 0,
        Reason=(row["return_reason"] or "") if returned else (row["reason"] if status == "failed" else ""),
        TreasuryRef=row["treasury_ref"],
        AcceptedAt=utc(row["accepted_at"]),
        SettledAt=None if status == "accepted" else utc(row["settled_at"]),
        ReturnType=row["return_type"] if returned else None,
        ReturnedAmt=row["returned_amt"] if returned else 0,
        ReturnedAt=utc(row["returned_at"]) if returned else None,
    )


def create_schema(engine: Engine) -> None:
    """Create the tables; refuse, with a message saying what to do, a database left by an older stand-in."""
    metadata.create_all(engine)
    # create_all never alters: a database from an older stand-in would fail later with obscure SQL errors.
    existing = inspect(engine)
    for table in metadata.sorted_tables:
        have = {column["name"] for column in existing.get_columns(table.name)}
        missing = sorted(set(table.columns.keys()) - have)
        if missing:
            raise SystemExit(
                f"国库模拟库 {engine.url} 的表 {table.name} 来自旧版本，缺少列 {', '.join(missing)}；"
                "这是模拟国库自己的数据（不影响 Zhida 数据库），请删除该文件后重新启动。"
            )


def ledger_lines(engine: Any, voucher_no: str | None = None) -> list[dict[str, Any]]:
    """The stand-in's ledger rows (for tests and audits): voucher, entry, amount."""
    stmt = select(ledger.c.voucher_no, ledger.c.entry, ledger.c.amount).order_by(ledger.c.id)
    if voucher_no is not None:
        stmt = stmt.where(ledger.c.voucher_no == voucher_no)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]
