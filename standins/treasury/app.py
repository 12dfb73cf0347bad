"""The stand-in's HTTP face: signed requests in, signed answers out, faults injected; and its background loops."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from db.session import make_engine
from gateways.signing import NonceCache, SignatureError, sign_headers, verify_headers
from logs import get_logger
from schemas.treasury import (
    InstructionBatch,
    InstructionBatchResult,
    InstructionQuery,
    InstructionQueryResult,
    PaymentInstruction,
)
from standins.treasury.callbacks import CallbackDeliverer, sleep_until
from standins.treasury.contracts import ActiveReturn, FaultRule, FaultSettings, Refusal, parse
from standins.treasury.faults import Faults
from standins.treasury.files import FileExchange
from standins.treasury.ledger import Ledger
from standins.treasury.statement import daily_statement
from standins.treasury.tables import create_schema
from standins.treasury.vouchers import VoucherExchange, VoucherKeys

if TYPE_CHECKING:
    from settings import Settings

log = get_logger("zhida.treasury_sim")
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_TIMEOUT_DELAY_SECONDS = 10.0


class TreasuryStandIn:
    """The stand-in's parts wired together: sync methods run in worker threads, loops on the event loop."""

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
        voucher_keys: VoucherKeys | None = None,
    ) -> None:
        self.engine = make_engine(db_url)
        self._private_pem = private_pem
        self._key_id = key_id
        self._zhida_pems = dict(zhida_public_pems)
        self._window = window_seconds
        self._nonces = NonceCache()
        self.faults = Faults()
        self.ledger = Ledger(
            engine=self.engine, faults=self.faults, settle_delay_seconds=settle_delay_seconds, settle_batch=settle_batch
        )
        self.deliverer = CallbackDeliverer(
            engine=self.engine,
            sign=lambda body: sign_headers(private_pem, key_id, body),
            backoff_seconds=callback_backoff_seconds,
            backoff_max_seconds=callback_backoff_max_seconds,
            batch=callback_batch,
            concurrency=callback_concurrency,
            timeout_seconds=callback_timeout_seconds,
        )
        self.settle_wake = asyncio.Event()
        self.files = (
            FileExchange(ledger=self.ledger, file_dir=file_dir, accepted=self.settle_wake.set)
            if file_dir is not None
            else None
        )
        self.vouchers = (
            VoucherExchange(
                ledger=self.ledger,
                file_dir=file_dir,
                signer=voucher_keys.signer(),
                zhida_verifiers=voucher_keys.verifiers(),
                accepted=self.settle_wake.set,
            )
            if file_dir is not None and voucher_keys is not None
            else None
        )
        # False only while the settler sleeps towards a due time, which no newer instruction can precede:
        # then submissions need not wake it (saving a settlement query per submission).
        self._settler_idle = True

    def create_schema(self) -> None:
        """Create the stand-in's tables (refusing a database from an older stand-in)."""
        create_schema(self.engine)

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
            # A batch's body is parsed for its vouchers only when a request rule could hit them (a second JSON parse
            # of every batch otherwise).
            fault = None
            if vouchers is not None and self.faults.request_rules():
                fault = self.faults.request_fault(_safe_vouchers(vouchers, body))
            if fault is not None and fault.Kind == "error_5xx":
                return 503, {"detail": "国库支付系统繁忙（模拟故障）", "code": "injected_5xx"}, fault
            status, content = action(body)
            return status, content, fault
        except SignatureError as exc:
            return 401, {"detail": exc.reason, "code": exc.code}, None
        except Refusal as exc:
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
        item = self.ledger.accept([parse(PaymentInstruction, body, "支付指令")])[0]
        if item.Outcome == "conflict":
            raise Refusal(409, item.Reason)
        assert item.Result is not None
        return (202 if item.Outcome == "accepted" else 200), item.Result

    def submit_batch(self, body: bytes) -> tuple[int, BaseModel]:
        batch = parse(InstructionBatch, body, "批量支付指令")
        return 200, InstructionBatchResult(Results=self.ledger.accept(batch.Instructions))

    def query_one(self, voucher_no: str, _body: bytes) -> tuple[int, BaseModel]:
        found = self.ledger.results([voucher_no])
        if not found:
            raise Refusal(404, f"未找到凭证号为 {voucher_no} 的支付指令")
        return 200, found[0]

    def query_many(self, body: bytes) -> tuple[int, BaseModel]:
        query = parse(InstructionQuery, body, "查询")
        return 200, InstructionQueryResult(Results=self.ledger.results(query.VoucherNos))

    def ledger_summary(self, _body: bytes) -> tuple[int, BaseModel]:
        return 200, self.ledger.summary()

    def statement(self, day_text: str, _body: bytes) -> tuple[int, BaseModel]:
        try:
            day = date.fromisoformat(day_text)
        except ValueError as exc:
            raise Refusal(422, "对账日期格式应为YYYY-MM-DD", [{"field": "date", "message": str(exc)}]) from exc
        return 200, daily_statement(self.engine, self.faults, day)

    def put_faults(self, body: bytes) -> tuple[int, BaseModel]:
        self.faults.replace(parse(FaultSettings, body, "故障设置"))
        self.settle_wake.set()
        return 200, self.faults.settings

    def get_faults(self, _body: bytes) -> tuple[int, BaseModel]:
        return 200, self.faults.settings

    def fault_stats(self, _body: bytes) -> tuple[int, dict[str, Any]]:
        return 200, {"Injected": dict(self.faults.injected)}

    def post_active_return(self, body: bytes) -> tuple[int, BaseModel]:
        request = parse(ActiveReturn, body, "主动退回")
        result = self.ledger.active_return(request.VoucherNo, request.Reason)
        self.deliverer.wake.set()
        return 200, result

    # Background loops ---------------------------------------------------------------------------------

    async def run_settler(self) -> None:
        """Settle due instructions in batches; a submission wakes it so short delays are kept exactly."""
        while True:
            self.settle_wake.clear()
            self._settler_idle = True
            try:
                settled, next_due = await to_thread.run_sync(self.ledger.settle_due)
            except Exception:
                log.exception("settlement_batch_failed")
                settled, next_due = 0, time.time() + 1.0
            if settled:
                self.deliverer.wake.set()
            self._settler_idle = next_due is None
            await sleep_until(self.settle_wake, next_due)


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
    voucher_keys: VoucherKeys | None = None,
) -> FastAPI:
    """The stand-in's HTTP app; its database schema is created and its loops started in the lifespan.

    With `file_dir`, it also reads pain.001 files from file_dir/pain001 and writes pain.002 and camt.054
    files to file_dir/reports; with `voucher_keys` as well, it reads SM2-signed 财政直接支付凭证 from file_dir/vouchers
    and writes signed receipts (回单) to file_dir/receipts.
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
        voucher_keys=voucher_keys,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(sim.create_schema)
        tasks = [asyncio.create_task(sim.run_settler()), asyncio.create_task(sim.deliverer.run())]
        if sim.files is not None:
            tasks.append(asyncio.create_task(sim.files.run()))
        if sim.vouchers is not None:
            tasks.append(asyncio.create_task(sim.vouchers.run()))
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



def serve(settings: Settings) -> None:
    """Run the stand-in in the foreground, configured like every Zhida process."""
    import uvicorn

    app = create_app(
        db_url=settings.treasury_db_url,
        private_pem=settings.treasury_private_pem(),
        key_id=settings.treasury_signing_key_id,
        zhida_public_pems={settings.signing_key_id: settings.zhida_public_pem()},
        settle_delay_seconds=settings.treasury_sim_settle_delay_seconds,
        window_seconds=settings.signature_window_seconds,
        file_dir=settings.treasury_file_dir
        or (settings.data_dir / "treasury-files" if settings.treasury_channel in ("file", "voucher") else None),
        voucher_keys=VoucherKeys.from_settings(settings) if settings.treasury_channel == "voucher" else None,
    )
    uvicorn.run(
        app,
        host=settings.treasury_sim_host,
        port=settings.treasury_sim_port,
        log_level=settings.log_level.lower(),
        log_config=None,
    )
