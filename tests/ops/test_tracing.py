"""One trace from the HTTP request through the Temporal client and the workflow to its activities (in-memory
exporter), and log lines inside it carry the trace id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracing
from api.app import create_app
from cli.demo import DEMO_ITEM, demo_enterprise_uscc, ensure_demo
from cli.worker import build_worker
from db.migrate import upgrade
from settings import Settings
from tests.support import ServerThread, eventually
from workflows.client import connect


@pytest.fixture
async def traced(stack_settings: Settings) -> AsyncIterator[tuple[Settings, InMemorySpanExporter, str]]:
    """API (over real HTTP) and an in-process worker, both traced into one in-memory exporter; no treasury: the
    trace is followed up to the payment activity, whatever the payment's fate."""
    exporter = InMemorySpanExporter()
    assert tracing.configure(stack_settings, "zhida-test", exporter=exporter)
    settings = stack_settings
    upgrade(settings.db_url)
    ensure_demo(settings)
    api = ServerThread(create_app(settings), port=settings.api_port).start()
    client = await connect(settings, interceptors=tracing.interceptors())
    try:
        async with build_worker(client, settings):
            yield settings, exporter, api.url
    finally:
        api.stop()
        tracing.shutdown()


async def test_one_trace_from_the_request_to_the_activities(traced) -> None:
    import httpx

    from api.auth import mint

    settings, exporter, url = traced
    uscc = demo_enterprise_uscc()
    headers = {"Authorization": f"Bearer {mint(settings.jwt_key(), role='enterprise', subject=uscc)}"}
    await eventually(
        lambda: httpx.get(f"{url}/readyz").status_code, lambda s: s == 200, what="the API ready", timeout=60
    )
    response = await asyncio.to_thread(
        httpx.post, f"{url}/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc}, headers=headers,
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 201, response.text

    def spans_of_the_request():
        spans = exporter.get_finished_spans()
        roots = [s for s in spans if s.name == "POST /api/v1/applications"]
        if not roots:
            return None
        trace_id = roots[0].context.trace_id
        return roots[0], [s for s in spans if s.context.trace_id == trace_id]

    def reached_an_activity(found) -> bool:
        return found is not None and any(s.name.startswith("RunActivity:") for s in found[1])

    root, trace = await eventually(
        spans_of_the_request, reached_an_activity, what="the request's trace to reach an activity", timeout=60
    )
    names = [s.name for s in trace]
    print(root.attributes)
    assert root.parent is None and root.attributes.get("http.route") == "/api/v1/applications"
    assert "StartWorkflow:InstantCaseWorkflow" in names, names
    assert "RunWorkflow:InstantCaseWorkflow" in names, names
    assert any(n.startswith("RunActivity:") for n in names), names
    # Span names hold route templates and type names, never the enterprise's USCC.
    assert all(uscc not in n for n in names)

    # Enterprise URLs carry the USCC in the path, and a query may carry it, a phone or a sign-in token: the server
    # spans name the route template, and their URL attributes are masked.
    phone, token = "13812345678", headers["Authorization"].removeprefix("Bearer ")
    for path in (f"/api/v1/enterprises/{uscc}/cases?uscc={uscc}&phone={phone}&token={token}",
                 f"/api/v1/archive/enterprises/{uscc}/facts?as_of=2026-11-30", f"/nowhere/{uscc}"):  # fmt: skip
        await asyncio.to_thread(httpx.get, f"{url}{path}", headers=headers, timeout=30)

    def enterprise_spans():
        spans = exporter.get_finished_spans()
        found = [s for s in spans if s.attributes.get("http.route") == "/api/v1/archive/enterprises/{uscc}/facts"]
        return spans if found and any(s.attributes.get("url.path", "").startswith("/nowhere") for s in spans) else None

    spans = await eventually(enterprise_spans, lambda s: s is not None, what="the enterprise requests' spans")
    cases = next(s for s in spans if s.attributes.get("http.route") == "/api/v1/enterprises/{uscc}/cases")
    assert cases.name == "GET /api/v1/enterprises/{uscc}/cases"
    assert cases.attributes["url.path"] == "/api/v1/enterprises/{redacted}/cases", cases.attributes
    leaks = [
        (s.name, text)
        for s in spans
        for text in (
            s.name,
            *(f"{k}={v}" for k, v in s.attributes.items()),
            *(f"{e.name} {dict(e.attributes or {})}" for e in s.events),
            s.status.description or "",
        )
        if uscc in text or phone in text or token in text
    ]
    assert not leaks, leaks
