"""Structured logging (structlog) for every Zhida process: JSON lines in production, a console view in development.

Every module logs through `get_logger(name)` with key-value fields (case_id, workflow_id, ...). Until a process
entry point calls `configure`, events are rendered to a plain line and handed to the standard `logging` module
(so tests and libraries see them as ordinary records); `configure` installs one handler on the root logger that
renders structlog events and the libraries' records (uvicorn, temporalio) alike.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import structlog

LogFormat = Literal["json", "console"]

# Personal data that URLs carry (enterprise pages are keyed by USCC; a query may hold a phone, an ID or an account
# number): a USCC (GB 32100: two alphanumerics, a six-digit region code, ten alphanumerics) or a run of 11 or more
# digits (mobile phones, ID card and bank account numbers), standing alone between separators.
_PERSONAL = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}|[0-9]{11,}[0-9X]?)(?![0-9A-Za-z])", re.I
)
# Query parameters whose values are dropped whatever they look like (sign-in tokens, names, account details).
_SECRET_PARAMETERS = frozenset({"token", "access_token", "uscc", "phone", "mobile", "name", "acct_no", "acct_name"})
REDACTED = "{redacted}"


def redact(text: str) -> str:
    """`text` with every USCC, phone, ID or account number in it replaced by `{redacted}`."""
    return _PERSONAL.sub(REDACTED, text)


def redact_query(query: str) -> str:
    """A query string fit for logs and traces: secret parameters' values dropped, personal data masked."""
    from urllib.parse import parse_qsl, urlencode

    pairs = parse_qsl(query, keep_blank_values=True)
    return redact(urlencode([(k, REDACTED if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs], safe="{}"))

def add_trace_ids(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The current OpenTelemetry trace and span ids (when tracing is on: tracing.py), so a log line leads to its
    trace: the HTTP request, the workflow and the activity that wrote it."""
    otel = sys.modules.get("opentelemetry.trace")
    if otel is not None:
        context = otel.get_current_span().get_span_context()
        if context.is_valid:
            event.setdefault("trace_id", f"{context.trace_id:032x}")
            event.setdefault("span_id", f"{context.span_id:016x}")
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named like a stdlib logger (`zhida.sms`), so levels can be set per name."""
    return structlog.stdlib.get_logger(name)


def configure(*, log_format: LogFormat, level: str = "INFO") -> None:
    """Route every log record of this process through one renderer: JSON lines or the development console."""
    if log_format == "json":
        # Tracebacks as text: a dict rendering would carry frame locals (personal data) into the logs.
        final: list[Any] = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(ensure_ascii=False)]
    else:
        final = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
