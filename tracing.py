"""OpenTelemetry tracing for every Zhida process: the API's HTTP requests (FastAPI's native spans), the Temporal client, workflows and
activities (temporalio.contrib.opentelemetry), one trace from a request to the activities it causes.

`ZHIDA_TRACING_EXPORTER` chooses where spans go: `none` (the default: no tracer, no interceptor, no cost), `otlp`
(OTLP over HTTP/protobuf to `ZHIDA_TRACING_OTLP_ENDPOINT`, e.g. http://collector:4318/v1/traces) or `console`
(spans printed as JSON on stdout, for a look by hand). A process entry point calls `configure(settings, service)`;
tests pass their own span exporter (an in-memory one).

Spans carry names and ids (route, workflow type and id, activity type), never request bodies: no personal data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif kind == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.tracing_otlp_endpoint or None))
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
