"""The treasury stand-in (国库集中支付模拟): a separate process that plays the treasury and its bank.

It accepts signed instructions (JSON over HTTP, or ISO 20022 pain.001 files in a drop folder), settles them
after a delay, keeps a ledger of what it paid and what came back, produces a signed daily statement (对账单),
and calls back each instruction's NotifyUrl (when it has one) until a 2xx. Faults can be injected over HTTP
(`PUT /admin/faults`): timeouts, 5xx, duplicate and out-of-order callbacks, passive returns (退票), failed
lines inside a batch, statement gaps and amount errors; active returns (主动退回) are an admin action. All
state except the fault rules lives in its own database, so a restart resumes pending settlements, returns
and undelivered callbacks. Protocol: docs/treasury-protocol.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from anyio import to_thread
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from db.session import make_engine
from gateways import iso20022
from gateways.signing import NonceCache, SignatureError, sign_headers, verify_headers
from schemas.treasury import (
    ActiveReturn,
    BatchItemResult,
    DailyStatement,
    FaultRule,
    FaultSettings,
    InstructionBatch,
    InstructionBatchResult,
    InstructionQuery,
    InstructionQueryResult,
    InstructionResult,
    InstructionStatus,
    LedgerAccount,
    LedgerSummary,
    PaymentInstruction,
    StatementLine,
)

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger("zhida.treasury_sim")
M = TypeVar("M", bound=BaseModel)

# Deterministic fault: a payee name containing this mark fails as a name/number mismatch.
FAULT_PAYEE_NAME_MARK = "错误"
REASON_NAME_MISMATCH = "收款人账户名称与账号不符"
REASON_NO_ACCOUNT = "收款账号不存在"
REASON_RETURN_NAME = "收款人户名不符"
REASON_ACTIVE_RETURN = "收款人主动退回"
MAX_BODY_BYTES = 4 * 1024 * 1024
STATEMENT_TZ = ZoneInfo("Asia/Shanghai")
# A stale (out-of-order) callback is sent this long after the final one, so it really arrives late.
STALE_CALLBACK_LAG_SECONDS = 0.3
DEFAULT_TIMEOUT_DELAY_SECONDS = 10.0

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


def settle_outcome(instruction: PaymentInstruction) -> tuple[InstructionStatus, int, str]:
    """What the bank does with an instruction: (status, paid fen, reason); deterministic for demos."""
    if FAULT_PAYEE_NAME_MARK in instruction.PayeeAcctName:
        return "failed", 0, REASON_NAME_MISMATCH
    return "paid", instruction.PayAmt, ""


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _result(row: Mapping[str, Any], as_status: str | None = None) -> InstructionResult:
    """The row as an InstructionResult; `as_status` renders an earlier state (for stale callbacks)."""
    status = as_status or row["status"]
    returned = status == "returned"
    return InstructionResult(
        VoucherNo=row["voucher_no"],
        Status=status,
        PaidAmt=row["paid_amt"] if status == "paid" else 0,
        Reason=(row["return_reason"] or "") if returned else (row["reason"] if status == "failed" else ""),
        TreasuryRef=row["treasury_ref"],
        AcceptedAt=_utc(row["accepted_at"]),
        SettledAt=None if status == "accepted" else _utc(row["settled_at"]),
        ReturnType=row["return_type"] if returned else None,
        ReturnedAmt=row["returned_amt"] if returned else 0,
        ReturnedAt=_utc(row["returned_at"]) if returned else None,
    )


def statement_window(day: date) -> tuple[float, float]:
    """Epoch seconds [start, end) of a statement day in Beijing time."""
    start = datetime(day.year, day.month, day.day, tzinfo=STATEMENT_TZ)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


class _Refusal(Exception):
    """An answer other than success; carries its HTTP status and Chinese detail."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"detail": detail} | ({"errors": errors} if errors else {})


