"""Tickets bought over HTTP against ``boxoffice run`` show up as a window result within 2 s of the window
closing: on the live stream, on the SQL bus's ``analytics-results`` topic, and in the sales API.

The windows are 5 s long here (``BOXOFFICE_ANALYTICS_WINDOW_SECONDS``) and the watermark's bound 1 s, so
the test waits seconds, not a minute; everything else is the production path: booking's outbox and relay,
the bus, the aggregator's idle close by the wall clock, analytics' outbox and relay, the SSE endpoint.
A window closes when the wall clock passes its end plus the bound (the sale has gone quiet).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from boxoffice.platform.bus.sql import SqlBus
from tests.e2e.test_purchase_flow import ADMIN, admin_headers, pay, sign_up
from tests.harness.server import Server, boxoffice_run

WINDOW, BOUND = 5, 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "BOXOFFICE_ADMIN_EMAIL": ADMIN["email"],
        "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"],
        "BOXOFFICE_ANALYTICS_WINDOW_SECONDS": str(WINDOW),
        "BOXOFFICE_ANALYTICS_MAX_OUT_OF_ORDER_SECONDS": str(BOUND),
        "BOXOFFICE_LOG_LEVEL": "WARNING",
    }
    with boxoffice_run(tmp_path_factory.mktemp("e2e-analytics") / "var", env=env) as server:
        yield server


class Listener(threading.Thread):
    """Reads the live stream as an operator's browser would; notes when each result arrived."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.results: list[tuple[float, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.status = 0

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as client, client.stream(
                "GET", self.url, headers=self.headers
            ) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    self.connected.set()
                    if line.startswith("data: "):
                        self.results.append((time.time(), json.loads(line[6:])))
        except httpx.HTTPError:  # the server stops at the end of the module
            pass


def test_bought_tickets_appear_as_a_window_within_two_seconds_of_its_close(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=15) as client:
        admin = admin_headers(client)
        buyer = sign_up(client, "analytics-fan@example.com")
        events = client.get("/api/events", params={"category": "concert", "limit": 50}).json()["items"]
        event = next(e for e in events if e["seating"] == "general" and e["available"] >= 3)
        section = client.get(f"/api/events/{event['id']}").json()["sections"][0]
        listener = Listener(f"{server.url}/api/analytics/stream?event_id={event['id']}", admin)
        listener.start()
        assert listener.connected.wait(10) and listener.status == 200

        hold = client.post("/api/holds", json={"event_id": event["id"], "section_id": section["id"], "quantity": 3},
                           headers=buyer)
        assert hold.status_code == 201, hold.text
        pay(client, hold.json(), buyer)

        deadline = time.monotonic() + 30
        while not listener.results and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.results, "no window result on the stream"
        arrived, result = listener.results[0]
        closed = datetime.fromisoformat(result["window_end"].replace("Z", "+00:00")).timestamp() + BOUND
        assert arrived - closed < 2.0, f"published {arrived - closed:.2f} s after the window closed"
        assert (result["event_id"], result["kind"], result["total_tickets"], result["orders"], result["revision"]) == (
            event["id"], "event", 3, 1, 1)
        assert result["revenue_minor"] == 3 * section["price"] and result["currency"] == event["currency"]

        sales = client.get("/api/analytics/sales", params={"event_id": event["id"]}, headers=admin).json()["items"]
        assert [(w["window_start"], w["total_tickets"]) for w in sales] == [(result["window_start"], 3)]
        summary = client.get(f"/api/analytics/events/{event['id']}/summary", headers=admin).json()
        assert summary["sold"] == 3 and summary["capacity"] == sum(
            s["capacity"] for s in client.get(f"/api/events/{event['id']}").json()["sections"])

    # The same record is on the embedded SQL bus, in the envelope every consumer reads.
    on_bus = asyncio.run(read_results(server, event["id"]))
    assert [(e["window_start"], e["total_tickets"], e["revision"]) for e in on_bus] == [
        (result["window_start"], 3, 1)]


async def read_results(server: Server, event_id: str) -> list[dict[str, Any]]:
    bus = SqlBus(f"sqlite+aiosqlite:///{server.log.parent / 'bus.db'}")
    await bus.start()
    consumer = bus.consumer("e2e.results-reader", ["analytics-results"])
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        while records := await consumer.poll(max_records=500, timeout=1.0):
            found.extend(r.envelope.data for r in records if r.envelope.key == event_id)
            await consumer.commit(records)
    finally:
        await consumer.stop()
        await bus.stop()
    return found
