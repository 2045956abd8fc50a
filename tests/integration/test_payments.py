"""Payments at its edges, on SQLite and PostgreSQL: hostile ids, the audit trail booking merges into an
order's history, and booking's answers as payments' typed client reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from boxoffice.booking.deps import BookingSettings
from boxoffice.payments.clients import BookingOrders, Confirmed, Refused
from boxoffice.payments.deps import PaymentsSettings
from boxoffice.payments.domain import BookingOrder
from boxoffice.platform.clients import ServiceClient
from boxoffice.platform.problems import ServiceUnavailable
from boxoffice.platform.settings import Settings
from boxoffice.tickets.deps import TicketsSettings
from tests.harness.app import FakeClock, Running, running, wait_for
from tests.harness.booking import CARD_DECLINED, CARD_OK, general_event, publish_event, token_for


@pytest.fixture
async def app(tmp_path: Path, db_factory: Callable[[str], str]) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path, demo=False)
    configs = {
        "booking": BookingSettings(database_url=db_factory("booking")),
        "payments": PaymentsSettings(database_url=db_factory("payments")),
        "tickets": TicketsSettings(database_url=db_factory("tickets")),  # fences a paid order's cancellation
    }
    async with running(settings, ["identity", "booking", "payments", "tickets"], configs=configs) as app:
        yield app


def problem(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def order_for(app: Running, buyer: dict[str, str]) -> dict[str, Any]:
    event = general_event(capacity=5)
    await publish_event(app, event)
    body = {"event_id": event["event_id"], "section_id": event["sections"][0]["section_id"], "quantity": 1}
    hold = (await app.client.post("/api/holds", json=body, headers=buyer)).json()
    order = await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)
    assert order.status_code == 201, order.text
    return dict(order.json())


async def audit(app: Running, order_id: str) -> list[dict[str, Any]]:
    response = await app.runtime.clients.get("payments").get(f"/internal/orders/{order_id}/audit")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


NO_SUCH_ORDER = "0190a4c2-0000-7000-8000-000000000000"
HOSTILE_IDS = ["%00", "%0A", "%0d%0a", "not-a-uuid", "%2e%2e", "x%20y", "0" * 300, "%C3%28"]


async def test_hostile_order_and_payment_ids_get_a_problem_never_a_500(app: Running) -> None:
    buyer = token_for(app)
    order = await order_for(app, buyer)  # a real order exists, so nothing below fails for want of data
    for number in ["424242424242424\u00b2", "\u0664" * 16, "4242424242424242\x00"]:  # str.isdigit() says yes
        card = await app.client.post(
            f"/api/orders/{order['id']}/payment", json={**CARD_OK, "card_number": number}, headers=buyer
        )
        assert card.status_code == 422 and problem(card) == "invalid-card", (number, card.text)
    for raw in HOSTILE_IDS:
        paid = await app.client.post(f"/api/orders/{raw}/payment", json=CARD_OK, headers=buyer)
        assert paid.status_code in (404, 422), (raw, paid.status_code, paid.text)
        assert problem(paid)
        read = await app.client.get(f"/api/payments/{raw}", headers=buyer)
        assert read.status_code in (404, 422), (raw, read.status_code, read.text)
        assert problem(read), raw
    unknown = await app.client.post(f"/api/orders/{NO_SUCH_ORDER}/payment", json=CARD_OK, headers=buyer)
    assert unknown.status_code == 404 and problem(unknown) == "not-found"


async def test_every_state_change_of_a_payment_is_in_the_orders_audit_trail(app: Running) -> None:
    buyer = token_for(app)
    order = await order_for(app, buyer)
    url = f"/api/orders/{order['id']}/payment"
    declined = await app.client.post(url, json=CARD_DECLINED, headers=buyer)
    assert declined.status_code == 402
    paid = await app.client.post(url, json=CARD_OK, headers=buyer)
    assert paid.status_code == 200, paid.text
    assert (await app.client.post(f"/api/orders/{order['id']}/cancel", headers=buyer)).status_code == 200

    async def refunded() -> list[dict[str, Any]] | None:
        entries = await audit(app, order["id"])
        return entries if entries and entries[-1]["action"] == "payment.refunded" else None

    entries = await wait_for(refunded)
    payment_id = paid.json()["payment_id"]
    assert [(e["action"], e["entity_id"] == payment_id) for e in entries] == [
        ("payment.started", False),
        ("payment.declined", False),
        ("payment.started", True),
        ("payment.authorized", True),
        ("payment.captured", True),
        ("payment.refunded", True),
    ]
    assert {e["entity"] for e in entries} == {"payment"}
    assert entries[1]["detail"] == {"decline_code": "card_declined"}
    assert entries[4]["detail"] == {"amount_minor": 4500, "currency": "EUR"}
    customer = {e["actor"] for e in entries[:5]}
    assert len(customer) == 1 and customer != {"system"}  # the buyer's own requests
    assert entries[5]["actor"] == "system"  # the refund consumer, not the customer's request
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert await audit(app, NO_SUCH_ORDER) == []


async def test_a_payment_voided_after_the_hold_expired_says_why_in_the_trail(app: Running) -> None:
    clock = FakeClock()
    app.service("booking").clock = clock
    payments = app.service("payments")
    real = payments.processor

    class SlowAuthorization:
        """The card processor, taking so long to authorize that the hold expires meanwhile."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def authorize(self, **kwargs: Any) -> Any:
            clock.advance(seconds=601)
            return await real.authorize(**kwargs)

    payments.processor = SlowAuthorization()
    buyer = token_for(app)
    order = await order_for(app, buyer)
    late = await app.client.post(f"/api/orders/{order['id']}/payment", json=CARD_OK, headers=buyer)
    assert late.status_code == 409 and problem(late) == "hold-expired"
    entries = await audit(app, order["id"])
    assert [e["action"] for e in entries] == ["payment.started", "payment.authorized", "payment.voided"]
    assert entries[-1]["detail"] == {"reason": "hold-expired"}
    again = await app.client.post(f"/api/orders/{order['id']}/payment", json=CARD_OK, headers=buyer)
    assert again.status_code == 409 and len(await audit(app, order["id"])) == 3  # nothing new happened


