"""OpenTelemetry tracing for every Zhida process: the API's HTTP requests (FastAPI's native spans), the Temporal client, workflows and
activities (temporalio.contrib.opentelemetry), one trace from a request to the activities it causes.

`ZHIDA_TRACING_EXPORTER` chooses where spans go: `none` (the default: no tracer, no interceptor, no cost), `otlp`
(OTLP over HTTP/protobuf to `ZHIDA_TRACING_OTLP_ENDPOINT`, e.g. http://collector:4318/v1/traces) or `console`
(spans printed as JSON on stdout, for a look by hand). A process entry point calls `configure(settings, service)`;
tests pass their own span exporter (an in-memory one).

Spans carry names and ids (route, workflow type and id, activity type), never request bodies. FastAPI's server span
names itself by the route template but records the raw `url.path` and `url.query`, where enterprise URLs carry the
USCC: every exporter here sits behind `RedactingExporter`, which masks USCCs, phones, ID and account numbers in every
span name, attribute and event before a span leaves the process (logs.redact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import logs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

    from settings import Settings

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def configure(settings: Settings, service: str, *, exporter: SpanExporter | None = None) -> bool:
    """Install this process's tracer from settings (or with `exporter`); returns whether tracing is on."""
    global _provider, _tracer
    kind = "custom" if exporter is not None else settings.tracing_exporter
    if kind == "none":
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.namespace": "zhida"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(exporter)))
    elif kind == "console":
        provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(ConsoleSpanExporter())))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(RedactingExporter(OTLPSpanExporter(endpoint=settings.tracing_otlp_endpoint or None)))
        )
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = provider, provider.get_tracer("zhida")
    # Libraries that ask the global API (none of ours do) get the same provider; it can be set once per process.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return True


def enabled() -> bool:
    return _tracer is not None


def shutdown() -> None:
    """Flush and stop (tests, and a process that ends)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def interceptors() -> list[Any]:
    """The Temporal client interceptors of this process: the tracing one when tracing is on. Given to
    `Client.connect`, it also serves every worker built on that client (workflows and activities)."""
    if _tracer is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_tracer)]


def fastapi_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry settings: its HTTP server span per request (named by the route template, never
    the path's values, continuing a caller's `traceparent`) on this process's tracer when tracing is on; off
    otherwise. Its metrics and log export stay off (metrics are /metrics, logs are structlog)."""
    if _provider is None:
        return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"tracer_provider": _provider, "metrics": False, "logs": False}


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return logs.redact(value)
    if isinstance(value, tuple | list):
        return type(value)(_redacted(v) for v in value)
    return value


def _attributes(attributes: Any, query_key: str = "url.query") -> dict[str, Any]:
    out = {k: _redacted(v) for k, v in (attributes or {}).items()}
    if isinstance(out.get(query_key), str):
        out[query_key] = logs.redact_query(out[query_key])
    return out


class RedactingExporter:
    """A span exporter that hands on copies of the spans with personal data masked (the wrapped exporter never sees
    the original): span names, attributes, statuses, event names and attributes, through `logs.redact`; `url.query`
    also drops the values of secret parameters (sign-in tokens)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import Status

        clean = [
            ReadableSpan(
                name=logs.redact(span.name),
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=_attributes(span.attributes),
                events=[Event(logs.redact(e.name), _attributes(e.attributes), e.timestamp) for e in span.events],
                links=span.links,
                kind=span.kind,
                status=Status(span.status.status_code, logs.redact(span.status.description or "") or None),
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
            for span in spans
        ]
        return self.inner.export(clean)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
