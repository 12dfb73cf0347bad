"""Units of work for use cases that also talk to Temporal: each database step runs in its own short transaction on a
worker thread, so no transaction stays open across a workflow call and the event loop never blocks on SQL."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread

from db.session import reading, transaction

T = TypeVar("T")


@dataclass(frozen=True)
class UnitOfWork:
    db_url: str

    async def write(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """fn(session=…, **kwargs) in one transaction that commits when fn returns."""
        return await anyio.to_thread.run_sync(functools.partial(self._write, fn, kwargs))

    async def read(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """fn(session=…, **kwargs) in a read-only unit of work."""
        return await anyio.to_thread.run_sync(functools.partial(self._read, fn, kwargs))

    def _write(self, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
        with transaction(self.db_url) as session:
            return fn(session=session, **kwargs)

    def _read(self, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
        with reading(self.db_url) as session:
            return fn(session=session, **kwargs)
