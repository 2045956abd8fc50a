"""Analytics' API over HTTP (through the gateway, in process): who may call it, what bad input gets, and the
sales, summary and stream of a sale whose bookings arrive on the bus, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxoffice.analytics.deps import AnalyticsSettings
from boxoffice.platform.asgi_stream import StreamingASGITransport
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.settings import Settings
from tests.harness.app import FakeClock, Running, running, wait_for
from tests.harness.booking import general_event, token_for, train_run
from tests.harness.booking_stream import START

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def app(tmp_path: Path, db_factory: Callable[[str], str]) -> AsyncIterator[Running]:
    configs = {"analytics": AnalyticsSettings(database_url=db_factory("analytics"), idle_check_seconds=0.05,
                                              stream_poll_seconds=0.05)}
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "analytics"], configs=configs) as app:
        app.service("analytics").clock = FakeClock(START)  # frozen: only the watermark closes windows
        yield app


def stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def booking(event: dict[str, Any], order_id: str, tickets: int, second: float, *, cancelled: bool = False) -> Envelope:
    price = event["sections"][0]["price"]
    data = {"event_id": event["event_id"], "user_id": "u-1", "order_id": order_id, "ticket_count": tickets,
            "amount_minor": tickets * price, "currency": event["currency"],
            "status": "cancelled" if cancelled else "confirmed", "timestamp": stamp(START + timedelta(seconds=second)),
            "kind": "event", "holder_name": "Ann Fan", "items": []}
    kind = "booking.order-cancelled" if cancelled else "booking.order-confirmed"
    return new_event(kind, source="booking", key=event["event_id"], data=data, topic="ticket-bookings")


def kind(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def test_only_admins_may_read_analytics(app: Running) -> None:
    customer = token_for(app)
    for path in ("/api/analytics/sales?event_id=x", "/api/analytics/events/x/summary", "/api/analytics/stream",
                 "/api/analytics/events"):
        anonymous = await app.client.get(path)
        assert anonymous.status_code == 401 and kind(anonymous) == "unauthorized"
        forbidden = await app.client.get(path, headers=customer)
        assert forbidden.status_code == 403 and kind(forbidden) == "forbidden"


@pytest.mark.parametrize(
    ("query", "status", "slug"),
    [
        ("", 422, None),
        ("?event_id=", 422, None),
        ("?event_id=e&from=yesterday", 422, None),
        ("?event_id=e&from=2026-12-01T10:00:00", 422, None),  # no time zone
        ("?event_id=e&from=2026-12-01T11:00:00Z&to=2026-12-01T10:00:00Z", 400, "invalid-range"),
        ("?event_id=e&cursor=garbage", 400, "invalid-cursor"),
        ("?event_id=e&limit=0", 422, None),
        ("?event_id=e&limit=100000", 422, None),
    ],
)
async def test_bad_queries_get_a_problem(app: Running, query: str, status: int, slug: str | None) -> None:
    admin = token_for(app, roles=("admin",))
    response = await app.client.get(f"/api/analytics/sales{query}", headers=admin)
    assert response.status_code == status, response.text
    problem = kind(response)
    assert slug is None or problem == slug
    unknown = await app.client.get("/api/analytics/events/nope/summary", headers=admin)
    assert unknown.status_code == 404 and kind(unknown) == "not-found"


async def test_a_sale_in_windows_its_summary_and_the_live_stream(app: Running) -> None:
    admin = token_for(app, roles=("admin",))
    event = general_event(capacity=10, price=2500)
    bus = app.runtime.bus
    await bus.publish([new_event("catalog.event-published", source="catalog", key=event["event_id"], data=event,
                                 topic="catalog.events")])
    transport = StreamingASGITransport(app.runtime.gateway())
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://boxoffice.test") as streaming,
        streaming.stream("GET", "/api/analytics/stream", params={"event_id": event["event_id"]}, headers=admin) as live,
    ):
        assert live.status_code == 200 and live.headers["content-type"].startswith("text/event-stream")
        lines = live.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        await bus.publish([booking(event, a, 4, 10), booking(event, b, 6, 20)])

        async def sold_out() -> dict[str, Any] | None:
            response = await app.client.get(f"/api/analytics/events/{event['event_id']}/summary", headers=admin)
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 and body["sold"] == 10 and body["capacity"] else None

        summary = await wait_for(sold_out)
        assert summary["sold_out_at"] == stamp(START + timedelta(seconds=20))
        assert summary["sell_through"] == 1.0

        # A cancellation a minute later, then a booking whose time moves the watermark past both windows.
        await bus.publish([booking(event, a, 4, 70, cancelled=True), booking(event, str(uuid.uuid4()), 1, 130)])
        received = []
        while len(received) < 2:
            line = await anext(lines)
            if line.startswith("data: "):
                received.append(httpx.Response(200, content=line[6:]).json())
        assert [(r["window_start"], r["total_tickets"], r["orders"], r["revision"]) for r in received] == [
            (stamp(START), 10, 2, 1), (stamp(START + timedelta(minutes=1)), -4, -1, 1)]
        assert all(r["event_id"] == event["event_id"] and r["currency"] == "EUR" for r in received)

    sales = await app.client.get("/api/analytics/sales", params={"event_id": event["event_id"]}, headers=admin)
    assert sales.status_code == 200
    assert sales.json() == {"items": [
        {"window_start": stamp(START), "window_end": stamp(START + timedelta(minutes=1)), "total_tickets": 10,
         "orders": 2, "revenue_minor": 25000, "currency": "EUR", "revision": 1},
        {"window_start": stamp(START + timedelta(minutes=1)), "window_end": stamp(START + timedelta(minutes=2)),
         "total_tickets": -4, "orders": -1, "revenue_minor": -10000, "currency": "EUR", "revision": 1},
    ], "next_cursor": None}
    first = await app.client.get("/api/analytics/sales", params={"event_id": event["event_id"], "limit": 1},
                                 headers=admin)
    rest = await app.client.get("/api/analytics/sales", params={"event_id": event["event_id"], "limit": 1,
                                                                "cursor": first.json()["next_cursor"]}, headers=admin)
    assert [w["window_start"] for w in first.json()["items"] + rest.json()["items"]] == [
        stamp(START), stamp(START + timedelta(minutes=1))]
    assert rest.json()["next_cursor"] is None
    later = await app.client.get("/api/analytics/sales", headers=admin, params={
        "event_id": event["event_id"], "from": stamp(START + timedelta(minutes=1)), "to": stamp(START + timedelta(hours=1))})
    assert [w["total_tickets"] for w in later.json()["items"]] == [-4]

    summary = (await app.client.get(f"/api/analytics/events/{event['event_id']}/summary", headers=admin)).json()
    assert summary == {"event_id": event["event_id"], "capacity": 10, "sold": 7, "sell_through": 0.7,
                       "revenue_minor": 17500, "currency": "EUR", "first_sale_at": stamp(START + timedelta(seconds=10)),
                       "sold_out_at": None, "peak_tickets_per_minute": 10.0}
    tracked = (await app.client.get("/api/analytics/events", headers=admin)).json()["items"]
    assert {"event_id": event["event_id"], "kind": "event", "name": event["name"], "capacity": 10, "sold": 7}.items() <= (
        next(t for t in tracked if t["event_id"] == event["event_id"]).items())

    # A stream resumed with Last-Event-ID replays what came after that id.
    async with (
        httpx.AsyncClient(transport=StreamingASGITransport(app.runtime.gateway()), base_url="http://boxoffice.test")
        as streaming,
        streaming.stream("GET", "/api/analytics/stream", headers={**admin, "Last-Event-ID": "0"}) as again,
    ):
        ids = []
        async for line in again.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            if len(ids) == 2:
                break
    assert ids == sorted(ids) and len(set(ids)) == 2


async def test_a_train_run_is_tracked_with_its_seats_as_capacity(app: Running) -> None:
    """The organiser's picker offers train runs too: the run's capacity is its seats (catalog.run-published),
    its bookings count in windows of kind "train", and it sells out like an event."""
    admin = token_for(app, roles=("admin",))
    run = train_run(seats_per_class=4)
    bus = app.runtime.bus
    await bus.publish([new_event("catalog.run-published", source="catalog", key=run["run_id"], data=run,
                                 topic="catalog.runs")])

    def seat_booking(order_id: str, tickets: int, second: float) -> Envelope:
        data = {"event_id": run["run_id"], "user_id": "u-2", "order_id": order_id, "ticket_count": tickets,
                "amount_minor": tickets * 50000, "currency": "INR", "status": "confirmed",
                "timestamp": stamp(START + timedelta(seconds=second)), "kind": "train", "holder_name": "Ravi",
                "items": []}
        return new_event("booking.order-confirmed", source="booking", key=run["run_id"], data=data,
                         topic="ticket-bookings")

    async def tracked() -> dict[str, Any] | None:
        response = await app.client.get("/api/analytics/events", headers=admin)
        return next((t for t in response.json()["items"] if t["event_id"] == run["run_id"]), None)

    listed = await wait_for(tracked)
    assert (listed["kind"], listed["name"], listed["capacity"], listed["sold"]) == (
        "train", "12951 Rajdhani Express", 4, 0)
    assert listed["starts_at"] == stamp(datetime.fromisoformat(run["stops"][0]["departs_at"]))

    await bus.publish([seat_booking(str(uuid.uuid4()), 1, 5), seat_booking(str(uuid.uuid4()), 2, 50),
                       seat_booking(str(uuid.uuid4()), 1, 70)])  # the last seat; it moves the watermark past 60 s

    async def closed() -> list[dict[str, Any]] | None:
        response = await app.client.get("/api/analytics/sales", params={"event_id": run["run_id"]}, headers=admin)
        items: list[dict[str, Any]] = response.json()["items"]
        return items or None

    [window] = await wait_for(closed)
    assert (window["window_start"], window["total_tickets"], window["orders"], window["revenue_minor"],
            window["currency"], window["revision"]) == (stamp(START), 3, 2, 150000, "INR", 1)
    summary = (await app.client.get(f"/api/analytics/events/{run['run_id']}/summary", headers=admin)).json()
    assert (summary["capacity"], summary["sold"], summary["sell_through"], summary["sold_out_at"]) == (
        4, 4, 1.0, stamp(START + timedelta(seconds=70)))


async def test_a_live_stream_ends_after_its_lifetime_and_resumes_from_its_last_id(
    tmp_path: Path, db_factory: Callable[[str], str]
) -> None:
    """A stream connection ends by itself after ``stream_max_seconds`` (a rolling update can drain it); the
    client connects again with ``Last-Event-ID`` and gets what was published meanwhile, nothing twice."""
    configs = {"analytics": AnalyticsSettings(database_url=db_factory("analytics"), idle_check_seconds=0.05,
                                              stream_poll_seconds=0.05, stream_max_seconds=0.5)}
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "analytics"], configs=configs) as app:
        app.service("analytics").clock = FakeClock(START)
        admin = token_for(app, roles=("admin",))
        event = general_event(capacity=10, price=2500)
        await app.runtime.bus.publish([new_event("catalog.event-published", source="catalog", key=event["event_id"],
                                                 data=event, topic="catalog.events")])
        transport = StreamingASGITransport(app.runtime.gateway())
        async with httpx.AsyncClient(transport=transport, base_url="http://boxoffice.test") as streaming:

            async def read(headers: dict[str, str]) -> list[str]:
                async with streaming.stream("GET", "/api/analytics/stream", headers=headers) as live:
                    assert live.status_code == 200
                    return [line async for line in live.aiter_lines()]  # ends only when the server ends it

            first = await read(admin)
            assert first[:2] == ["retry: 2000", ": connected"] and not any(line.startswith("id: ") for line in first)

            # Two windows close while no stream is connected; the next connection resumes after the last id.
            await app.runtime.bus.publish([booking(event, "o-1", 2, 1), booking(event, "o-2", 1, 125)])

            async def closed() -> bool:
                sales = await app.client.get("/api/analytics/sales", params={"event_id": event["event_id"]},
                                             headers=admin)
                return sales.status_code == 200 and bool(sales.json()["items"])

            await wait_for(closed, timeout=30)
            again = await read({**admin, "Last-Event-ID": "0"})
            ids = [int(line[4:]) for line in again if line.startswith("id: ")]
            assert ids and ids == sorted(set(ids))
