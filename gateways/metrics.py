"""Counters of one process's calls to the outside world (the worker's own /metrics, `ZHIDA_WORKER_METRICS_PORT`).

The API's /metrics reads what the database knows (services/metrics.py); these count what only the calling process
sees: treasury requests that failed before any answer was stored, and SMS sends the carrier refused. Labels are
bounded codes, never a phone number, an account or a name.
"""

from __future__ import annotations

from prometheus_client import Counter

TREASURY_ERRORS = Counter(
    "zhida_treasury_errors",
    "Treasury requests that failed: timeout, unreachable, 5xx, 4xx (refused), bad_signature, bad_answer",
    ["kind"],
)
SMS_SEND_FAILURES = Counter(
    "zhida_sms_send_failures", "SMS sends that the carrier did not accept", ["provider", "code"]
)


def sms_failed(provider: str, code: str | None) -> None:
    SMS_SEND_FAILURES.labels(provider=provider, code=(code or "unknown")[:48]).inc()
