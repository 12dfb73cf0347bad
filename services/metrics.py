"""The Prometheus exposition of /metrics: figures the database holds, as counts (no personal data).

| metric | labels | what |
|---|---|---|
| zhida_cases | mode, status | cases by payout mode and status |
| zhida_payments | status | payment instructions by status (failed = the treasury refused it) |
| zhida_payment_latency_seconds | (histogram) | instruction created → settled as paid |
| zhida_notices | category, status | SMS notices by category and status (failed = given up) |
| zhida_outbox_depth | — | notices still queued or being sent |
| zhida_stage_deadlines_missed | state | review stages timed out, and open stages past their deadline |

Treasury transport errors and SMS sends refused by the carrier happen in the worker and are counted there
(gateways/metrics.py, the worker's own endpoint).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy.orm import Session

from db.repositories import metrics as repo
from schemas.vocabulary import CaseStatus, FundItemMode, PaymentStatus
from services.errors import Forbidden, Unauthorized

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    def __init__(self, shot: repo.Snapshot) -> None:
        self.shot = shot

    def collect(self) -> Iterator[Metric]:
        shot = self.shot
        cases = GaugeMetricFamily("zhida_cases", "Cases by payout mode and status", labels=["mode", "status"])
        for mode in FundItemMode:  # every pair appears, zero included, so rates and alerts need no absent()
            for status in CaseStatus:
                cases.add_metric([mode.value, status.value], shot.cases.get((mode.value, status.value), 0))
        yield cases
        payments = GaugeMetricFamily("zhida_payments", "Payment instructions by status", labels=["status"])
        for status in PaymentStatus:
            payments.add_metric([status.value], shot.payments.get(status.value, 0))
        yield payments
        notices = GaugeMetricFamily(
            "zhida_notices", "SMS notices by category and status", labels=["category", "status"]
        )
        for (category, status), n in sorted(shot.notices.items()):
            notices.add_metric([category, status], n)
        yield notices
        pending = {s.value for s in repo.outbox_statuses()}
        yield GaugeMetricFamily(
            "zhida_outbox_depth",
            "SMS notices still queued or being sent",
            value=sum(n for (_, status), n in shot.notices.items() if status in pending),
        )
        missed = GaugeMetricFamily(
            "zhida_stage_deadlines_missed",
            "Review stages past their deadline (timed out, or open and overdue)",
            labels=["state"],
        )
        for state, n in shot.stage_deadlines_missed.items():
            missed.add_metric([state], n)
        yield missed
        buckets = [(_bound(b), n) for b, n in zip(repo.LATENCY_BUCKETS, shot.latency_buckets, strict=True)]
        yield HistogramMetricFamily(
            "zhida_payment_latency_seconds",
            "Payment instruction created → settled as paid",
            buckets=[*buckets, ("+Inf", shot.latency_count)],
            sum_value=shot.latency_sum,
        )


def _bound(seconds: float) -> str:
    return floatToGoString(seconds)


def exposition(*, session: Session, now: datetime | None = None) -> bytes:
    """The text format of every database figure, read in a handful of aggregate queries."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(repo.snapshot(session=session, now=now or datetime.now(UTC))))
    return generate_latest(registry)


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def admit(*, configured_token: str | None, presented: str, client_host: str | None) -> None:
    """Who may read /metrics: the bearer of the configured token (`ZHIDA_METRICS_TOKEN`); with none configured,
    only a caller on this host (loopback)."""
    if configured_token:
        if not presented or not hmac.compare_digest(presented.encode(), configured_token.encode()):
            raise Unauthorized(
                "读取监控指标需要配置的指标令牌（Authorization: Bearer …）", field="Authorization", rule="token"
            )
        return
    if client_host not in LOOPBACK:
        raise Forbidden("未配置指标令牌时，监控指标只对本机开放", rule="loopback")