async def test_the_audit_endpoint_is_internal(app: Running) -> None:
    buyer = token_for(app)
    order = await order_for(app, buyer)
    through_gateway = await app.client.get(f"/internal/orders/{order['id']}/audit", headers=buyer)
    assert through_gateway.status_code in (403, 404)
    direct = httpx.ASGITransport(app=app.service("payments").create_app())
    async with httpx.AsyncClient(transport=direct, base_url="http://payments.test") as client:
        without_token = await client.get(f"/internal/orders/{order['id']}/audit", headers=buyer)
    assert without_token.status_code == 403 and problem(without_token)


# Booking as payments' typed client sees it: every answer maps to a typed result or a domain error.
def booking_stand_in(answers: dict[str, Response]) -> tuple[BookingOrders, list[str]]:
    """A stand-in for booking's internal order endpoints answering ``answers[path]``, and the paths asked."""
    client, seen = booking_http(answers)
    return BookingOrders(lambda: client), seen


def booking_http(answers: dict[str, Response]) -> tuple[ServiceClient, list[str]]:
    seen: list[str] = []
    stand_in = FastAPI()

    @stand_in.api_route("/{path:path}", methods=["GET", "POST"])
    async def answer(path: str) -> Response:
        seen.append(path)
        return answers.get(path, JSONResponse({"type": "/problems/not-found", "status": 404}, status_code=404))

    return ServiceClient("booking", app=stand_in, retries=0, backoff_base=0), seen


ORDER = {
    "id": "o1",
    "user_id": "u1",
    "status": "pending_payment",
    "hold_id": "h1",
    "hold_version": 3,
    "total": 9000,
    "currency": "EUR",
    "expires_at": "2026-12-01T10:00:00Z",
    "items": [],
    "payment_id": None,
}


