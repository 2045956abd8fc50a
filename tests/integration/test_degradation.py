"""The shop degrades instead of failing: booking slow for half its requests, tickets answering 503.

Faults are injected at the services' ingress (``/api/admin/faults``) of the real, in-process runtime; the pages
are fetched through the gateway as a browser would (cookies, CSRF tokens). Event pages still render with the
last availability booking gave (marked as possibly stale), checkout says which step to retry and that a retry
is safe, no page is a 500, and the circuit breaker to tickets opens and closes again.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform import faults
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running, wait_for
from tests.integration.test_catalog import ADMIN, admin_headers
from tests.integration.test_web import csrf_of, log_in

STALE = 'data-testid="availability-stale"'
SLOW_BOOKING = {"service": "booking", "delay_ms": 2000, "delay_percent": 50}
TICKETS_DOWN = {"service": "tickets", "abort_status": 503, "abort_percent": 100}


@pytest.fixture(autouse=True)
def clean_faults() -> Iterator[None]:
    faults.registry().clear()
    yield
    faults.registry().clear()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Running]:
    identity = IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"])
    names = ["identity", "catalog", "booking", "payments", "tickets", "web"]
    async with running(Settings(data_dir=tmp_path, demo=False), names, configs={"identity": identity}) as app:
        yield app


def breaker_gauge(client: str) -> float | None:
    """The breaker's state as Prometheus sees it: 0 closed, 1 half-open, 2 open."""
    return REGISTRY.get_sample_value("boxoffice_client_breaker_state", {"client": client})


def delays(service: str) -> float:
    return REGISTRY.get_sample_value("boxoffice_faults_injected_total", {"service": service, "kind": "delay"}) or 0.0


async def _event_on_sale(client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[str, str]:
    body = {"name": "Slow Night", "category": "concert", "venue": "Paradiso", "city": "Amsterdam",
            "starts_at": (datetime.now(UTC) + timedelta(days=5)).isoformat(), "currency": "EUR",
            "sections": [{"name": "Floor", "price": 3000, "capacity": 100}]}
    event = (await client.post("/api/events", json=body, headers=admin)).json()
    section = event["sections"][0]["id"]

    async def held() -> bool:  # on sale once booking has learned the event; the fan holds 2 of 100
        hold = {"event_id": event["id"], "section_id": section, "quantity": 2}
        return (await client.post("/api/holds", json=hold, headers=admin)).status_code == 201

    await wait_for(held)
    return event["id"], section


async def _set(client: httpx.AsyncClient, admin: dict[str, str], *rules: dict[str, object]) -> None:
    response = await client.put("/api/admin/faults", json={"rules": list(rules)}, headers=admin)
    assert response.status_code == 200, response.text


@pytest.mark.timeout(300)  # the injected 2 s delays add up
async def test_event_pages_checkout_and_breakers_under_faults(app: Running) -> None:
    client = app.client
    admin = await admin_headers(client)
    event_id, section = await _event_on_sale(client, admin)
    statuses: list[int] = []
    # The breaker's clock stands still until the test moves it: on a slow machine its real cool-down could
    # pass between the failures that open it and the assertion that it is open.
    breaker = app.runtime.clients.get("tickets").breaker
    now = [time.monotonic()]
    breaker.clock = lambda: now[0]

    async def page(path: str) -> httpx.Response:
        response = await client.get(path)
        statuses.append(response.status_code)
        return response

    fresh = await page(f"/events/{event_id}")
    assert fresh.status_code == 200 and "98 left" in fresh.text and STALE not in fresh.text

    # Booking slow for half its requests: every event page renders; exactly the ones whose availability call
    # was delayed say so, and show the last count booking gave (98), not the capacity (100).
    await _set(client, admin, SLOW_BOOKING, TICKETS_DOWN)
    before = delays("booking")
    pages = [await page(f"/events/{event_id}") for _ in range(6)]
    assert all(p.status_code == 200 and "98 left" in p.text for p in pages)
    assert sum(STALE in p.text for p in pages) == delays("booking") - before
    await _set(client, admin, {**SLOW_BOOKING, "delay_percent": 100}, TICKETS_DOWN)
    stale = await page(f"/events/{event_id}")
    assert stale.status_code == 200 and STALE in stale.text and "98 left" in stale.text
    listing = await client.get("/api/events")
    assert listing.json()["items"][0]["availability_stale"] is True

    # Checkout through the slow booking still works; the order page renders while tickets answer 503.
    await _set(client, admin, SLOW_BOOKING, TICKETS_DOWN)
    await log_in(client)
    event_page = await page(f"/events/{event_id}")
    held = await client.post(f"/events/{event_id}/hold",
                             data={"csrf_token": csrf_of(event_page), "section_id": section, "quantity": "1"})
    assert held.status_code == 303, held.text
    checkout = await page(held.headers["location"])
    assert checkout.status_code == 200
    card = {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2035", "cvc": "123"}

    # Payments down: the page says which step failed and that pressing Pay again is safe, with the same attempt.
    await _set(client, admin, SLOW_BOOKING, TICKETS_DOWN, {"service": "payments", "abort_status": 503,
                                                           "abort_percent": 100})
    attempt = re.search(r'name="attempt" value="([^"]+)"', checkout.text)
    assert attempt
    form = {**card, "csrf_token": csrf_of(checkout), "attempt": attempt.group(1)}
    refused = await client.post(f"{held.headers['location']}/pay", data=form)
    statuses.append(refused.status_code)
    assert refused.status_code == 503 and 'data-page="checkout"' in refused.text
    assert "Press “Pay” again to retry: the same payment is never taken twice." in refused.text
    assert "Your seats stay held" in refused.text
    assert f'name="attempt" value="{attempt.group(1)}"' in refused.text

    await _set(client, admin, SLOW_BOOKING, TICKETS_DOWN)
    paid = await client.post(f"{held.headers['location']}/pay", data=form)
    assert paid.status_code == 303 and "/orders/" in paid.headers["location"], paid.text
    for _ in range(3):
        order = await page(paid.headers["location"])
        assert order.status_code == 200 and 'data-page="order"' in order.text
    assert breaker.state == "open"  # booking stopped asking tickets, which keeps failing
    assert breaker_gauge(breaker.name) == 2

    # Booking down: holding says nothing was held and to try again, on the event page itself.
    await _set(client, admin, {"service": "booking", "path_prefix": "/api/holds", "abort_status": 503,
                               "abort_percent": 100})
    event_page = await page(f"/events/{event_id}")
    refused_hold = await client.post(f"/events/{event_id}/hold",
                                     data={"csrf_token": csrf_of(event_page), "section_id": section, "quantity": "1"})
    statuses.append(refused_hold.status_code)
    assert refused_hold.status_code == 503 and 'data-page="event"' in refused_hold.text
    assert "nothing was held and nothing was charged" in refused_hold.text

    # Faults gone: after its cool-down the breaker lets a trial call through, which closes it.
    assert (await client.delete("/api/admin/faults", headers=admin)).status_code == 204
    now[0] += breaker.reset_after + 1
    assert breaker.state == "half-open" and breaker_gauge(breaker.name) == 1
    order = await page(paid.headers["location"])
    assert order.status_code == 200
    assert breaker.state == "closed" and breaker_gauge(breaker.name) == 0
    assert 500 not in statuses, statuses
