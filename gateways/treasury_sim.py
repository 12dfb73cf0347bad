"""The treasury stand-in (国库集中支付模拟): a separate process that plays the treasury and its bank.

It accepts signed instructions, settles them after a delay, keeps a ledger of what it paid, and calls
back each instruction's NotifyUrl (when it has one) until a 2xx. All of it lives in its own database,
so a restart resumes pending settlements and undelivered callbacks. Protocol: docs/treasury-protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

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
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from db.session import make_engine
from gateways.signing import NonceCache, SignatureError, sign_headers, verify_headers
from schemas.treasury import (
    BatchItemResult,
    InstructionBatch,
    InstructionBatchResult,
    InstructionQuery,
    InstructionQueryResult,
    InstructionResult,
    InstructionStatus,
    LedgerAccount,
    LedgerSummary,
    PaymentInstruction,
)

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger("zhida.treasury_sim")
M = TypeVar("M", bound=BaseModel)

# Deterministic fault: a payee name containing this mark fails as a name/number mismatch.
FAULT_PAYEE_NAME_MARK = "错误"
REASON_NAME_MISMATCH = "收款人账户名称与账号不符"
MAX_BODY_BYTES = 4 * 1024 * 1024

metadata = MetaData()

instructions = Table(
    "tsim_instruction",
    metadata,
    Column("voucher_no", String(40), primary_key=True),
    # The instruction as first received (canonical JSON): a resend must match it exactly.
    Column("payload", Text, nullable=False),
    Column("pay_acct_no", String(40), nullable=False),
    Column("notify_url", Text),  # None: the sender polls instead of being called back
    Column("status", String(16), nullable=False),  # accepted | paid | failed | returned
    Column("paid_amt", BigInteger, nullable=False, default=0),
    Column("reason", Text, nullable=False, default=""),
    Column("treasury_ref", String(64), nullable=False, unique=True),
    # Epoch seconds: exact, portable across SQLite and PostgreSQL, cheap to compare.
    Column("accepted_at", Float, nullable=False),
    Column("settled_at", Float),
    Column("callback_state", String(16), nullable=False, default="none"),  # none | pending | delivered
    Column("callback_attempts", Integer, nullable=False, default=0),
    Column("callback_next_at", Float),
    Column("callback_error", Text),
    Index("ix_tsim_instruction_due", "status", "accepted_at"),
    Index("ix_tsim_instruction_callback", "callback_state", "callback_next_at"),
)

ledger = Table(
    "tsim_ledger_entry",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("voucher_no", String(40), nullable=False),
    Column("entry", String(16), nullable=False),  # paid (later: returned, with a negative amount)
    Column("pay_acct_no", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("posted_at", Float, nullable=False),
    UniqueConstraint("voucher_no", "entry", name="uq_tsim_ledger_voucher_entry"),
)


def settle_outcome(instruction: PaymentInstruction) -> tuple[InstructionStatus, int, str]:
    """What the bank does with an instruction: (status, paid fen, reason); deterministic for demos."""
    if FAULT_PAYEE_NAME_MARK in instruction.PayeeAcctName:
        return "failed", 0, REASON_NAME_MISMATCH
    return "paid", instruction.PayAmt, ""


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _result(row: Mapping[str, Any]) -> InstructionResult:
    return InstructionResult(
        VoucherNo=row["voucher_no"],
        Status=row["status"],
        PaidAmt=row["paid_amt"],
        Reason=row["reason"],
        TreasuryRef=row["treasury_ref"],
        AcceptedAt=_utc(row["accepted_at"]),
        SettledAt=_utc(row["settled_at"]),
    )


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
    voucher_no: str
    notify_url: str
    attempts: int
    result: InstructionResult


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
        self.settle_wake = asyncio.Event()
        # False only while the settler sleeps towards a due time, which no newer instruction can precede:
        # then submissions need not wake it (saving a settlement query per submission).
        self._settler_idle = True
        self.deliver_wake = asyncio.Event()

    # Requests -----------------------------------------------------------------------------------------

    async def handle(self, request: Request, action: Callable[[bytes], tuple[int, BaseModel]]) -> Response:
        """Read, authenticate and run `action` off the event loop, then sign whatever is answered."""
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return self.respond(413, {"detail": f"请求体超过{MAX_BODY_BYTES}字节"})
        status, content = await to_thread.run_sync(self._guarded, action, request.headers, body)
        accepted = status == 202 or (
            isinstance(content, InstructionBatchResult)
            and any(r.Outcome == "accepted" for r in content.Results)
        )
        if accepted and self._settler_idle:
            self.settle_wake.set()
        return self.respond(status, content)

    def _guarded(
        self, action: Callable[[bytes], tuple[int, BaseModel]], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, BaseModel | dict[str, Any]]:
        try:
            verify_headers(self._zhida_pems, headers, body, window_seconds=self._window, nonces=self._nonces)
            return action(body)
        except SignatureError as exc:
            return 401, {"detail": exc.reason, "code": exc.code}
        except _Refusal as exc:
            return exc.status, exc.body

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
            select(ledger.c.pay_acct_no, func.sum(ledger.c.amount), func.count())
            .group_by(ledger.c.pay_acct_no)
            .order_by(ledger.c.pay_acct_no)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        accounts = [LedgerAccount(PayAcctNo=a, PaidAmt=int(s), PaidCount=n) for a, s, n in rows]
        return 200, LedgerSummary(Accounts=accounts)

    # Storage ------------------------------------------------------------------------------------------

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def accept(self, items: list[PaymentInstruction]) -> list[BatchItemResult]:
        """Store new instructions and classify the rest as resends or conflicts, in one transaction."""
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    return self._accept(conn, items)
            except IntegrityError:
                # A concurrent submission of the same VoucherNo won the insert (PostgreSQL); reclassify.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _accept(self, conn: Connection, items: list[PaymentInstruction]) -> list[BatchItemResult]:
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
                "notify_url": instruction.NotifyUrl,
                "status": "accepted",
                "paid_amt": 0,
                "reason": "",
                "treasury_ref": f"GK{today}{secrets.token_hex(6).upper()}",
                "accepted_at": now,
                "settled_at": None,
                "callback_state": "none",
                "callback_attempts": 0,
                "callback_next_at": None,
                "callback_error": None,
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

    def settle_due(self) -> tuple[int, float | None]:
        """Settle one batch of instructions whose delay has passed; (how many, when the next is due)."""
        now = time.time()
        due = (
            select(instructions.c.voucher_no, instructions.c.payload)
            .where(instructions.c.status == "accepted", instructions.c.accepted_at <= now - self._delay)
            .order_by(instructions.c.accepted_at)
            .limit(self._settle_batch)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(due).all()
            changes: list[dict[str, Any]] = []
            postings: list[dict[str, Any]] = []
            for voucher_no, payload in rows:
                instruction = PaymentInstruction.model_validate_json(payload)
                status, paid, reason = settle_outcome(instruction)
                changes.append({"v": voucher_no, "s": status, "p": paid, "r": reason})
                if paid:
                    postings.append(
                        {
                            "voucher_no": voucher_no,
                            "entry": "paid",
                            "pay_acct_no": instruction.PayAcctNo,
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
                        callback_state=case((instructions.c.notify_url.is_(None), "none"), else_="pending"),
                        callback_next_at=now,
                    )
                )
                conn.execute(stmt, changes)
            if postings:
                conn.execute(insert(ledger), postings)
            if len(rows) == self._settle_batch:
                return len(rows), now
            oldest = conn.execute(
                select(func.min(instructions.c.accepted_at)).where(instructions.c.status == "accepted")
            ).scalar()
        return len(rows), None if oldest is None else oldest + self._delay

    def due_callbacks(self) -> list[_Callback]:
        stmt = (
            select(instructions)
            .where(instructions.c.callback_state == "pending", instructions.c.callback_next_at <= time.time())
            .order_by(instructions.c.callback_next_at)
            .limit(self._callback_batch)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_Callback(r["voucher_no"], r["notify_url"], r["callback_attempts"], _result(r)) for r in rows]

    def record_deliveries(self, outcomes: list[tuple[_Callback, str | None]]) -> float | None:
        """Persist delivery outcomes (error None = 2xx), backing failures off; returns the next due time."""
        now = time.time()
        changes = []
        for callback, error in outcomes:
            attempts = callback.attempts + 1
            delay = min(self._backoff * 2 ** (attempts - 1), self._backoff_max)
            changes.append(
                {
                    "v": callback.voucher_no,
                    "st": "pending" if error else "delivered",
                    "n": attempts,
                    "at": now + delay if error else None,
                    "e": error,
                }
            )
        with self.engine.begin() as conn:
            if changes:
                stmt = (
                    update(instructions)
                    .where(instructions.c.voucher_no == bindparam("v"))
                    .values(
                        callback_state=bindparam("st"),
                        callback_attempts=bindparam("n"),
                        callback_next_at=bindparam("at"),
                        callback_error=bindparam("e"),
                    )
                )
                conn.execute(stmt, changes)
            return conn.execute(
                select(func.min(instructions.c.callback_next_at)).where(
                    instructions.c.callback_state == "pending"
                )
            ).scalar()

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
        body = callback.result.model_dump_json().encode()
        headers = sign_headers(self._private_pem, self._key_id, body)
        headers["Content-Type"] = "application/json"
        try:
            response = client.post(callback.notify_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"


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
) -> FastAPI:
    """The stand-in's HTTP app; its database schema is created and its loops started in the lifespan."""
    sim = TreasuryStandIn(
        db_url=db_url,
        private_pem=private_pem,
        key_id=key_id,
        zhida_public_pems=zhida_public_pems,
        settle_delay_seconds=settle_delay_seconds,
        window_seconds=window_seconds,
        callback_backoff_seconds=callback_backoff_seconds,
        callback_backoff_max_seconds=callback_backoff_max_seconds,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(sim.create_schema)
        tasks = [asyncio.create_task(sim.run_settler()), asyncio.create_task(sim.run_deliverer())]
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
        return await sim.handle(request, sim.submit_one)

    @app.post("/v1/instruction-batches")
    async def post_batch(request: Request) -> Response:
        return await sim.handle(request, sim.submit_batch)

    @app.get("/v1/instructions/{voucher_no}")
    async def get_instruction(voucher_no: str, request: Request) -> Response:
        return await sim.handle(request, lambda body: sim.query_one(voucher_no, body))

    @app.post("/v1/instruction-queries")
    async def post_query(request: Request) -> Response:
        return await sim.handle(request, sim.query_many)

    @app.get("/v1/ledger")
    async def get_ledger(request: Request) -> Response:
        return await sim.handle(request, sim.ledger_summary)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(settings: Settings) -> None:
    """Run the stand-in in the foreground, configured like every Zhida process."""
    app = create_app(
        db_url=settings.treasury_db_url,
        private_pem=settings.treasury_private_pem(),
        key_id=settings.treasury_signing_key_id,
        zhida_public_pems={settings.signing_key_id: settings.zhida_public_pem()},
        settle_delay_seconds=settings.treasury_sim_settle_delay_seconds,
        window_seconds=settings.signature_window_seconds,
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