async def test_the_booking_client_maps_every_answer() -> None:
    conflict = {"type": "/problems/hold-expired", "title": "Hold expired", "status": 409}
    orders, seen = booking_stand_in(
        {
            "internal/orders/o1": JSONResponse(ORDER),
            "internal/orders/broken": JSONResponse({**ORDER, "total": "lots"}),
            "internal/orders/down": JSONResponse({"type": "/problems/internal-error"}, status_code=500),
            "internal/orders/o1/confirm": JSONResponse(ORDER),
            "internal/orders/late/confirm": JSONResponse(conflict, status_code=409),
            "internal/orders/odd/confirm": Response("not json", status_code=409),
        }
    )
    order = await orders.get("o1")
    assert order == BookingOrder("o1", "u1", "pending_payment", "h1", 3, 9000, "EUR")
    assert await orders.get("nobody") is None
    with pytest.raises(ServiceUnavailable):
        await orders.get("broken")
    with pytest.raises(ServiceUnavailable):
        await orders.get("down")
    assert await orders.confirm(order, payment_id="p1") == Confirmed()
    late = BookingOrder("late", "u1", "pending_payment", "h1", 3, 9000, "EUR")
    assert await orders.confirm(late, payment_id="p1") == Refused("hold-expired")
    odd = BookingOrder("odd", "u1", "pending_payment", "h1", 3, 9000, "EUR")
    assert await orders.confirm(odd, payment_id="p1") == Refused("not-confirmed")
    # An id that is not one plain path segment names no order: booking is not asked, so no other endpoint is
    # reached (Starlette decodes %2F before routing) and no invalid URL is built.
    asked = len(seen)
    for hostile in ["o1/confirm", "../o1", "\x00", "a b", "?x=1", "%2F", "..", "", "x" * 65]:
        assert await orders.get(hostile) is None
        unsafe = BookingOrder(hostile, "u1", "pending_payment", "h1", 3, 9000, "EUR")
        assert await orders.confirm(unsafe, payment_id="p1") == Refused("not-found")
    assert len(seen) == asked


async def test_the_booking_client_says_unavailable_when_booking_is_not_deployed() -> None:
    def nowhere() -> ServiceClient:
        raise LookupError("no way to reach booking")

    with pytest.raises(ServiceUnavailable):
        await BookingOrders(nowhere).get("o1")


async def test_a_replayed_payment_says_it_is_a_replay(app: Running) -> None:
    buyer = token_for(app)
    order = await order_for(app, buyer)
    keyed = {**buyer, "Idempotency-Key": "pay-once"}
    url = f"/api/orders/{order['id']}/payment"
    first = await app.client.post(url, json=CARD_OK, headers=keyed)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = await app.client.post(url, json=CARD_OK, headers=keyed)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_key_replayed_while_the_order_still_waits_answers_as_before_and_starts_nothing(app: Running) -> None:
    """A new payment is inserted without reading its key first; the key's unique index finds the payment a
    previous try started (here a declined one, the order still payable): replayed, never started twice."""
    buyer = token_for(app)
    order = await order_for(app, buyer)
    keyed = {**buyer, "Idempotency-Key": "declined-once"}
    url = f"/api/orders/{order['id']}/payment"
    first = await app.client.post(url, json=CARD_DECLINED, headers=keyed)
    assert first.status_code == 402 and problem(first) == "payment-declined"
    again = await app.client.post(url, json=CARD_DECLINED, headers=keyed)
    assert again.status_code == 402 and again.json()["payment_id"] == first.json()["payment_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other_card = await app.client.post(url, json=CARD_OK, headers=keyed)
    assert other_card.status_code == 422 and problem(other_card) == "idempotency-key-reused"
    started = [e for e in await audit(app, order["id"]) if e["action"] == "payment.started"]
    assert len(started) == 1
    paid = await app.client.post(url, json=CARD_OK, headers={**buyer, "Idempotency-Key": "second-try"})
    assert paid.status_code == 200 and paid.json()["payment_id"] != first.json()["payment_id"]


async def test_the_booking_client_follows_whichever_port_is_there_now() -> None:
    """The port is looked up on every call and its type checked once per port: a port that goes away, or an
    object that is not one, sends the call over HTTP; a new port is used at once."""

    @dataclass(frozen=True)
    class Seen:
        id: str
        user_id: str
        status: str
        hold_id: str
        hold_version: int
        total: int
        currency: str

    class Port:
        def __init__(self, total: int) -> None:
            self.total = total

        async def read_order(self, order_id: str) -> Seen:
            return Seen(order_id, "u1", "pending_payment", "h1", 3, self.total, "EUR")

        async def confirm_order(self, order_id: str, *, hold_id: str, hold_version: int, payment_id: str) -> object:
            return None

    http, seen = booking_http({"internal/orders/o1": JSONResponse(ORDER)})
    now: list[object | None] = [Port(100)]
    orders = BookingOrders(lambda: http, local=lambda: now[0])
    assert (order := await orders.get("o1")) is not None and order.total == 100 and seen == []
    now[0] = object()  # not a port: over HTTP
    assert (order := await orders.get("o1")) is not None and order.total == 9000 and seen == ["internal/orders/o1"]
    now[0] = Port(200)
    assert (order := await orders.get("o1")) is not None and order.total == 200
    now[0] = None
    assert (order := await orders.get("o1")) is not None and order.total == 9000 and len(seen) == 2
