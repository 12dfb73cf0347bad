"""Callbacks to each instruction's NotifyUrl: queued with the settlement, delivered until a 2xx, backed off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx
from anyio import to_thread
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from logs import get_logger
from standins.treasury.faults import Faults
from standins.treasury.tables import callbacks, result_of

log = get_logger("zhida.treasury_sim")
# A stale (out-of-order) callback is sent this long after the final one, so it really arrives late.
STALE_CALLBACK_LAG_SECONDS = 0.3


@dataclass
class Callback:
    id: int
    voucher_no: str
    notify_url: str
    attempts: int
    body: bytes


def queue_callbacks(conn: Connection, faults: Faults, rows: list[dict[str, Any]], previous: str, now: float) -> None:
    """Queue each row's final callback, shaped by the faults: duplicates, and a stale earlier state after it."""
    queued: list[dict[str, Any]] = []
    for row in rows:
        if not row["notify_url"]:
            continue
        body = result_of(row).model_dump_json()
        duplicate = faults.for_voucher("duplicate_callback", row["voucher_no"])
        copies = duplicate.Copies if duplicate else 1
        queued += [
            {"voucher_no": row["voucher_no"], "notify_url": row["notify_url"], "body": body, "next_at": now}
        ] * copies
        if faults.for_voucher("out_of_order", row["voucher_no"]):
            stale = result_of(row, as_status=previous).model_dump_json()
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


async def sleep_until(wake: asyncio.Event, due: float | None, idle: float = 1.0) -> None:
    """Wait until `due` (at most `idle` seconds, as a safety net) or until woken."""
    timeout = idle if due is None else min(max(due - time.time(), 0.0), idle)
    if timeout <= 0:
        return
    with suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout)


class CallbackDeliverer:
    """Delivers due callbacks, signed with the treasury's key, in parallel rounds; persists every outcome."""

    def __init__(
        self,
        *,
        engine: Engine,
        sign: Callable[[bytes], dict[str, str]],
        backoff_seconds: float,
        backoff_max_seconds: float,
        batch: int = 200,
        concurrency: int = 32,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.engine = engine
        self._sign = sign
        self._backoff = backoff_seconds
        self._backoff_max = backoff_max_seconds
        self._batch = batch
        self._concurrency = concurrency
        self._timeout = timeout_seconds
        self.wake = asyncio.Event()

    def due(self) -> list[Callback]:
        """The next batch of callbacks whose time has come."""
        stmt = (
            select(callbacks)
            .where(callbacks.c.state == "pending", callbacks.c.next_at <= time.time())
            .order_by(callbacks.c.next_at, callbacks.c.id)
            .limit(self._batch)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [Callback(r["id"], r["voucher_no"], r["notify_url"], r["attempts"], r["body"].encode()) for r in rows]

    def record(self, outcomes: list[tuple[Callback, str | None]]) -> float | None:
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

    async def run(self) -> None:
        """Deliver due callbacks round after round; a settlement wakes it."""
        pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="tsim-callback")
        limits = httpx.Limits(max_connections=self._concurrency)
        # A sync client in worker threads: httpx's async pool costs several times more CPU per request.
        with httpx.Client(timeout=self._timeout, limits=limits) as client:
            try:
                while True:
                    self.wake.clear()
                    try:
                        delivered, next_due = await to_thread.run_sync(self.deliver_round, client, pool)
                    except Exception:
                        log.exception("callback_round_failed")
                        delivered, next_due = 0, time.time() + 1.0
                    if delivered < self._batch:
                        await sleep_until(self.wake, next_due)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def deliver_round(self, client: httpx.Client, pool: ThreadPoolExecutor) -> tuple[int, float | None]:
        """POST one batch of due results, in parallel, and persist the outcomes; (how many, next due)."""
        due = self.due()
        outcomes = list(pool.map(lambda callback: (callback, self._deliver(client, callback)), due))
        failed = sum(1 for _, error in outcomes if error)
        if failed:
            log.warning("callbacks_failed", failed=failed, attempted=len(outcomes))
        return len(due), self.record(outcomes)

    def _deliver(self, client: httpx.Client, callback: Callback) -> str | None:
        """POST one signed result; None on a 2xx, else why it failed."""
        headers = self._sign(callback.body)
        headers["Content-Type"] = "application/json"
        try:
            response = client.post(callback.notify_url, content=callback.body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
