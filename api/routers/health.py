"""Liveness and readiness (database and Temporal reachable)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from db.session import reading
from schemas.ops import HealthOut, ReadyOut
from services import health as health_service

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut,
            responses={503: {"model": ReadyOut, "description": "数据库或 Temporal 未就绪"}})  # fmt: skip
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(_ping_db, request.app.state.settings.db_url)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    client = request.app.state.temporal
    if client is None:
        checks["temporal"] = "error: not connected"
    else:
        try:
            await client.service_client.check_health(timeout=timedelta(seconds=2))
            checks["temporal"] = "ok"
        except Exception as exc:
            checks["temporal"] = f"error: {exc.__class__.__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


def _ping_db(url: str) -> None:
    with reading(url) as session:
        health_service.ping_database(session=session)