def _parse(model: type[M], body: bytes, what: str) -> M:
    """Validate a request body; a 422 names every bad field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]} for e in exc.errors()
        ]
        raise _Refusal(422, f"{what}字段不合法", errors[:50]) from exc


@dataclass
class _Callback:
    id: int
    voucher_no: str
    notify_url: str
    attempts: int
    body: bytes


class Faults:
    """The fault rules in force (in memory: a restart clears them), thread-safe.

    Voucher rules are exact; rate rules draw per voucher from a hash of (seed, kind, voucher), so the same
    instruction always draws the same way, and per request from a seeded generator.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._remaining: dict[int, int] = {}
        self._rng = random.Random(0)
        self.injected: Counter[str] = Counter()  # kind → how many times it fired, so tests can prove it did

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            self._remaining = {
                i: rule.Times or (1 if rule.VoucherNo else 2**62) for i, rule in enumerate(settings.Rules)
            }
            self._rng = random.Random(settings.Seed)
            self.injected.clear()

    def request_fault(self, vouchers: Sequence[str]) -> FaultRule | None:
        """A timeout or 5xx to inject into this request, if any rule hits it (counted down per rule)."""
        with self._lock:
            for index, rule in enumerate(self._settings.Rules):
                if rule.Kind not in ("timeout", "error_5xx") or self._remaining.get(index, 0) <= 0:
                    continue
                if rule.VoucherNo is not None:
                    hit = rule.VoucherNo in vouchers
                else:
                    hit = bool(vouchers) and self._rng.random() < (rule.Rate or 0)
                if hit:
                    self._remaining[index] -= 1
                    self.injected[rule.Kind] += 1
                    return rule
        return None

    def for_voucher(self, kind: str, voucher_no: str) -> FaultRule | None:
        """The rule of `kind` that applies to this voucher: its own rule first, else a rate rule's draw."""
        rules = self._settings.Rules
        found = next((r for r in rules if r.Kind == kind and r.VoucherNo == voucher_no), None) or next(
            (
                r
                for r in rules
                if r.Kind == kind and r.Rate is not None and _draw(self._settings.Seed, kind, voucher_no) < r.Rate
            ),
            None,
        )
        if found is not None:
            with self._lock:
                self.injected[kind] += 1
        return found


