"""Every log line of a request carries the ids in its URL path (case, alert, fund item, campaign, ...), and each
request ends with one access line: method, route template, status and duration.

`bind_path_ids`, a dependency of every route (api/app.py), binds the ids as structlog contextvars once the route is
chosen (logs.py merges them into every line): the routers, services and repositories log without passing them
along, in the request's task and the threads it hands work to. `RequestLog`, a pure ASGI middleware (no task of its
own, so the bindings are seen in it), writes the access line and drops the bindings. The access line names the route
template, never the path: enterprise URLs carry the USCC, which is kept out of logs as out of traces (tracing.py); a
request refused before routing (the guard, an unknown path) is logged by its path masked (logs.redact), and query
strings are never logged.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import structlog
from fastapi import Request

from logs import get_logger, redact

log = get_logger("zhida.http")

# Path parameters bound to every log line of a request, under the names the rest of the logs use. The USCC
# (`uscc`) is left out on purpose: it identifies an enterprise and stays out of logs.
PATH_IDS = {
    "case_id": "case_id",
    "alert_id": "alert_id",
    "code": "fund_item_code",
    "fund_item_id": "fund_item_id",
    "campaign_id": "campaign_id",
    "run_id": "run_id",
    "import_id": "import_id",
    "material_id": "material_id",
    "objection_id": "objection_id",
}


def path_ids(params: dict[str, Any]) -> dict[str, Any]:
    """The ids of PATH_IDS among `params`, numbers as integers (as services log them)."""
    return {
        PATH_IDS[name]: int(value) if isinstance(value, str) and value.isdigit() and len(value) < 19 else value
        for name, value in params.items()
        if name in PATH_IDS
    }


async def bind_path_ids(request: Request) -> None:
    """Bind the path's ids for the rest of the request (async: it runs in the request's own task, so the endpoint,
    its thread and the middleware's access line all see them)."""
    ids = path_ids(request.path_params)
    if ids:
        structlog.contextvars.bind_contextvars(**ids)


class RequestLog:
    """Pure ASGI middleware: the access line of every HTTP request, then the path's ids unbound."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception that escapes every handler answers 500
        started = perf_counter()

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            log.info(
                "http_request",
                method=scope["method"],
                route=getattr(route, "path", None) or redact(scope["path"]),
                status=status,
                duration_ms=round((perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars(*PATH_IDS.values())
