"""One purchase is one trace: from the gateway's span through the payment request, booking's confirmation it
calls, the SQL of both, and the tickets consumer that handles the ``ticket-bookings`` event later (the
envelope's ``traceparent``), on SQLite and PostgreSQL, over the sql bus and Kafka, collected by the SDK's
in-memory exporter; and the gateway of ``run --processes`` hands its trace to the service process it forwards
to (the ``traceparent`` header a real upstream on loopback receives)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from boxoffice.booking.deps import BookingSettings
from boxoffice.payments.deps import PaymentsSettings
from boxoffice.platform import tracing
from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.clients import ServiceClient
from boxoffice.platform.gateway import Gateway, HttpProxy
from boxoffice.platform.settings import Settings
from boxoffice.tickets.deps import TicketsSettings
from tests.harness.app import running, wait_for
from tests.harness.booking import CARD_OK, general_event, publish_event, token_for
from tests.harness.postgres import create_database


class Switchable(SpanExporter):
    """The in-memory exporter, switched off when the test ends (the provider keeps its processors)."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.on = True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.memory.export(spans) if self.on else SpanExportResult.SUCCESS

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.memory.get_finished_spans()


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Switchable]:
    found = Switchable()
    tracing.configure_tracing("test", None, exporter=found)
    yield found
    found.on = False
    found.memory.clear()
    monkeypatch.setattr(tracing, "_exporting", False)


@pytest.fixture(params=["sqlite-sql", "postgres-sql", "sqlite-kafka"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, Callable[[str], str]]:
    database, bus = request.param.split("-")
    if database == "postgres":
        admin = request.getfixturevalue("postgres_admin_url")

        def factory(name: str) -> str:
            return create_database(admin, prefix=name)
    else:
        def factory(name: str) -> str:
            return f"sqlite+aiosqlite:///{tmp_path / name}.db"
    if bus == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        settings = Settings(data_dir=tmp_path, demo=False, bus="kafka", kafka_bootstrap_servers=bootstrap,
                            kafka_session_timeout_ms=2_000, kafka_heartbeat_interval_ms=300,
                            kafka_rebalance_timeout_ms=1_000)
    else:
        settings = Settings(data_dir=tmp_path, demo=False, bus_database_url=factory("bus"))
    return settings, factory


def test_the_envelope_carries_the_current_span_and_nothing_outside_one(exporter: Switchable) -> None:
    assert new_event("t", source="s", key="k", data={}, topic="x").traceparent is None
    with tracing.tracer.start_as_current_span("request") as span:
        traceparent = new_event("t", source="s", key="k", data={}, topic="x").traceparent
    assert traceparent is not None
    assert traceparent.split("-")[1] == format(span.get_span_context().trace_id, "032x")


async def test_one_purchase_is_one_trace(exporter: Switchable, setup: tuple[Settings, Callable[[str], str]]) -> None:
    settings, db = setup
    configs = {
        "booking": BookingSettings(database_url=db("booking")),
        "payments": PaymentsSettings(database_url=db("payments")),
        "tickets": TicketsSettings(database_url=db("tickets")),
    }
    async with running(settings, ["identity", "booking", "payments", "tickets"], configs=configs) as app:
        event = general_event()
        await publish_event(app, event)
        buyer = token_for(app)
        body = {"event_id": event["event_id"], "section_id": event["sections"][0]["section_id"], "quantity": 2}
        hold = (await app.client.post("/api/holds", json=body, headers=buyer)).json()
        order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
        paid = await app.client.post(f"/api/orders/{order['id']}/payment", json=CARD_OK,
                                     headers={**buyer, "Idempotency-Key": str(uuid.uuid4())})
        assert paid.status_code == 200, paid.text

        def spans_named(prefix: str, kind: SpanKind) -> list[ReadableSpan]:
            return [s for s in exporter.spans() if s.name.startswith(prefix) and s.kind == kind]

        async def payment_span() -> list[ReadableSpan]:
            # Payments' own span: INTERNAL under the gateway's SERVER span in one process (the SERVER span of
            # its process when the gateway forwards over HTTP).
            return [s for s in spans_named("POST /api/orders/{order_id}/payment", SpanKind.INTERNAL)
                    if s.name == "POST /api/orders/{order_id}/payment"]

        (payment,) = await wait_for(payment_span, timeout=10)

        async def tickets_consumed() -> list[ReadableSpan]:
            # Only this purchase's: on a broker shared with other tests the group may also get their events.
            return [s for s in spans_named("ticket-bookings process", SpanKind.CONSUMER)
                    if s.attributes and s.attributes.get("messaging.consumer.group.name") == "tickets.bookings"
                    and s.context.trace_id == payment.context.trace_id]

        consumed = await wait_for(tickets_consumed, timeout=30)

    # In one process booking's app runs inside the payments call: an INTERNAL span of the caller's (a SERVER
    # span with the caller's traceparent header between processes).
    confirms = [s for s in exporter.spans() if s.name == "POST /internal/orders/{order_id}/confirm"]
    assert confirms and all(s.kind in (SpanKind.SERVER, SpanKind.INTERNAL) for s in confirms)
    trace_id = payment.context.trace_id
    assert {s.context.trace_id for s in confirms} == {trace_id}  # payments -> booking over HTTP
    assert {s.context.trace_id for s in consumed} == {trace_id}  # booking -> outbox -> bus -> tickets
    in_trace = [s for s in exporter.spans() if s.context.trace_id == trace_id]
    services = {str(s.resource.attributes.get("service.name")) for s in in_trace}
    assert services  # one process here: its resource names every service it runs
    sql = [s for s in in_trace if s.kind == SpanKind.CLIENT and s.attributes and "db.system" in s.attributes]
    assert sql, "no SQL spans in the purchase's trace"
    # The payment request's own statements too (in one process they run on sqlite3 straight unless spans are
    # exported; a consumer's batch puts its statements in the trace of the batch's last event only).
    databases = {f"{s.name} {(s.attributes or {}).get('db.name', '')}" for s in sql}
    assert any("payments" in name for name in databases), databases
    # The gateway's span is the root: the payment request's span is its child.
    by_id = {s.context.span_id: s for s in in_trace}
    roots = [s for s in in_trace if s.parent is None]
    assert [(s.name, s.kind) for s in roots] == [("gateway POST", SpanKind.SERVER)]
    assert payment.parent is not None and by_id[payment.parent.span_id] is roots[0]
    # The hold and the order were other requests: other traces (a browser starts one per click).
    hold_spans = spans_named("POST /api/holds", SpanKind.INTERNAL)
    assert hold_spans and all(s.context.trace_id != trace_id for s in hold_spans)


@asynccontextmanager
async def recording_upstream(body: bytes) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A bare HTTP/1.1 server on loopback that answers 200 with ``body`` and keeps each request's headers."""
    received: list[dict[str, str]] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in head[1:] if line)}
        received.append(headers)
        await reader.readexactly(int(headers.get("content-length", "0")))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", received
    finally:
        server.close()
        await server.wait_closed()


