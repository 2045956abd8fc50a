"""Traces: OpenTelemetry spans for HTTP (FastAPI in, httpx and the gateway's aiohttp out), SQL (SQLAlchemy)
and bus events.

One purchase is one trace: the gateway's span (its root: ``instrument_gateway``), the payments request's span,
booking's confirmation it calls, the SQL of both, and, later and elsewhere, the tickets consumer handling the
``ticket-bookings`` event. Across HTTP the
W3C ``traceparent`` header carries the context (httpx injects it, FastAPI extracts it; in one process the
in-process call keeps the caller's context). Across the bus the envelope carries it: ``new_event`` fills
``traceparent`` from the current span, it is stored in the outbox with the event, and the consumer restores
it around the handler (``consuming``).

Nothing is traced unless ``BOXOFFICE_OTEL_ENDPOINT`` names an OTLP/HTTP collector (e.g.
``http://otel-collector:4318``) or a test installs an exporter: without a collector no span is made, since
nobody would read them and they cost CPU on every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Scope

_provider: TracerProvider | None = None
_exporting: bool = False
tracer = trace.get_tracer("boxoffice")


def configure_tracing(service: str, endpoint: str | None, *, exporter: SpanExporter | None = None) -> None:
    """Install the SDK once per process, before engines and clients are made: the tracer provider and the
    httpx instrumentation always (so ``traceparent`` travels); the OTLP exporter when ``endpoint`` is set,
    or ``exporter`` (a test's in-memory one), and with an exporter the SQLAlchemy instrumentation of the
    engines made from then on (a span per statement is only worth its cost when someone looks at it)."""
    global _provider, _exporting
    if _provider is None and not endpoint and exporter is None:
        # Nobody collects spans: make none. Spans on every request and call cost about a tenth of a
        # flash-sale flow's CPU (measured with loadtest/compare.py), for a context nobody reads.
        return
    if _provider is None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource

        _provider = TracerProvider(
            resource=Resource.create({"service.name": f"boxoffice-{service}", "service.namespace": "boxoffice"})
        )
        trace.set_tracer_provider(_provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=_provider)
    if endpoint and exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    if exporter is not None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        immediate = endpoint is None  # a test's exporter sees each span as it ends
        _provider.add_span_processor(SimpleSpanProcessor(exporter) if immediate else BatchSpanProcessor(exporter))
        _exporting = True


def instrument_engines(*engines: AsyncEngine) -> None:
    """A span per SQL statement on these engines, while spans are exported (``platform.db`` calls it)."""
    if not _exporting or _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    usage = get_meter("boxoffice.sql").create_up_down_counter("db.client.connections.usage", unit="connections")
    for engine in dict.fromkeys(engines):  # the same engine twice (PostgreSQL reads and writes) once
        EngineTracer(trace.get_tracer("boxoffice.sql", tracer_provider=_provider), engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def exporting() -> bool:
    """Whether spans leave the process (an OTLP endpoint was configured)."""
    return _exporting


def instrument_app(app: object) -> None:
    """Server spans for a service's FastAPI app (the incoming ``traceparent`` continues the caller's trace)."""
    if _provider is None:
        return
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    assert isinstance(app, FastAPI)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="healthz,readyz,metrics")


def instrument_gateway(app: ASGIApp) -> ASGIApp:
    """A server span for each request the gateway routes (``run``, ``run --processes``), while spans are
    exported: the root of the request's trace, which the services' spans continue (in one process as its
    children, across processes through the ``traceparent`` header the instrumented httpx client adds)."""
    if not _exporting or _provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def details(scope: Scope) -> tuple[str, dict[str, str]]:
        # The method only: a path holds ids, and a span name must not (one name per kind of request).
        return f"gateway {scope.get('method', 'HTTP')}", {"boxoffice.gateway.path": str(scope.get("path", ""))}

    return OpenTelemetryMiddleware(
        app,
        excluded_urls="healthz,readyz,metrics",
        default_span_details=details,
        tracer_provider=_provider,
        exclude_spans=["receive", "send"],
    )


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside any span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def internal_call(name: str) -> Iterator[None]:
    """A span for a call of another service's in-process port (``ServiceClients.port``), named like the
    internal route it stands in for, so a trace reads the same in one process and across processes."""
    if not _exporting:
        yield
        return
    with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL):
        yield


@contextmanager
def sending(method: str, url: str) -> Iterator[dict[str, str]]:
    """A client span for a request sent with a client the httpx instrumentation does not see (the gateway's
    aiohttp), and the headers that carry its context (``traceparent``) to the service that receives it."""
    if _provider is None:
        yield {}
        return
    with tracer.start_as_current_span(
        method, kind=SpanKind.CLIENT, attributes={"http.request.method": method, "url.full": url}
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier


@contextmanager
def consuming(group: str, topic: str, event_type: str, traceparent: str | None) -> Iterator[None]:
    """A consumer span for one event, in the trace of the request that published it."""
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else otel_context.Context()
    with tracer.start_as_current_span(
        f"{topic} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "boxoffice",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.operation.type": "process",
            "boxoffice.event.type": event_type,
        },
    ):
        yield
