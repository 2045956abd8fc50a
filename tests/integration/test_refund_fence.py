"""No refund for a used ticket: booking's cancel asks tickets to fence the order first (docs/contracts.md).

The whole path runs: a buyer holds, orders and pays through booking and payments, tickets issues the
tickets from the real ``ticket-bookings`` event, a gate admits one, and the cancellation is refused; a
cancellation and a check-in racing each other have exactly one winner. On SQLite and PostgreSQL, each
service on its own database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxoffice.booking.deps import BookingSettings
from boxoffice.payments.deps import PaymentsSettings
from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.settings import Settings
from boxoffice.tickets.deps import TicketsSettings
from tests.harness.app import Running, running, wait_for
from tests.harness.booking import CARD_OK, publish_event, reserved_event, token_for

SERVICES = ["identity", "booking", "payments", "tickets"]


def configs_for(db_factory: Callable[[str], str]) -> dict[str, Any]:
    return {
        "booking": BookingSettings(database_url=db_factory("booking")),
        "payments": PaymentsSettings(database_url=db_factory("payments")),
        "tickets": TicketsSettings(database_url=db_factory("tickets")),
    }


@pytest.fixture
async def app(tmp_path: Path, db_factory: Callable[[str], str]) -> AsyncIterator[Running]:
    async with running(Settings(data_dir=tmp_path, demo=False), SERVICES, configs=configs_for(db_factory)) as app:
        yield app


def problem(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def paid_order(app: Running, event: dict[str, Any], seat_ids: list[str], buyer: dict[str, str]) -> str:
    body = {"event_id": event["event_id"], "seat_ids": seat_ids}
    hold = await app.client.post("/api/holds", json=body, headers=buyer)
    assert hold.status_code == 201, hold.text
    order = await app.client.post("/api/orders", json={"hold_id": hold.json()["id"]}, headers=buyer)
    assert order.status_code == 201, order.text
    paid = await app.client.post(f"/api/orders/{order.json()['id']}/payment", json=CARD_OK, headers=buyer)
    assert paid.status_code == 200 and paid.json()["status"] == "confirmed", paid.text
    return str(order.json()["id"])


async def tickets_of(app: Running, order_id: str) -> list[dict[str, Any]]:
    response = await app.runtime.clients.get("tickets").get(f"/internal/orders/{order_id}/tickets")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def issued(app: Running, order_id: str, count: int) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]] | None:
        items = await tickets_of(app, order_id)
        return items if len(items) == count else None

    result: list[dict[str, Any]] = await wait_for(ready, timeout=20)
    return result


async def sold_seats(app: Running, event_id: str) -> dict[str, str]:
    response = await app.runtime.clients.get("booking").get(f"/internal/availability/events?ids={event_id}")
    return dict(response.json()["events"][event_id]["seats"])


async def payment_status(app: Running, order_id: str, buyer: dict[str, str]) -> str:
    order = (await app.client.get(f"/api/orders/{order_id}", headers=buyer)).json()
    return str((await app.client.get(f"/api/payments/{order['payment_id']}", headers=buyer)).json()["status"])


async def test_a_checked_in_ticket_cannot_be_refunded(app: Running) -> None:
    event = reserved_event(rows=1, per_row=4)
    await publish_event(app, event)
    buyer, gate = token_for(app), token_for(app, roles=("staff",))
    seats = [s["seat_id"] for s in event["sections"][0]["seats"][:2]]
    order_id = await paid_order(app, event, seats, buyer)
    tickets = await issued(app, order_id, 2)
    admitted = await app.client.post("/api/checkin", json={"code": tickets[1]["code"]}, headers=gate)
    assert admitted.status_code == 200, admitted.text

    refused = await app.client.post(f"/api/orders/{order_id}/cancel", headers=buyer)
    assert refused.status_code == 409 and problem(refused) == "ticket-used", refused.text

    # Nothing changed anywhere: the order is paid, the seats sold, the payment captured, the other ticket valid.
    order = (await app.client.get(f"/api/orders/{order_id}", headers=buyer)).json()
    assert order["status"] == "confirmed"
    assert await sold_seats(app, event["event_id"]) == dict.fromkeys(seats, "sold")
    assert await payment_status(app, order_id, buyer) == "captured"
    assert sorted(t["status"] for t in await tickets_of(app, order_id)) == ["used", "valid"]
    second = await app.client.post("/api/checkin", json={"code": tickets[0]["code"]}, headers=gate)
    assert second.status_code == 200, second.text


async def test_a_cancelled_orders_tickets_no_longer_admit(app: Running) -> None:
    event = reserved_event(rows=1, per_row=2)
    await publish_event(app, event)
    buyer, gate = token_for(app), token_for(app, roles=("staff",))
    order_id = await paid_order(app, event, [event["sections"][0]["seats"][0]["seat_id"]], buyer)
    (ticket,) = await issued(app, order_id, 1)
    cancelled = await app.client.post(f"/api/orders/{order_id}/cancel", headers=buyer)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # Voided in the same step as the refusal would have been decided, not later by the event.
    assert [t["status"] for t in await tickets_of(app, order_id)] == ["voided"]
    late = await app.client.post("/api/checkin", json={"code": ticket["code"]}, headers=gate)
    assert late.status_code == 409 and problem(late) == "voided"

    async def refunded() -> bool:
        return await payment_status(app, order_id, buyer) == "refunded"

    await wait_for(refunded)


async def test_a_race_of_cancel_and_check_in_has_exactly_one_winner(app: Running) -> None:
    event = reserved_event(rows=1, per_row=8)
    await publish_event(app, event)
    gate = token_for(app, roles=("staff",))
    seat_ids = [s["seat_id"] for s in event["sections"][0]["seats"]]
    rounds = []
    for seat_id in seat_ids:
        buyer = token_for(app)
        order_id = await paid_order(app, event, [seat_id], buyer)
        rounds.append((buyer, order_id, seat_id))
    codes = {order_id: (await issued(app, order_id, 1))[0]["code"] for _, order_id, _ in rounds}

    async def race(buyer: dict[str, str], order_id: str) -> tuple[httpx.Response, httpx.Response]:
        cancel = app.client.post(f"/api/orders/{order_id}/cancel", headers=buyer)
        check_in = app.client.post("/api/checkin", json={"code": codes[order_id]}, headers=gate)
        first, second = await asyncio.gather(cancel, check_in)
        return first, second

    results = await asyncio.gather(*(race(buyer, order_id) for buyer, order_id, _ in rounds))
    sold = await sold_seats(app, event["event_id"])
    for (buyer, order_id, seat_id), (cancel, check_in) in zip(rounds, results, strict=True):
        (ticket,) = await tickets_of(app, order_id)
        order = (await app.client.get(f"/api/orders/{order_id}", headers=buyer)).json()
        if cancel.status_code == 200:
            assert check_in.status_code == 409 and problem(check_in) == "voided", check_in.text
            assert order["status"] == "cancelled" and ticket["status"] == "voided"
            assert seat_id not in sold
        else:
            assert cancel.status_code == 409 and problem(cancel) == "ticket-used", cancel.text
            assert check_in.status_code == 200, check_in.text
            assert order["status"] == "confirmed" and ticket["status"] == "used"
            assert sold.get(seat_id) == "sold"
            assert await payment_status(app, order_id, buyer) == "captured"


async def test_a_fence_before_issuance_stops_the_tickets_from_ever_being_issued(app: Running) -> None:
    tickets = app.runtime.clients.get("tickets")
    order_id = "0195fe00-0000-7000-8000-00000000f00d"
    body = {"user_id": "u-1", "kind": "event", "event_id": "ev-fenced", "holder_name": "Ann"}
    fenced = await tickets.post(f"/internal/orders/{order_id}/void", json=body)
    assert fenced.status_code == 200 and fenced.json() == {"order_id": order_id, "voided": 0}
    again = await tickets.post(f"/internal/orders/{order_id}/void", json=body)
    assert again.status_code == 200 and again.json()["voided"] == 0
    late = {
        "event_id": "ev-fenced",
        "user_id": "u-1",
        "order_id": order_id,
        "ticket_count": 1,
        "status": "confirmed",
        "kind": "event",
        "holder_name": "Ann",
        "items": [{"seat_id": None, "label": "Floor", "section": "Floor", "price": 100}],
        "event": {"name": "Fenced", "venue": "Hall", "city": "Oslo", "starts_at": "2026-12-01T19:30:00Z"},
    }
    marker = {**late, "order_id": "0195fe00-0000-7000-8000-00000000beef"}
    await app.runtime.bus.publish(
        [
            new_event("booking.order-confirmed", source="booking", key="ev-fenced", data=d, topic="ticket-bookings")
            for d in (late, marker)
        ]
    )
    await issued(app, marker["order_id"], 1)  # handled after the fenced one (same key)
    assert await tickets_of(app, order_id) == []
    # The fence is internal only.
    assert (await app.client.post(f"/internal/orders/{order_id}/void", json=body)).status_code == 404


async def test_cancel_is_refused_while_tickets_cannot_answer(tmp_path: Path, db_factory: Callable[[str], str]) -> None:
    settings = Settings(data_dir=tmp_path, demo=False)
    names = ["identity", "booking", "payments"]  # tickets is not running: booking cannot fence the order
    async with running(settings, names, configs=configs_for(db_factory)) as app:
        event = reserved_event(rows=1, per_row=2)
        await publish_event(app, event)
        buyer = token_for(app)
        seat = event["sections"][0]["seats"][0]["seat_id"]
        order_id = await paid_order(app, event, [seat], buyer)
        refused = await app.client.post(f"/api/orders/{order_id}/cancel", headers=buyer)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        order = (await app.client.get(f"/api/orders/{order_id}", headers=buyer)).json()
        assert order["status"] == "confirmed"
        assert await sold_seats(app, event["event_id"]) == {seat: "sold"}
        assert await payment_status(app, order_id, buyer) == "captured"
        # The order's history says its tickets part is missing rather than leaving it out silently.
        history = (await app.client.get(f"/api/orders/{order_id}/history", headers=buyer)).json()
        assert "tickets" in history["incomplete"]
