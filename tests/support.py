"""Test helpers: waiting for a condition (`eventually`), real HTTP servers on free loopback ports in threads."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

T = TypeVar("T")

# Generous on purpose: a test that fails only because the 2-core machine is busy is a broken test. A condition
# that holds returns at once, so a long limit costs nothing when things work.
TIMEOUT = 90.0
EVERY = 0.1


def _truthy(value: object) -> bool:
    return bool(value)


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    shown = repr(last)
    if len(shown) > 2000:
        shown = shown[:2000] + "…"
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value seen: {shown}")


async def eventually(
    probe: Callable[[], T] | Callable[[], Awaitable[T]],
    until: Callable[[T], bool] = _truthy,
    *,
    what: str,
    timeout: float = TIMEOUT,
    every: float = EVERY,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Probe until `until(value)` holds and return that value; fail naming `what` and the last value seen.

    A coroutine function is awaited; a plain function runs in a thread, since the worker under test may share this
    event loop. Exceptions listed in `ignore` count as "not yet" (e.g. a workflow not started).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = "nothing (never probed)"
    while True:
        try:
            value: Any = await probe() if inspect.iscoroutinefunction(probe) else await asyncio.to_thread(probe)
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            last = exc
        else:
            if until(value):
                return value
            last = value
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(every)


def eventually_sync(
    probe: Callable[[], T],
    until: Callable[[T], bool] = _truthy,
    *,
    what: str,
    timeout: float = TIMEOUT,
    every: float = EVERY,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """`eventually` for plain (non-async) tests: the probe runs in this thread."""
    deadline = time.monotonic() + timeout
    last: object = "nothing (never probed)"
    while True:
        try:
            value = probe()
        except ignore as exc:
            last = exc
        else:
            if until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """Runs an ASGI app with uvicorn on 127.0.0.1 until stop()."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} exited while starting")
            return self.server.started

        eventually_sync(started, what=f"uvicorn to start on port {self.port}", every=0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def crash_first_audit_write(monkeypatch: Any, subject: str) -> list[str]:
    """Make the first audit record about `subject` fail as a crash would, inside the transaction that writes it: the
    step must then roll back its whole effect and, retried, write both once. Returns the subjects it failed."""
    from db.repositories import audit

    real, failed = audit.append, []

    def append(*, session: Any, kind: str, actor: str, subject: str, data: dict | None = None, chain: str = audit.MAIN):
        if subject == wanted and not failed:
            failed.append(subject)
            raise RuntimeError(f"simulated crash before the audit record of {subject} was written")
        return real(session=session, kind=kind, actor=actor, subject=subject, data=data, chain=chain)

    wanted = subject
    monkeypatch.setattr(audit, "append", append)
    return failed


def audit_records(db_url: str, subject: str) -> list[tuple[str, str, dict]]:
    """(kind, actor, data) of every audit record about `subject`, oldest first."""
    from sqlalchemy import select

    from db.models import AuditRecord
    from db.session import transaction

    with transaction(db_url) as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.subject == subject).order_by(AuditRecord.seq))
        return [(r.kind, r.actor, r.data) for r in rows]


def drop_audit_guards(session: Any) -> None:
    """What an attacker with the database owner's rights does first: drop the triggers that refuse edits and deletes
    of case events and audit records (inside the caller's transaction; DDL is transactional on both engines)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        for trigger, table in (("audit_record_guard", "audit_record"), ("case_event_guard", "case_event"),
                               ("audit_record_no_truncate", "audit_record"), ("case_event_no_truncate", "case_event")):  # fmt: skip
            session.execute(text(f"DROP TRIGGER IF EXISTS {trigger} ON {table}"))
    else:
        for trigger in ("audit_record_append_only", "audit_record_retention", "case_event_append_only",
                        "case_event_retention"):  # fmt: skip
            session.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