def _draw(seed: int, kind: str, voucher_no: str) -> float:
    digest = hashlib.sha256(f"{seed}:{kind}:{voucher_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class TreasuryStandIn:
    """The stand-in's state and behaviour: sync methods run in worker threads, loops on the event loop."""

    def __init__(
        self,
        *,
        db_url: str,
        private_pem: str,
        key_id: str,
        zhida_public_pems: Mapping[str, str],
        settle_delay_seconds: float,
        window_seconds: int,
        callback_backoff_seconds: float,
        callback_backoff_max_seconds: float,
        settle_batch: int = 500,
        callback_batch: int = 200,
        callback_concurrency: int = 32,
        callback_timeout_seconds: float = 5.0,
        file_dir: Path | None = None,
    ) -> None:
        self.engine = make_engine(db_url)
        self._private_pem = private_pem
        self._key_id = key_id
        self._zhida_pems = dict(zhida_public_pems)
        self._delay = settle_delay_seconds
        self._window = window_seconds
        self._nonces = NonceCache()
        self._backoff = callback_backoff_seconds
        self._backoff_max = callback_backoff_max_seconds
        self._settle_batch = settle_batch
        self._callback_batch = callback_batch
        self._callback_concurrency = callback_concurrency
        self._callback_timeout = callback_timeout_seconds
        self.file_dir = file_dir
        self.faults = Faults()
        self.settle_wake = asyncio.Event()
        # False only while the settler sleeps towards a due time, which no newer instruction can precede:
        # then submissions need not wake it (saving a settlement query per submission).
        self._settler_idle = True
        self.deliver_wake = asyncio.Event()

    # Requests -----------------------------------------------------------------------------------------

    async def handle(
        self,
        request: Request,
        action: Callable[[bytes], tuple[int, BaseModel]],
        vouchers: Callable[[bytes], list[str]] | None = None,
    ) -> Response:
        """Read, authenticate and run `action` off the event loop, then sign whatever is answered.

        `vouchers` names the instructions a request is about, so a fault rule can hit it.
        """
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return self.respond(413, {"detail": f"请求体超过{MAX_BODY_BYTES}字节"})
        status, content, fault = await to_thread.run_sync(self._guarded, action, request.headers, body, vouchers)
        if fault is not None and fault.Kind == "timeout":
            # The instruction is stored; only the answer is late, past the client's timeout (the ambiguous case).
            await asyncio.sleep(fault.DelaySeconds or DEFAULT_TIMEOUT_DELAY_SECONDS)
        accepted = status == 202 or (
            isinstance(content, InstructionBatchResult)
            and any(r.Outcome == "accepted" for r in content.Results)
        )
        if accepted and self._settler_idle:
            self.settle_wake.set()
        return self.respond(status, content)

    def _guarded(
        self,
        action: Callable[[bytes], tuple[int, BaseModel]],
        headers: Mapping[str, str],
        body: bytes,
        vouchers: Callable[[bytes], list[str]] | None,
    ) -> tuple[int, BaseModel | dict[str, Any], FaultRule | None]:
        try:
            verify_headers(self._zhida_pems, headers, body, window_seconds=self._window, nonces=self._nonces)
            fault = self.faults.request_fault(_safe_vouchers(vouchers, body)) if vouchers else None
            if fault is not None and fault.Kind == "error_5xx":
                return 503, {"detail": "国库支付系统繁忙（模拟故障）", "code": "injected_5xx"}, fault
            status, content = action(body)
            return status, content, fault
        except SignatureError as exc:
            return 401, {"detail": exc.reason, "code": exc.code}, None
        except _Refusal as exc:
            return exc.status, exc.body, None

    def respond(self, status: int, content: BaseModel | dict[str, Any]) -> Response:
        """A JSON answer signed with the treasury's key, so Zhida can trust statuses it reads."""
        if isinstance(content, BaseModel):
            body = content.model_dump_json().encode()
        else:
            body = json.dumps(content, ensure_ascii=False).encode()
        headers = sign_headers(self._private_pem, self._key_id, body)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def submit_one(self, body: bytes) -> tuple[int, BaseModel]:
        item = self.accept([_parse(PaymentInstruction, body, "支付指令")])[0]
        if item.Outcome == "conflict":
            raise _Refusal(409, item.Reason)
        assert item.Result is not None
        return (202 if item.Outcome == "accepted" else 200), item.Result

    def submit_batch(self, body: bytes) -> tuple[int, BaseModel]:
        batch = _parse(InstructionBatch, body, "批量支付指令")
        return 200, InstructionBatchResult(Results=self.accept(batch.Instructions))

    def query_one(self, voucher_no: str, _body: bytes) -> tuple[int, BaseModel]:
        found = self.results([voucher_no])
        if not found:
            raise _Refusal(404, f"未找到凭证号为 {voucher_no} 的支付指令")
        return 200, found[0]

    def query_many(self, body: bytes) -> tuple[int, BaseModel]:
        query = _parse(InstructionQuery, body, "查询")
        return 200, InstructionQueryResult(Results=self.results(query.VoucherNos))

    def ledger_summary(self, _body: bytes) -> tuple[int, BaseModel]:
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
        return 200, LedgerSummary(Accounts=accounts)

    def statement(self, day_text: str, _body: bytes) -> tuple[int, BaseModel]:
        try:
            day = date.fromisoformat(day_text)
        except ValueError as exc:
            raise _Refusal(422, "对账日期格式应为YYYY-MM-DD", [{"field": "date", "message": str(exc)}]) from exc
        return 200, self.daily_statement(day)

    def put_faults(self, body: bytes) -> tuple[int, BaseModel]:
        self.faults.replace(_parse(FaultSettings, body, "故障设置"))
        self.settle_wake.set()
        return 200, self.faults.settings

    def get_faults(self, _body: bytes) -> tuple[int, BaseModel]:
        return 200, self.faults.settings

    def fault_stats(self, _body: bytes) -> tuple[int, dict[str, Any]]:
        return 200, {"Injected": dict(self.faults.injected)}

    def post_active_return(self, body: bytes) -> tuple[int, BaseModel]:
        request = _parse(ActiveReturn, body, "主动退回")
        result = self.active_return(request.VoucherNo, request.Reason)
        self.deliver_wake.set()
        return 200, result

    # Storage ------------------------------------------------------------------------------------------

    def create_schema(self) -> None:
        metadata.create_all(self.engine)
        # create_all never alters: a database from an older stand-in would fail later with obscure SQL errors.
        existing = inspect(self.engine)
        for table in metadata.sorted_tables:
            have = {column["name"] for column in existing.get_columns(table.name)}
            missing = sorted(set(table.columns.keys()) - have)
            if missing:
                raise SystemExit(
                    f"国库模拟库 {self.engine.url} 的表 {table.name} 来自旧版本，缺少列 {', '.join(missing)}；"
                    "这是模拟国库自己的数据（不影响 Zhida 数据库），请删除该文件后重新启动。"
                )

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
                        BatchItemResult(VoucherNo=voucher_no, Outcome="duplicate", Result=_result(row))
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
            out.append(BatchItemResult(VoucherNo=voucher_no, Outcome="accepted", Result=_result(row)))
        if new_rows:
            conn.execute(insert(instructions), new_rows)
        return out

    def results(self, voucher_nos: list[str]) -> list[InstructionResult]:
        stmt = select(instructions).where(instructions.c.voucher_no.in_(voucher_nos))
        with self.engine.connect() as conn:
            return [_result(row) for row in conn.execute(stmt).mappings()]

    def _queue_callbacks(
        self, conn: Connection, rows: list[dict[str, Any]], previous: str, now: float
    ) -> None:
        """Queue each row's final callback, shaped by the faults: duplicates, and a stale earlier state after it."""
        queued: list[dict[str, Any]] = []
        for row in rows:
            if not row["notify_url"]:
                continue
            body = _result(row).model_dump_json()
            duplicate = self.faults.for_voucher("duplicate_callback", row["voucher_no"])
            copies = duplicate.Copies if duplicate else 1
            queued += [
                {"voucher_no": row["voucher_no"], "notify_url": row["notify_url"], "body": body, "next_at": now}
            ] * copies
            if self.faults.for_voucher("out_of_order", row["voucher_no"]):
                stale = _result(row, as_status=previous).model_dump_json()
                queued.append(
                    {
                        "voucher_no": row["voucher_no"],
                        "notify_url": row["notify_url"],
                        "body": stale,
                        "next_at": now + STALE_CALLBACK_LAG_SECONDS,
                    }
                )
        if queued:
            conn.execute(insert(callbacks).values(state="pending", attempts=0), queued)

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
                instruction = PaymentInstruction.model_validate_json(row["payload"])
                status, paid, reason = settle_outcome(instruction)
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
            self._queue_callbacks(conn, rows, "accepted", now)
            returned = self._return_due(conn, now)
            if len(rows) == self._settle_batch:
                return len(rows), now
            oldest = conn.execute(
                select(func.min(instructions.c.accepted_at)).where(instructions.c.status == "accepted")
            ).scalar()
            next_return = conn.execute(
                select(func.min(instructions.c.return_due_at)).where(instructions.c.status == "paid")
            ).scalar()
        candidates = [t for t in (None if oldest is None else oldest + self._delay, next_return) if t is not None]
        return len(rows) + returned, min(candidates) if candidates else None

    def _return_due(self, conn: Connection, now: float) -> int:
        """Passive returns (退票) whose time has come: paid → returned, a ledger line back, a callback."""
        due = (
            select(instructions)
            .where(instructions.c.status == "paid", instructions.c.return_due_at <= now)
            .limit(self._settle_batch)
        )
        rows = [dict(r) for r in conn.execute(due).mappings()]
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
        self._queue_callbacks(conn, [row], "paid", now)

    def active_return(self, voucher_no: str, reason: str) -> InstructionResult:
        """The payee sent the money back (主动退回): recorded like a return, with its own type."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(instructions).where(instructions.c.voucher_no == voucher_no).with_for_update()
            ).mappings().first()
            if row is None:
                raise _Refusal(404, f"未找到凭证号为 {voucher_no} 的支付指令")
            if row["status"] != "paid":
                raise _Refusal(409, f"凭证 {voucher_no} 当前状态为 {row['status']}，只有已支付的指令可以退回")
            current = dict(row)
            self._apply_return(conn, current, "active", reason, time.time())
            return _result(current)

    def daily_statement(self, day: date) -> DailyStatement:
        """Every settlement and return of one Beijing day; statement faults leave out or alter lines."""
        start, end = statement_window(day)
        cols = instructions.c
        money = (
            select(ledger, cols.pay_amt, cols.reason, cols.return_reason, cols.treasury_ref)
            .join(instructions, instructions.c.voucher_no == ledger.c.voucher_no)
            .where(ledger.c.posted_at >= start, ledger.c.posted_at < end)
        )
        failed = select(instructions).where(
            cols.status == "failed", cols.settled_at >= start, cols.settled_at < end
        )
        lines: list[StatementLine] = []
        with self.engine.connect() as conn:
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
                        SettledAt=_utc(row["posted_at"]),
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
                        SettledAt=_utc(row["settled_at"]),
                    )
                )
        shaped: list[StatementLine] = []
        for line in sorted(lines, key=lambda x: (x.SettledAt, x.VoucherNo, x.LineType)):
            if self._statement_rule("statement_drop", line.VoucherNo):
                continue
            altered = self._statement_rule("statement_amount", line.VoucherNo)
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

    def _statement_rule(self, kind: str, voucher_no: str) -> FaultRule | None:
        return next(
            (r for r in self.faults.settings.Rules if r.Kind == kind and r.VoucherNo == voucher_no), None
        )

    # Callbacks ----------------------------------------------------------------------------------------

    def due_callbacks(self) -> list[_Callback]:
        stmt = (
            select(callbacks)
            .where(callbacks.c.state == "pending", callbacks.c.next_at <= time.time())
            .order_by(callbacks.c.next_at, callbacks.c.id)
            .limit(self._callback_batch)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_Callback(r["id"], r["voucher_no"], r["notify_url"], r["attempts"], r["body"].encode()) for r in rows]

    def record_deliveries(self, outcomes: list[tuple[_Callback, str | None]]) -> float | None:
        """Persist delivery outcomes (error None = 2xx), backing failures off; returns the next due time."""
        now = time.time()
        changes = []
        for callback, error in outcomes:
            attempts = callback.attempts + 1
            delay = min(self._backoff * 2 ** (attempts - 1), self._backoff_max)
            changes.append(
                {
                    "i": callback.id,
                    "st": "pending" if error else "delivered",
                    "n": attempts,
                    "at": now + delay if error else None,
                    "e": error,
                }
            )
        with self.engine.begin() as conn:
            if changes:
                stmt = (
                    update(callbacks)
                    .where(callbacks.c.id == bindparam("i"))
                    .values(
                        state=bindparam("st"),
                        attempts=bindparam("n"),
                        next_at=bindparam("at"),
                        error=bindparam("e"),
                    )
                )
                conn.execute(stmt, changes)
            return conn.execute(
                select(func.min(callbacks.c.next_at)).where(callbacks.c.state == "pending")
            ).scalar()

    # Files (ISO 20022 drop folders) ---------------------------------------------------------------------

    @property
    def inbox(self) -> Path:
        assert self.file_dir is not None
        return self.file_dir / "pain001"

    @property
    def outbox(self) -> Path:
        assert self.file_dir is not None
        return self.file_dir / "reports"

    def exchange_files(self) -> int:
        """Take in pain.001 files, answer each with a pain.002, and report settlements and returns; files handled."""
        for folder in (self.inbox, self.inbox / "done", self.inbox / "rejected", self.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        handled = 0
        for path in sorted(self.inbox.glob("*.xml")):
            handled += 1
            try:
                msg_id, items = iso20022.parse_pain001(path.read_bytes())
            except (iso20022.Iso20022Error, ValidationError) as exc:
                (self.inbox / "rejected" / f"{path.name}.error.txt").write_text(str(exc), encoding="utf-8")
                path.replace(self.inbox / "rejected" / path.name)
                continue
            outcomes = self.accept(items, channel="file", file_msg_id=msg_id)
            lines = [
                iso20022.TxStatus(o.VoucherNo, "failed", reason=o.Reason)
                if o.Result is None
                else iso20022.TxStatus(o.VoucherNo, "accepted", treasury_ref=o.Result.TreasuryRef, at=o.Result.AcceptedAt)
                for o in outcomes
            ]
            self._write_report(
                iso20022.build_pain002(
                    lines,
                    msg_id=_msg_id("ACK"),
                    created_at=datetime.now(UTC),
                    original_msg_id=msg_id,
                    original_pmt_inf_id=f"{msg_id[:30]}-1",
                ),
                "pain002",
            )
            path.replace(self.inbox / "done" / path.name)
            self.settle_wake.set()
        return handled + self._report_changes()

    def _report_changes(self) -> int:
        """Report file-channel instructions whose status moved since their last report."""
        cols = instructions.c
        stmt = select(instructions).where(
            cols.channel == "file",
            cols.status != "accepted",
            or_(cols.reported_status.is_(None), cols.reported_status != cols.status),
        )
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
            if not rows:
                return 0
            settled: dict[str, list[iso20022.TxStatus]] = {}
            returns: dict[str, list[iso20022.TxStatus]] = {}
            for row in rows:
                if row["reported_status"] in (None, "accepted"):
                    outcome = "failed" if row["status"] == "failed" else "paid"
                    settled.setdefault(row["file_msg_id"], []).append(
                        iso20022.TxStatus(
                            row["voucher_no"], outcome, amount_fen=row["paid_amt"], reason=row["reason"],
                            treasury_ref=row["treasury_ref"], at=_utc(row["settled_at"]),
                        )
                    )
                if row["status"] == "returned":
                    returns.setdefault(row["pay_acct_no"], []).append(
                        iso20022.TxStatus(
                            row["voucher_no"], "returned", amount_fen=row["returned_amt"],
                            reason=row["return_reason"] or "", treasury_ref=row["treasury_ref"],
                            at=_utc(row["returned_at"]), return_type=row["return_type"],
                        )
                    )
            now = datetime.now(UTC)
            for msg_id, lines in settled.items():
                document = iso20022.build_pain002(
                    lines, msg_id=_msg_id("STS"), created_at=now, original_msg_id=msg_id,
                    original_pmt_inf_id=f"{msg_id[:30]}-1",
                )
                self._write_report(document, "pain002")
            for account, lines in returns.items():
                document = iso20022.build_camt054(lines, msg_id=_msg_id("NTF"), created_at=now, account_no=account)
                self._write_report(document, "camt054")
            conn.execute(
                update(instructions).where(cols.voucher_no == bindparam("v")).values(reported_status=bindparam("s")),
                [{"v": r["voucher_no"], "s": r["status"]} for r in rows],
            )
        return len(rows)

    def _write_report(self, document: bytes, kind: str) -> Path:
        """Write atomically (temporary name, then rename) so a reader never sees half a file."""
        name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{kind}-{secrets.token_hex(4)}.xml"
        tmp = self.outbox / f".{name}.part"
        tmp.write_bytes(document)
        return tmp.replace(self.outbox / name)

    # Background loops ---------------------------------------------------------------------------------

    async def run_settler(self) -> None:
        """Settle due instructions in batches; a submission wakes it so short delays are kept exactly."""
        while True:
            self.settle_wake.clear()
            self._settler_idle = True
            try:
                settled, next_due = await to_thread.run_sync(self.settle_due)
            except Exception:
                log.exception("settlement batch failed; retrying")
                settled, next_due = 0, time.time() + 1.0
            if settled:
                self.deliver_wake.set()
            self._settler_idle = next_due is None
            await _sleep_until(self.settle_wake, next_due)

    async def run_file_exchanger(self, every_seconds: float = 0.2) -> None:
        """Poll the drop folders: the file channel's equivalent of requests and callbacks."""
        while True:
            try:
                await to_thread.run_sync(self.exchange_files)
            except Exception:
                log.exception("file exchange failed; retrying")
            await asyncio.sleep(every_seconds)

    async def run_deliverer(self) -> None:
        """Deliver due callbacks round after round; a settlement wakes it."""
        pool = ThreadPoolExecutor(self._callback_concurrency, thread_name_prefix="tsim-callback")
        limits = httpx.Limits(max_connections=self._callback_concurrency)
        # A sync client in worker threads: httpx's async pool costs several times more CPU per request.
        with httpx.Client(timeout=self._callback_timeout, limits=limits) as client:
            try:
                while True:
                    self.deliver_wake.clear()
                    try:
                        delivered, next_due = await to_thread.run_sync(self.deliver_round, client, pool)
                    except Exception:
                        log.exception("callback delivery round failed; retrying")
                        delivered, next_due = 0, time.time() + 1.0
                    if delivered < self._callback_batch:
                        await _sleep_until(self.deliver_wake, next_due)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def deliver_round(self, client: httpx.Client, pool: ThreadPoolExecutor) -> tuple[int, float | None]:
        """POST one batch of due results, in parallel, and persist the outcomes; (how many, next due)."""
        due = self.due_callbacks()
        outcomes = list(pool.map(lambda callback: (callback, self._deliver(client, callback)), due))
        failed = sum(1 for _, error in outcomes if error)
        if failed:
            log.warning("%d of %d callbacks failed; they will be retried", failed, len(outcomes))
        return len(due), self.record_deliveries(outcomes)

    def _deliver(self, client: httpx.Client, callback: _Callback) -> str | None:
        """POST one signed result; None on a 2xx, else why it failed."""
        headers = sign_headers(self._private_pem, self._key_id, callback.body)
        headers["Content-Type"] = "application/json"
        try:
            response = client.post(callback.notify_url, content=callback.body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"


def _msg_id(prefix: str) -> str:
    return f"{prefix}{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}{secrets.token_hex(6).upper()}"


def _safe_vouchers(vouchers: Callable[[bytes], list[str]], body: bytes) -> list[str]:
    """The vouchers a request names, or none when the body is unreadable (validation answers that later)."""
    try:
        return vouchers(body)
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def _one_voucher(body: bytes) -> list[str]:
    return [json.loads(body)["VoucherNo"]]


def _batch_vouchers(body: bytes) -> list[str]:
    return [i["VoucherNo"] for i in json.loads(body)["Instructions"]]


def _query_vouchers(body: bytes) -> list[str]:
    return list(json.loads(body)["VoucherNos"])


async def _sleep_until(wake: asyncio.Event, due: float | None, idle: float = 1.0) -> None:
    """Wait until `due` (at most `idle` seconds, as a safety net) or until woken."""
    timeout = idle if due is None else min(max(due - time.time(), 0.0), idle)
    if timeout <= 0:
        return
    with suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout)


def create_app(
    *,
    db_url: str,
    private_pem: str,
    key_id: str,
    zhida_public_pems: dict[str, str],
    settle_delay_seconds: float = 1.0,
    window_seconds: int = 300,
    callback_backoff_seconds: float = 0.5,
    callback_backoff_max_seconds: float = 300.0,
    file_dir: Path | None = None,
) -> FastAPI:
    """The stand-in's HTTP app; its database schema is created and its loops started in the lifespan.

    With `file_dir`, it also reads pain.001 files from file_dir/pain001 and writes pain.002 and camt.054
    files to file_dir/reports.
    """
    sim = TreasuryStandIn(
        db_url=db_url,
        private_pem=private_pem,
        key_id=key_id,
        zhida_public_pems=zhida_public_pems,
        settle_delay_seconds=settle_delay_seconds,
        window_seconds=window_seconds,
        callback_backoff_seconds=callback_backoff_seconds,
        callback_backoff_max_seconds=callback_backoff_max_seconds,
        file_dir=file_dir,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(sim.create_schema)
        tasks = [asyncio.create_task(sim.run_settler()), asyncio.create_task(sim.run_deliverer())]
        if file_dir is not None:
            tasks.append(asyncio.create_task(sim.run_file_exchanger()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sim.engine.dispose()

    app = FastAPI(title="国库集中支付模拟 (treasury stand-in)", lifespan=lifespan, openapi_url=None)
    app.state.sim = sim

    @app.post("/v1/instructions")
    async def post_instruction(request: Request) -> Response:
        return await sim.handle(request, sim.submit_one, _one_voucher)

    @app.post("/v1/instruction-batches")
    async def post_batch(request: Request) -> Response:
        return await sim.handle(request, sim.submit_batch, _batch_vouchers)

    @app.get("/v1/instructions/{voucher_no}")
    async def get_instruction(voucher_no: str, request: Request) -> Response:
        return await sim.handle(request, lambda body: sim.query_one(voucher_no, body), lambda _b: [voucher_no])

    @app.post("/v1/instruction-queries")
    async def post_query(request: Request) -> Response:
        return await sim.handle(request, sim.query_many, _query_vouchers)

    @app.get("/v1/ledger")
    async def get_ledger(request: Request) -> Response:
        return await sim.handle(request, sim.ledger_summary)

    @app.get("/v1/statements/{day}")
    async def get_statement(day: str, request: Request) -> Response:
        return await sim.handle(request, lambda body: sim.statement(day, body))

    @app.put("/admin/faults")
    async def put_faults(request: Request) -> Response:
        return await sim.handle(request, sim.put_faults)

    @app.get("/admin/faults")
    async def get_faults(request: Request) -> Response:
        return await sim.handle(request, sim.get_faults)

    @app.get("/admin/fault-stats")
    async def get_fault_stats(request: Request) -> Response:
        return await sim.handle(request, sim.fault_stats)

    @app.post("/admin/active-returns")
    async def post_active_return(request: Request) -> Response:
        return await sim.handle(request, sim.post_active_return)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class StandInAdmin:
    """Zhida-signed calls to the stand-in's admin endpoints: what tests and operators use to inject faults."""

    def __init__(self, base_url: str, private_pem: str, key_id: str, timeout: float = 10.0) -> None:
        self._pem, self._kid = private_pem, key_id
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> StandInAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: bytes = b"") -> httpx.Response:
        headers = sign_headers(self._pem, self._kid, body) | {"Content-Type": "application/json"}
        response = self._client.request(method, path, content=body, headers=headers)
        response.raise_for_status()
        return response

    def set_faults(self, *rules: FaultRule, seed: int = 0) -> FaultSettings:
        """Replace the fault rules (none: clear them)."""
        body = FaultSettings(Rules=list(rules), Seed=seed).model_dump_json().encode()
        return FaultSettings.model_validate_json(self._call("PUT", "/admin/faults", body).content)

    def active_return(self, voucher_no: str, reason: str = REASON_ACTIVE_RETURN) -> InstructionResult:
        body = ActiveReturn(VoucherNo=voucher_no, Reason=reason).model_dump_json().encode()
        return InstructionResult.model_validate_json(self._call("POST", "/admin/active-returns", body).content)

    def injected(self) -> dict[str, int]:
        """How many times each fault kind fired since the rules were last set."""
        return self._call("GET", "/admin/fault-stats").json()["Injected"]

    def ledger(self) -> LedgerSummary:
        return LedgerSummary.model_validate_json(self._call("GET", "/v1/ledger").content)

    def statement(self, day: date) -> DailyStatement:
        return DailyStatement.model_validate_json(self._call("GET", f"/v1/statements/{day.isoformat()}").content)


def ledger_lines(engine: Any, voucher_no: str | None = None) -> list[dict[str, Any]]:
    """The stand-in's ledger rows (for tests and audits): voucher, entry, amount."""
    stmt = select(ledger.c.voucher_no, ledger.c.entry, ledger.c.amount).order_by(ledger.c.id)
    if voucher_no is not None:
        stmt = stmt.where(ledger.c.voucher_no == voucher_no)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def serve(settings: Settings) -> None:
    """Run the stand-in in the foreground, configured like every Zhida process."""
    app = create_app(
        db_url=settings.treasury_db_url,
        private_pem=settings.treasury_private_pem(),
        key_id=settings.treasury_signing_key_id,
        zhida_public_pems={settings.signing_key_id: settings.zhida_public_pem()},
        settle_delay_seconds=settings.treasury_sim_settle_delay_seconds,
        window_seconds=settings.signature_window_seconds,
        file_dir=settings.treasury_file_dir
        or (settings.data_dir / "treasury-files" if settings.treasury_channel == "file" else None),
    )
    uvicorn.run(
        app,
        host=settings.treasury_sim_host,
        port=settings.treasury_sim_port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    from settings import get_settings

    serve(get_settings())
