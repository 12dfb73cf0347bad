"""The stand-in's HTTP face: signed requests checked, pages of records served after a watermark, faults injected."""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateways.datashare import (
    HEADER_APP_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    RECORDS_PATH,
    canonical_path,
    signature,
)
from schemas.datashare import MAX_PAGE_SIZE, UPDATED_AT

WINDOW_SECONDS = 300


class Drift(BaseModel):
    """Schema drift in one dataset's records from record number `from_record` (1-based) on: fields renamed
    (old → new key) or retyped (key → "string" | "integer" | "number")."""

    dataset: str
    rename: dict[str, str] = Field(default_factory=dict)
    retype: dict[str, str] = Field(default_factory=dict)
    from_record: int = 1


class Faults(BaseModel):
    """What goes wrong, until replaced: `timeout_pages` answer after `delay_seconds` (the client has given up);
    `short_pages` lose `short_by` records but still say their full count; `drift` changes records' fields."""

    timeout_pages: list[int] = Field(default_factory=list)
    delay_seconds: float = 2.0
    short_pages: list[int] = Field(default_factory=list)
    short_by: int = 1
    drift: list[Drift] = Field(default_factory=list)
    times: int = 0  # how many page requests the faults apply to (0: every one until cleared)


@dataclass
class DataShareStandIn:
    """The platform's datasets in memory: dataset → uscc → record (with its `updated_at`)."""

    apps: dict[str, str]  # app key → secret
    datasets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    _clock: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _nonces: dict[str, float] = field(default_factory=dict)

    def _stamp(self) -> str:
        """A strictly later change time each call (ISO 8601, UTC, microseconds): sortable as text."""
        now = max(time.time(), self._clock + 1e-6)
        self._clock = now
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"

    def put(self, dataset: str, records: list[dict[str, Any]]) -> int:
        """Add or change records (by uscc); each gets a new `updated_at`."""
        with self._lock:
            table = self.datasets.setdefault(dataset, {})
            for r in records:
                table[r["uscc"]] = {**table.get(r["uscc"], {}), **r, UPDATED_AT: self._stamp()}
            return len(records)

    def page(self, dataset: str, since: str, page: int, page_size: int, faults: Faults | None = None) -> dict[str, Any]:
        with self._lock:
            changed = sorted(
                (r for r in self.datasets.get(dataset, {}).values() if r[UPDATED_AT] > since),
                key=lambda r: (r[UPDATED_AT], r["uscc"]),
            )
        chunk = [dict(r) for r in changed[(page - 1) * page_size : page * page_size]]
        count = len(chunk)
        faults = faults or Faults()
        if page in faults.short_pages:
            chunk = chunk[: max(0, count - faults.short_by)]
        for d in faults.drift:
            if d.dataset == dataset:
                first = (page - 1) * page_size
                for i, r in enumerate(chunk):
                    if first + i + 1 >= d.from_record:
                        _drift(r, d)
        return {
            "dataset": dataset,
            "since": since,
            "page": page,
            "page_size": page_size,
            "total": len(changed),
            "count": count,
            "records": chunk,
            "watermark": changed[-1][UPDATED_AT] if changed else "",
        }

    def verify(self, request: Request, body: bytes) -> str | None:
        """None when the request is signed by a known app within the window and its nonce is new; else why not."""
        h = request.headers
        key, stamp, nonce, sig = (
            h.get(n, "") for n in (HEADER_APP_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
        )
        secret = self.apps.get(key)
        if secret is None:
            return f"应用标识 {HEADER_APP_KEY} 未登记"
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > WINDOW_SECONDS:
            return f"时间戳 {HEADER_TIMESTAMP} 缺失或超出 {WINDOW_SECONDS} 秒窗口"
        if not 16 <= len(nonce) <= 64:
            return f"随机串 {HEADER_NONCE} 应为 16–64 个字符"
        path = canonical_path(request.url.path, dict(request.query_params))
        if not hmac.compare_digest(sig, signature(secret, request.method, path, stamp, nonce, body)):
            return f"签名 {HEADER_SIGNATURE} 不符"
        with self._lock:
            cutoff = time.time() - WINDOW_SECONDS
            for old in [n for n, at in self._nonces.items() if at < cutoff]:
                del self._nonces[old]
            if nonce in self._nonces:
                return f"随机串 {HEADER_NONCE} 已用过（重放）"
            self._nonces[nonce] = time.time()
        return None

    def take_fault_turn(self) -> Faults:
        """The faults for this request (a counted fault set clears itself after its last turn)."""
        with self._lock:
            faults = self.faults
            if faults.times:
                faults.times -= 1
                if faults.times == 0:
                    self.faults = Faults()
            return faults


def _drift(record: dict[str, Any], d: Drift) -> None:
    for old, new in d.rename.items():
        if old in record:
            record[new] = record.pop(old)
    for key, kind in d.retype.items():
        if key in record:
            value = record[key]
            record[key] = str(value) if kind == "string" else float(value) if kind == "number" else int(float(value))


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def create_app(state: DataShareStandIn) -> FastAPI:
    app = FastAPI(title="政务数据共享交换平台（模拟）", docs_url=None, redoc_url=None)
    app.state.standin = state

    @app.get(RECORDS_PATH)
    async def records(dataset: str, request: Request, since: str = "", page: int = 1, page_size: int = 1000):
        why = state.verify(request, b"")
        if why:
            return _refuse(401, why)
        if dataset not in state.datasets:
            return _refuse(404, f"数据集 {dataset} 不存在或未授权")
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return _refuse(400, f"page 应不小于 1，page_size 应为 1–{MAX_PAGE_SIZE}")
        state.requests += 1
        faults = state.take_fault_turn()
        if page in faults.timeout_pages:
            await asyncio.sleep(faults.delay_seconds)
        return JSONResponse(state.page(dataset, since, page, page_size, faults))

    @app.put("/admin/faults")
    async def set_faults(request: Request):
        body = await request.body()
        why = state.verify(request, body)
        if why:
            return _refuse(401, why)
        state.faults = Faults.model_validate_json(body or b"{}")
        return {"faults": state.faults.model_dump()}

    @app.post("/admin/records/{dataset}")
    async def put_records(dataset: str, request: Request):
        body = await request.body()
        why = state.verify(request, body)
        if why:
            return _refuse(401, why)
        items = json.loads(body)
        return {"dataset": dataset, "changed": state.put(dataset, items)}

    return app
