"""The FastAPI application: routers, error mapping, and a Temporal client connected in the background."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

import tracing
from api import errors, request_log, security
from api.routers import (
    applications,
    audit,
    calendar,
    dry_run,
    enterprises,
    fund_items,
    health,
    metrics,
    notices,
    sessions,
    sms,
    treasury,
    web,
)
from api.routers import archive as archive_router
from api.routers import archive_tags as archive_tags_router
from api.routers import campaigns as campaigns_router
from api.routers import cockpit as cockpit_router
from api.routers import codec as codec_router
from api.routers import materials as materials_router
from api.routers import portal as portal_router
from api.routers import reconciliation as reconciliation_router
from api.routers import reviews as reviews_router
from api.routers import workbench as workbench_router
from gateways.signing import NonceCache
from gateways.storage import store_for
from settings import Settings, get_settings
from workflows.client import connect

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def _connect() -> None:
            # Keep trying: the embedded Temporal server may start after the API; /readyz says when.
            while app.state.temporal is None:
                try:
                    app.state.temporal = await connect(settings, interceptors=tracing.interceptors())
                except Exception:
                    await asyncio.sleep(1.0)

        task = asyncio.create_task(_connect())
        yield
        task.cancel()

    app = FastAPI(
        title="惠企直达 Zhida API",
        version="0.1.0",
        description="惠企政策资金兑付：免申即享、即申即享、申报审批。金额单位均为分（fen）。",
        lifespan=lifespan,
        # Every log line of a request carries its path's ids (case, alert, fund item...): api/request_log.py.
        dependencies=[Depends(request_log.bind_path_ids)],
        docs_url=None,  # served below from the vendored Swagger UI: the default loads it from a CDN
        telemetry=tracing.fastapi_telemetry(),  # the HTTP span of a request is the root of its trace (tracing.py)
    )
    # Every page asset is vendored (api/static/vendor/README.md): government networks are often offline.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="惠企直达 Zhida API",
            swagger_js_url="/static/vendor/swagger-ui-bundle-5.35.0.js",
            swagger_css_url="/static/vendor/swagger-ui-5.35.0.css",
            swagger_favicon_url="/static/vendor/favicon.svg",
        )

    app.state.settings = settings
    app.state.temporal = None
    app.state.nonces = NonceCache()
    app.state.materials = store_for(settings.data_dir, settings.materials_dir)
    errors.install(app)
    # Oversized bodies, foreign origins and missing CSRF tokens are refused before any route runs.
    app.add_middleware(
        security.Guard,
        secret=settings.jwt_key,
        allowed_origins=(security.origin_of(settings.public_base_url), *settings.web_origins),
        secure=settings.cookie_secure,
        upload_limit=settings.materials_max_files * settings.materials_max_file_bytes + 256 * 1024,
        path_origins=(("/codec/", settings.ui_origin),),
    )
    # Outside the guard: its refusals get an access line too (api/request_log.py).
    app.add_middleware(request_log.RequestLog)
    for module in (
        health,
        metrics,
        audit,
        applications,
        enterprises,
        fund_items,
        dry_run,
        calendar,
        treasury,
        sms,
        notices,
        sessions,
        web,
    ):
        app.include_router(module.router)
    app.include_router(archive_router.router)
    app.include_router(archive_tags_router.router)
    app.include_router(reconciliation_router.router)
    app.include_router(campaigns_router.router)
    app.include_router(reviews_router.router)
    app.include_router(portal_router.router)
    app.include_router(materials_router.router)
    app.include_router(workbench_router.router)
    app.include_router(cockpit_router.router)
    app.include_router(codec_router.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/web/")

    return app
