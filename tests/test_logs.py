"""Logging: one JSON object per line in production, readable lines in development, library records alike."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, structlog, logs
logs.configure(log_format={fmt!r})
with structlog.contextvars.bound_contextvars(workflow_id="payout:ITEM:USCC"):
    logs.get_logger("zhida.test").info("case_paid", case_id=7, 金额="1.00")
logging.getLogger("uvicorn.error").warning("library %s", "record")
"""


def _run(fmt: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(fmt=fmt)], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr.strip().splitlines()


def test_production_logs_are_json_lines_with_the_bound_ids() -> None:
    ours, library = (json.loads(line) for line in _run("json"))
    assert ours["event"] == "case_paid" and ours["case_id"] == 7 and ours["workflow_id"] == "payout:ITEM:USCC"
    assert ours["level"] == "info" and ours["logger"] == "zhida.test" and ours["金额"] == "1.00"
    assert library["event"] == "library record" and library["logger"] == "uvicorn.error"


def test_development_logs_are_readable_lines() -> None:
    ours, library = _run("console")
    assert "case_paid" in ours and "case_id=7" in ours and "workflow_id=payout:ITEM:USCC" in ours
    assert "library record" in library


def test_a_log_line_inside_a_span_carries_its_trace_and_span_ids() -> None:
    script = """
import logs
from opentelemetry.sdk.trace import TracerProvider
logs.configure(log_format="json")
tracer = TracerProvider().get_tracer("t")
with tracer.start_as_current_span("RunActivity:send_payment") as span:
    logs.get_logger("zhida.test").info("inside")
    c = span.get_span_context()
    print(f"{c.trace_id:032x} {c.span_id:016x}")
logs.get_logger("zhida.test").info("outside")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    trace_id, span_id = done.stdout.split()
    inside, outside = (json.loads(line) for line in done.stderr.strip().splitlines())
    assert (inside["trace_id"], inside["span_id"]) == (trace_id, span_id)
    assert "trace_id" not in outside
