"""API logs: every line of a request carries the ids of its URL path (contextvars), and each request's access line
names the route template, never a USCC, phone or token of its path or query string."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from logs import get_logger
from settings import Settings

USCC = "91420500MA4F0D1X2K"
PHONE = "13812345678"
_PAIR = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)")


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """A structlog line's fields, whether logs.configure ran in this process (event dicts) or not (key=value)."""
    if isinstance(record.msg, dict):
        return dict(record.msg)
    out: dict[str, Any] = {}
    for key, raw in _PAIR.findall(record.getMessage()):
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


@pytest.fixture(scope="module")
def client(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("request-log"), database_url=db_url)
    app = create_app(settings)

    # A route of the test's own that logs from the thread pool, as routers and services do.
    @app.get("/api/v1/probe/cases/{case_id}/alerts/{alert_id}/items/{code}")
    def probe(case_id: int, alert_id: int, code: str) -> dict[str, int]:
        get_logger("zhida.test").info("probe_inside")
        return {"case_id": case_id}

    with TestClient(app) as test_client:
        yield test_client, settings


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [fields(r) | {"logger": r.name} for r in caplog.records if r.name.startswith("zhida")]


def test_every_line_of_a_request_carries_the_path_ids(client, caplog) -> None:
    test_client, _ = client
    with caplog.at_level(logging.INFO):
        assert test_client.get("/api/v1/probe/cases/41/alerts/7/items/ITEM-2026").status_code == 200
    lines = _lines(caplog)
    assert {line["event"] for line in lines} >= {"probe_inside", "http_request"}, lines
    for line in lines:
        assert (line["case_id"], line["alert_id"], line["fund_item_code"]) == (41, 7, "ITEM-2026"), line
    access = next(line for line in lines if line["event"] == "http_request")
    assert access["route"] == "/api/v1/probe/cases/{case_id}/alerts/{alert_id}/items/{code}"
    assert (access["method"], access["status"]) == ("GET", 200) and access["duration_ms"] >= 0

    # The ids are the request's own: the next request's lines carry none of them.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        test_client.get("/healthz")
    assert all("case_id" not in line for line in _lines(caplog))


def test_a_real_route_and_a_refusal_are_logged_with_their_ids(client, caplog) -> None:
    test_client, settings = client
    token = mint(settings.jwt_key(), role="admin", subject="admin")
    with caplog.at_level(logging.INFO):
        found = test_client.get("/api/v1/cases/987654", headers={"Authorization": f"Bearer {token}"})
        refused = test_client.post("/api/v1/alerts/55/close")  # no token: refused before the route runs
    assert found.status_code == 404 and refused.status_code in (401, 403)
    access = [line for line in _lines(caplog) if line["event"] == "http_request"]
    assert [(a["route"], a["status"]) for a in access] == [
        ("/api/v1/cases/{case_id}", 404),
        ("/api/v1/alerts/{alert_id}/close", refused.status_code),
    ]
    assert access[0]["case_id"] == 987654 and access[1]["alert_id"] == 55


def test_no_uscc_phone_or_token_in_the_access_log(client, caplog) -> None:
    test_client, settings = client
    token = mint(settings.jwt_key(), role="enterprise", subject=USCC)
    with caplog.at_level(logging.INFO):
        test_client.get(f"/api/v1/enterprises/{USCC}/cases?uscc={USCC}&phone={PHONE}&token={token}")
        test_client.get(f"/api/v1/archive/enterprises/{USCC}/facts", headers={"Authorization": f"Bearer {token}"})
        test_client.get(f"/nowhere/{USCC}/{PHONE}")
    # Every record the server side wrote (the test's own HTTP client logs its URLs: not the server's logs).
    texts = [r.getMessage() + repr(r.msg) for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert texts and not [t for t in texts if USCC in t or PHONE in t or token in t], texts
    routes = [line["route"] for line in _lines(caplog) if line["event"] == "http_request"]
    assert routes == [
        "/api/v1/enterprises/{uscc}/cases",
        "/api/v1/archive/enterprises/{uscc}/facts",
        "/nowhere/{redacted}/{redacted}",
    ]