async def test_the_gateway_of_processes_passes_its_trace_to_the_service_it_forwards_to(exporter: Switchable) -> None:
    """``run --processes``: the gateway forwards over HTTP (``HttpProxy``); the service process receives a
    ``traceparent`` in the gateway's trace, whose parent is the gateway's call (a child of its server span)."""

    async def ready() -> dict[str, str]:
        return {}

    async with recording_upstream(b"ok") as (url, received):
        proxy = HttpProxy(url)
        gateway = Gateway([("/api/orders", proxy)], check_ready=ready)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
                answer = await client.post("/api/orders/0193/payment", json={}, headers={"Idempotency-Key": "k"})
            assert answer.status_code == 200 and answer.text == "ok"
        finally:
            await proxy.aclose()
    [headers] = received
    _, trace_id, parent_id, _ = headers["traceparent"].split("-")
    [root] = [s for s in exporter.spans() if s.name == "gateway POST"]
    assert root.kind == SpanKind.SERVER and root.parent is None
    assert trace_id == format(root.context.trace_id, "032x")
    [call] = [s for s in exporter.spans() if format(s.context.span_id, "016x") == parent_id]
    assert call.kind == SpanKind.CLIENT and call.parent is not None and call.parent.span_id == root.context.span_id


async def test_a_service_client_over_http_passes_its_callers_trace(exporter: Switchable) -> None:
    """Payments calling booking in another process (``ServiceClient`` over aiohttp): booking receives a
    ``traceparent`` in payments' trace, whose parent is the client's span of the call."""
    async with recording_upstream(b"{}") as (url, received):
        client = ServiceClient("booking", base_url=url)
        try:
            with tracing.tracer.start_as_current_span("POST /api/orders/{order_id}/payment") as caller:
                answer = await client.post("/internal/orders/o1/confirm", json={"payment_id": "p1"})
            assert answer.status_code == 200 and answer.json() == {}
        finally:
            await client.aclose()
    [headers] = received
    _, trace_id, parent_id, _ = headers["traceparent"].split("-")
    assert trace_id == format(caller.get_span_context().trace_id, "032x")
    [call] = [s for s in exporter.spans() if format(s.context.span_id, "016x") == parent_id]
    assert call.kind == SpanKind.CLIENT and call.name == "POST"
    assert call.parent is not None and call.parent.span_id == caller.get_span_context().span_id


PROBE = """
import sys
from boxoffice.platform import tracing
tracing.configure_tracing("probe", sys.argv[1] or None)
with tracing.tracer.start_as_current_span("probe-span") as span:
    print("recording" if span.is_recording() else "not recording")
if tracing._provider is not None:
    tracing._provider.shutdown()  # what the process does at exit: the batch goes out
"""


@pytest.mark.parametrize("endpoint", [True, False], ids=["endpoint-set", "default"])
def test_spans_go_to_the_otlp_endpoint_only_when_one_is_set(endpoint: bool) -> None:
    """``BOXOFFICE_OTEL_ENDPOINT`` set: spans are POSTed as OTLP/HTTP protobuf to ``{endpoint}/v1/traces`` (a
    real collector stand-in on loopback); unset: no span is even recorded, and nothing is sent."""
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append((self.path, self.headers.get("content-type", ""), body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}" if endpoint else ""
        done = subprocess.run([sys.executable, "-c", PROBE, url], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()
    if endpoint:
        assert done.stdout.strip() == "recording"
        assert [(path, kind) for path, kind, _ in received] == [("/v1/traces", "application/x-protobuf")]
        assert b"probe-span" in received[0][2] and b"boxoffice-probe" in received[0][2]
    else:
        assert done.stdout.strip() == "not recording"
        assert received == []
