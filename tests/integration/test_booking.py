"""Booking and payments behaviour a buyer notices, on SQLite and PostgreSQL, through the gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxoffice.booking.deps import BookingSettings
from boxoffice.payments.deps import PaymentsSettings
from boxoffice.platform.settings import Settings
from boxoffice.tickets.deps import TicketsSettings
from tests.harness.app import FakeClock, Running, running, wait_for
from tests.harness.booking import (
    CARD_DECLINED,
    CARD_NO_FUNDS,
    CARD_OK,
    general_event,
    publish_event,
    reserved_event,
    token_for,
    train_run,
)


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


def kind(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def hold_general(app: Running, event: dict[str, Any], quantity: int, headers: dict[str, str]) -> httpx.Response:
    section_id = event["sections"][0]["section_id"]
    return await app.client.post(
        "/api/holds",
        json={"event_id": event["event_id"], "section_id": section_id, "quantity": quantity},
        headers=headers,
    )


async def buy(
    app: Running, hold: dict[str, Any], headers: dict[str, str], card: dict[str, Any] = CARD_OK
) -> httpx.Response:
    order = await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=headers)
    assert order.status_code == 201, order.text
    return await app.client.post(f"/api/orders/{order.json()['id']}/payment", json=card, headers=headers)


async def availability(app: Running, event_id: str) -> dict[str, Any]:
    response = await app.runtime.clients.get("booking").get(f"/internal/availability/events?ids={event_id}")
    return dict(response.json()["events"][event_id])


async def test_general_admission_hold_order_pay(app: Running) -> None:
    event = general_event(capacity=5)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = await hold_general(app, event, 3, buyer)
    assert hold.status_code == 201
    body = hold.json()
    assert body["status"] == "active" and body["total"] == 3 * 4500 and body["currency"] == "EUR"
    assert len(body["items"]) == 3
    paid = await buy(app, body, buyer)
    assert paid.status_code == 200 and paid.json()["status"] == "confirmed"
    orders = (await app.client.get("/api/orders", headers=buyer)).json()["items"]
    assert [o["status"] for o in orders] == ["confirmed"]
    assert (await availability(app, event["event_id"]))["available"] == 2
    sold_out = await hold_general(app, event, 3, token_for(app))
    assert sold_out.status_code == 409 and kind(sold_out) == "sold-out"


async def test_reserved_seats_cannot_be_held_twice(app: Running) -> None:
    event = reserved_event(rows=1, per_row=4)
    await publish_event(app, event)
    seats = [s["seat_id"] for s in event["sections"][0]["seats"]]
    first = await app.client.post(
        "/api/holds", json={"event_id": event["event_id"], "seat_ids": seats[:2]}, headers=token_for(app)
    )
    assert first.status_code == 201
    clash = await app.client.post(
        "/api/holds", json={"event_id": event["event_id"], "seat_ids": seats[1:3]}, headers=token_for(app)
    )
    assert clash.status_code == 409 and kind(clash) == "seat-unavailable"
    state = await availability(app, event["event_id"])
    assert state["seats"] == {seats[0]: "held", seats[1]: "held"} and state["available"] == 2


async def test_train_segments_share_a_seat_only_when_they_do_not_overlap(app: Running) -> None:
    run = train_run(seats_per_class=1)
    await publish_event(app, run)
    seat = run["classes"][0]["coaches"][0]["seats"][0]["seat_id"]

    async def hold(origin: str, destination: str) -> httpx.Response:
        body = {
            "run_id": run["run_id"],
            "class_code": "3A",
            "origin": origin,
            "destination": destination,
            "seat_ids": [seat],
        }
        return await app.client.post("/api/holds", json=body, headers=token_for(app))

    assert (await hold("NDLS", "KOTA")).status_code == 201  # A->B
    assert (await hold("KOTA", "RTM")).status_code == 201  # B->C is still free
    clash = await hold("NDLS", "RTM")  # A->C overlaps both
    assert clash.status_code == 409 and kind(clash) == "seat-unavailable"
    backwards = await hold("BCT", "NDLS")
    assert backwards.status_code == 422 and kind(backwards) == "invalid-segment"
    by_quantity = {"run_id": run["run_id"], "class_code": "3A", "origin": "RTM", "destination": "BCT", "quantity": 1}
    assert (await app.client.post("/api/holds", json=by_quantity, headers=token_for(app))).status_code == 201
    by_quantity["origin"] = "NDLS"
    sold_out = await app.client.post("/api/holds", json=by_quantity, headers=token_for(app))
    assert sold_out.status_code == 409 and kind(sold_out) == "sold-out"


async def test_expired_holds_are_free_before_the_sweeper_runs(app: Running) -> None:
    clock = FakeClock()
    booking = app.service("booking")
    booking.clock = clock
    event = general_event(capacity=2)
    await publish_event(app, event)
    owner = token_for(app)
    held = await hold_general(app, event, 2, owner)
    assert held.status_code == 201
    assert (await hold_general(app, event, 1, token_for(app))).status_code == 409
    clock.advance(seconds=601)  # the sweeper runs on real time, which has not moved: only the clock says expired
    assert (await availability(app, event["event_id"]))["available"] == 2
    assert (await hold_general(app, event, 2, token_for(app))).status_code == 201
    stale = await app.client.get(f"/api/holds/{held.json()['id']}", headers=owner)
    assert stale.json()["status"] == "expired"
    too_late = await app.client.post("/api/orders", json={"hold_id": held.json()["id"]}, headers=owner)
    assert too_late.status_code == 409 and kind(too_late) == "hold-expired"


async def test_release_frees_at_once_and_the_sweeper_announces_expiry(app: Running) -> None:
    event = general_event(capacity=1)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    assert (await app.client.delete(f"/api/holds/{hold['id']}", headers=buyer)).status_code == 204
    assert (await app.client.get(f"/api/holds/{hold['id']}", headers=buyer)).json()["status"] == "released"
    again = await app.client.delete(f"/api/holds/{hold['id']}", headers=buyer)
    assert again.status_code == 409
    other = token_for(app)
    second = (await hold_general(app, event, 1, other)).json()
    clock = FakeClock()
    clock.advance(seconds=601)
    app.service("booking").clock = clock

    async def expired() -> bool:
        return (await app.client.get(f"/api/holds/{second['id']}", headers=other)).json()["status"] == "expired"

    await wait_for(expired)
    from boxoffice.booking import store

    async def announced() -> bool:
        async with app.service("booking").db.read() as conn:
            hold = await store.hold_of(conn, second["id"])
            return hold is not None and hold.status == "expired"

    await wait_for(announced)


async def test_per_customer_limits_hold_under_concurrency(app: Running) -> None:
    event = general_event(capacity=100)
    await publish_event(app, event)
    buyer = token_for(app)
    results = await asyncio.gather(*[hold_general(app, event, 3, buyer) for _ in range(8)])
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 3, codes  # 3 active holds at most (and 9 <= 10 tickets)
    assert all(kind(r) == "limit-reached" for r in results if r.status_code == 429)
    assert all(int(r.headers["Retry-After"]) > 0 for r in results if r.status_code == 429)
    # Tickets per event: 9 held, one more ticket is fine, two are not.
    hold_ids = [r.json()["id"] for r in results if r.status_code == 201]
    await app.client.delete(f"/api/holds/{hold_ids[0]}", headers=buyer)
    assert (await hold_general(app, event, 5, buyer)).status_code == 429
    assert (await hold_general(app, event, 4, buyer)).status_code == 201


async def test_idempotency_key_replays_and_refuses_another_body(app: Running) -> None:
    event = general_event(capacity=10)
    await publish_event(app, event)
    buyer = {**token_for(app), "Idempotency-Key": "hold-1"}
    first, second = await asyncio.gather(hold_general(app, event, 2, buyer), hold_general(app, event, 2, buyer))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert (await availability(app, event["event_id"]))["available"] == 8
    other_body = await hold_general(app, event, 3, buyer)
    assert other_body.status_code == 422 and kind(other_body) == "idempotency-key-reused"


async def test_one_charge_per_idempotency_key_and_per_order(app: Running) -> None:
    event = general_event(capacity=10)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
    keyed = {**buyer, "Idempotency-Key": "pay-1"}
    url = f"/api/orders/{order['id']}/payment"
    same = await asyncio.gather(*[app.client.post(url, json=CARD_OK, headers=keyed) for _ in range(3)])
    assert {r.status_code for r in same} == {200} and len({r.json()["payment_id"] for r in same}) == 1
    another_key = await app.client.post(url, json=CARD_OK, headers={**buyer, "Idempotency-Key": "pay-2"})
    assert another_key.status_code == 409 and kind(another_key) == "order-not-payable"
    from boxoffice.payments import store

    async with app.service("payments").db.read() as conn:
        captured = await store.captured_for_order(conn, order["id"])
    assert len(captured) == 1


async def test_a_hold_ordered_several_times_at_once_gets_one_order_and_clear_409s(app: Running) -> None:
    """The order is inserted at once and the hold's unique index decides: on PostgreSQL, where concurrent
    requests all read "no order yet", the losers get 409 ``/hold-already-ordered`` naming the order, not a 500."""
    event = general_event(capacity=10)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    tries = await asyncio.gather(
        *[app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer) for _ in range(6)]
    )
    placed = [r for r in tries if r.status_code == 201]
    assert len(placed) == 1, [r.text for r in tries]
    for refused in (r for r in tries if r.status_code != 201):
        assert refused.status_code == 409 and kind(refused) == "hold-already-ordered", refused.text
        assert refused.json()["order_id"] == placed[0].json()["id"]
    history = await app.client.get(f"/api/orders/{placed[0].json()['id']}/history", headers=buyer)
    assert [e["action"] for e in history.json()["items"]].count("order.placed") == 1


async def test_declines_release_nothing(app: Running) -> None:
    event = general_event(capacity=1)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
    url = f"/api/orders/{order['id']}/payment"
    declined = await app.client.post(url, json=CARD_DECLINED, headers=buyer)
    assert declined.status_code == 402 and kind(declined) == "payment-declined"
    no_funds = await app.client.post(url, json=CARD_NO_FUNDS, headers=buyer)
    assert no_funds.status_code == 402 and no_funds.json()["decline_code"] == "insufficient_funds"
    assert (await availability(app, event["event_id"]))["available"] == 0  # the hold still stands
    assert (await app.client.post(url, json=CARD_OK, headers=buyer)).status_code == 200


async def test_payment_after_expiry_is_voided_with_a_clear_409(app: Running) -> None:
    clock = FakeClock()
    app.service("booking").clock = clock
    event = general_event(capacity=1)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
    clock.advance(seconds=601)
    late = await app.client.post(f"/api/orders/{order['id']}/payment", json=CARD_OK, headers=buyer)
    assert late.status_code == 409 and kind(late) == "hold-expired"
    assert (await app.client.get(f"/api/orders/{order['id']}", headers=buyer)).json()["status"] == "expired"


async def test_cancel_refunds_and_puts_seats_back(app: Running) -> None:
    event = reserved_event(rows=1, per_row=2)
    await publish_event(app, event)
    buyer = token_for(app)
    seat = event["sections"][0]["seats"][0]["seat_id"]
    hold = (
        await app.client.post("/api/holds", json={"event_id": event["event_id"], "seat_ids": [seat]}, headers=buyer)
    ).json()
    paid = (await buy(app, hold, buyer)).json()
    cancelled = await app.client.post(f"/api/orders/{paid['order_id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await availability(app, event["event_id"]))["seats"] == {}
    payment_url = f"/api/payments/{paid['payment_id']}"

    async def refunded() -> bool:
        return (await app.client.get(payment_url, headers=buyer)).json()["status"] == "refunded"

    await wait_for(refunded)
    assert (await app.client.post(f"/api/orders/{paid['order_id']}/cancel", headers=buyer)).status_code == 409


async def test_other_customers_and_strangers_see_nothing(app: Running) -> None:
    event = general_event(capacity=5)
    await publish_event(app, event)
    owner, stranger = token_for(app), token_for(app)
    hold = (await hold_general(app, event, 1, owner)).json()
    assert (await app.client.get(f"/api/holds/{hold['id']}", headers=stranger)).status_code == 404
    assert (await app.client.delete(f"/api/holds/{hold['id']}", headers=stranger)).status_code == 404
    assert (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=stranger)).status_code == 404
    assert (await app.client.post("/api/holds", json={"event_id": event["event_id"]})).status_code == 401
    # The internal confirmation is not reachable through the gateway, nor without the service token.
    assert (await app.client.post("/internal/orders/x/confirm", json={}, headers=owner)).status_code == 404
    booking_app = app.runtime.apps["booking"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=booking_app), base_url="http://b") as direct:
        forged = await direct.post(
            "/internal/orders/x/confirm", json={"hold_id": "h", "hold_version": 1, "payment_id": "p"}
        )
        assert forged.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"event_id": "e", "section_id": "s", "quantity": 0},
        {"event_id": "e", "section_id": "s", "quantity": 2, "seat_ids": ["a"]},
        {"event_id": "e", "seat_ids": ["a", "a"]},
        {"run_id": "r", "quantity": 1},
        {"event_id": "e", "section_id": "s", "quantity": 1, "colour": "red"},
        {},
    ],
)
async def test_malformed_holds_are_422_and_change_nothing(app: Running, body: dict[str, Any]) -> None:
    response = await app.client.post("/api/holds", json=body, headers=token_for(app))
    assert response.status_code == 422 and kind(response) == "validation-error"


async def test_unknown_event_and_section(app: Running) -> None:
    event = general_event()
    await publish_event(app, event)
    unknown = await app.client.post(
        "/api/holds", json={"event_id": "nope", "section_id": "s", "quantity": 1}, headers=token_for(app)
    )
    assert unknown.status_code == 404
    wrong_section = await app.client.post(
        "/api/holds", json={"event_id": event["event_id"], "section_id": "s", "quantity": 1}, headers=token_for(app)
    )
    assert wrong_section.status_code == 400 and kind(wrong_section) == "invalid-selection"
    other = general_event()
    await publish_event(app, other)
    other_events_section = {"event_id": event["event_id"], "section_id": other["sections"][0]["section_id"]}
    elsewhere = await app.client.post("/api/holds", json={**other_events_section, "quantity": 1}, headers=token_for(app))
    assert elsewhere.status_code == 400 and kind(elsewhere) == "invalid-selection"


def booking_entries(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["action"], e["actor"]) for e in history["items"] if e["action"].startswith(("hold.", "order."))]


async def test_order_history_is_the_audit_trail_of_every_change(app: Running) -> None:
    event = general_event(capacity=5)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 2, buyer)).json()
    paid = (await buy(app, hold, buyer)).json()
    order_id, payment_id = paid["order_id"], paid["payment_id"]
    user_id = (await app.client.get(f"/api/orders/{order_id}", headers=buyer)).json()["user_id"]
    url = f"/api/orders/{order_id}/history"

    async def actions_once(wanted: str) -> list[str] | None:
        actions = [e["action"] for e in (await app.client.get(url, headers=buyer)).json()["items"]]
        return actions if wanted in actions else None

    await wait_for(lambda: actions_once("ticket.issued"))  # tickets issues them from the confirmation event
    assert (await app.client.post(f"/api/orders/{order_id}/cancel", headers=buyer)).status_code == 200
    actions = await wait_for(lambda: actions_once("ticket.voided"))  # and voids them on the cancellation
    assert actions.count("ticket.issued") == 2 and actions.count("ticket.voided") == 2
    assert {"payment.started", "payment.captured"} <= set(actions), actions

    response = await app.client.get(url, headers=buyer)
    assert response.status_code == 200
    history = response.json()
    assert history["incomplete"] == []
    assert booking_entries(history) == [
        ("hold.placed", user_id),
        ("order.placed", user_id),
        ("hold.confirmed", f"payment:{payment_id}"),
        ("order.confirmed", f"payment:{payment_id}"),
        ("hold.cancelled", user_id),
        ("order.cancelled", user_id),
    ]
    assert [e["at"] for e in history["items"]] == sorted(e["at"] for e in history["items"])
    assert history["items"][0]["detail"]["quantity"] == 2
    assert all(set(e) == {"at", "actor", "action", "detail"} for e in history["items"])


async def test_order_history_is_for_its_customer_and_admins_only(app: Running) -> None:
    event = general_event(capacity=5)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
    url = f"/api/orders/{order['id']}/history"
    assert (await app.client.get(url, headers=token_for(app))).status_code == 404
    assert (await app.client.get(url)).status_code == 401
    assert (await app.client.get("/api/orders/nope/history", headers=buyer)).status_code == 404
    admin = await app.client.get(url, headers=token_for(app, roles=("admin",)))
    assert admin.status_code == 200 and [a for a, _ in booking_entries(admin.json())] == ["hold.placed", "order.placed"]


async def test_expiry_is_recorded_as_done_by_the_system(app: Running) -> None:
    event = general_event(capacity=1)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
    clock = FakeClock()
    clock.advance(seconds=601)
    app.service("booking").clock = clock
    url = f"/api/orders/{order['id']}/history"

    async def swept() -> bool:
        return len(booking_entries((await app.client.get(url, headers=buyer)).json())) == 4

    await wait_for(swept)  # the sweeper ends the hold and its pending order
    entries = booking_entries((await app.client.get(url, headers=buyer)).json())
    assert entries[2:] == [("hold.expired", "system"), ("order.expired", "system")]


async def test_an_order_is_shown_without_tickets_while_tickets_cannot_be_reached(app: Running) -> None:
    event = general_event(capacity=2)
    await publish_event(app, event)
    buyer = token_for(app)
    hold = (await hold_general(app, event, 1, buyer)).json()
    paid = (await buy(app, hold, buyer)).json()
    shown = await app.client.get(f"/api/orders/{paid['order_id']}", headers=buyer)
    assert shown.status_code == 200  # tickets does not run here
    assert shown.json()["status"] == "confirmed" and shown.json()["tickets"] == []


async def test_a_train_order_names_a_passenger_per_seat_and_says_what_was_bought(app: Running) -> None:
    run = train_run(seats_per_class=4)
    await publish_event(app, run)
    buyer = token_for(app)
    seats = [s["seat_id"] for s in run["classes"][0]["coaches"][0]["seats"][:2]]
    body = {"run_id": run["run_id"], "class_code": "3A", "origin": "KOTA", "destination": "BCT", "seat_ids": seats}
    hold = (await app.client.post("/api/holds", json=body, headers=buyer)).json()
    # The checkout reads what the hold is for: stations by name, times in UTC with each station's zone.
    seen = (await app.client.get(f"/api/holds/{hold['id']}", headers=buyer)).json()
    train = seen["train"]
    assert (train["origin"]["name"], train["destination"]["name"]) == ("Kota Junction", "Mumbai Central")
    assert train["origin"]["timezone"] == "Asia/Kolkata"
    assert instant(train["origin"]["at"]) == instant(run["stops"][1]["departs_at"])
    assert instant(train["destination"]["at"]) == instant(run["stops"][3]["arrives_at"])
    assert train["class_name"] == "AC 3 Tier"

    refusals = [
        ({"hold_id": hold["id"]}, "invalid-passengers"),  # a train ticket is personal: names are required
        ({"hold_id": hold["id"], "passengers": [{"seat_id": seats[0], "name": "Asha Rao"}]}, "invalid-passengers"),
        (
            {"hold_id": hold["id"], "passengers": [{"seat_id": seats[0], "name": "Asha"}, {"seat_id": "x", "name": "B"}]},
            "invalid-passengers",
        ),
        (
            {"hold_id": hold["id"], "passengers": [{"seat_id": s, "name": "Asha\u0000Rao"} for s in seats]},
            "invalid-passengers",
        ),
        ({"hold_id": hold["id"], "passengers": [{"seat_id": s, "name": ""} for s in seats]}, "validation-error"),
        ({"hold_id": hold["id"], "passengers": [{"seat_id": seats[0], "name": "A"}] * 2}, "validation-error"),
    ]
    for order_body, problem in refusals:
        refused = await app.client.post("/api/orders", json=order_body, headers=buyer)
        assert refused.status_code == 422 and kind(refused) == problem, (order_body, refused.text)
    assert (await app.client.get("/api/orders", headers=buyer)).json()["items"] == []  # nothing was placed

    names = {seats[0]: "  Asha   Rao ", seats[1]: "Дмитрий Иванов"}
    order_body = {"hold_id": hold["id"], "passengers": [{"seat_id": s, "name": n} for s, n in names.items()]}
    placed = await app.client.post("/api/orders", json=order_body, headers=buyer)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert [i["passenger"] for i in order["items"]] == ["Asha Rao", "Дмитрий Иванов"]
    number = order["number"]
    assert len(number) == 8 and set(number) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert order["train"]["destination"]["name"] == "Mumbai Central" and order["event"] is None
    paid = await app.client.post(f"/api/orders/{order['id']}/payment", json=CARD_OK, headers=buyer)
    assert paid.status_code == 200, paid.text

    # The buyer finds it by number as read out on the phone: any case, with a dash, an O for a zero.
    spoken = f"{number[:4]}-{number[4:]}".lower().replace("0", "o")
    found = (await app.client.get("/api/orders", params={"number": spoken}, headers=buyer)).json()["items"]
    assert [o["id"] for o in found] == [order["id"]] and found[0]["number"] == number
    assert (await app.client.get("/api/orders", params={"number": "ZZZZZZZZ"}, headers=buyer)).json()["items"] == []
    assert (await app.client.get("/api/orders", params={"number": "no!"}, headers=buyer)).json()["items"] == []
    stranger = await app.client.get("/api/orders", params={"number": number}, headers=token_for(app))
    assert stranger.json()["items"] == []  # another customer's number finds nothing

    # The bus record carries what tickets print and mail: number, address, each passenger, the zones.
    record = await confirmed_record(app, order["id"])
    assert record["number"] == number and record["email"].endswith("@example.com")
    assert [i["passenger"] for i in record["items"]] == ["Asha Rao", "Дмитрий Иванов"]
    assert record["train"]["origin_name"] == "Kota Junction" and record["train"]["origin_timezone"] == "Asia/Kolkata"


async def test_an_event_order_has_a_number_and_its_venue_but_takes_no_passengers(app: Running) -> None:
    event = reserved_event(rows=1, per_row=4)
    await publish_event(app, event)
    buyer = token_for(app)
    seat = event["sections"][0]["seats"][0]["seat_id"]
    hold = (await app.client.post("/api/holds", json={"event_id": event["event_id"], "seat_ids": [seat]}, headers=buyer)).json()
    named = {"hold_id": hold["id"], "passengers": [{"seat_id": seat, "name": "Ann"}]}
    refused = await app.client.post("/api/orders", json=named, headers=buyer)
    assert refused.status_code == 422 and kind(refused) == "invalid-passengers"
    order = (await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)).json()
    assert order["event"]["venue"] == "Old Vic" and order["event"]["address"] == "The Cut, London SE1 8NB"
    assert order["event"]["timezone"] == "Europe/London" and order["train"] is None
    other = (await app.client.post("/api/holds", json={"event_id": event["event_id"], "seat_ids": [
        event["sections"][0]["seats"][1]["seat_id"]]}, headers=buyer)).json()
    second = (await app.client.post("/api/orders", json={"hold_id": other["id"]}, headers=buyer)).json()
    assert second["number"] != order["number"]
    detail = (await app.client.get(f"/api/orders/{order['id']}", headers=buyer)).json()
    assert detail["number"] == order["number"] and detail["event"]["name"] == "Hamlet"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def confirmed_record(app: Running, order_id: str) -> dict[str, Any]:
    """The order's ``booking.order-confirmed`` record, read from the bus by a fresh consumer group."""
    consumer = app.runtime.bus.consumer(f"test-{uuid.uuid4().hex[:8]}", ["ticket-bookings"])
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:

        async def seen() -> bool:
            found.extend(
                dict(r.envelope.data)
                for r in await consumer.poll(timeout=0.5)
                if r.envelope.data.get("order_id") == order_id and r.envelope.type == "booking.order-confirmed"
            )
            return bool(found)

        await wait_for(seen)
    finally:
        await consumer.stop()
    return found[0]


async def test_an_order_number_someone_has_is_drawn_again(app: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders are inserted without looking the number up first; the number's unique index finds a taken one
    (2^40 numbers: rare, but certain in a long enough life) and a new one is drawn."""
    from boxoffice.booking import domain

    drawn = iter(["K7M29QXD", "K7M29QXD", "K7M29QXE"])  # the second order draws the first one's number first
    monkeypatch.setattr(domain, "new_order_number", lambda: next(drawn))
    event = general_event(capacity=5)
    await publish_event(app, event)
    buyer = token_for(app)
    numbers = []
    for _ in range(2):
        hold = (await hold_general(app, event, 1, buyer)).json()
        order = await app.client.post("/api/orders", json={"hold_id": hold["id"]}, headers=buyer)
        assert order.status_code == 201, order.text
        numbers.append(order.json()["number"])
    assert numbers == ["K7M29QXD", "K7M29QXE"]


async def test_the_sections_row_is_the_last_write_before_commit(tmp_path: Path) -> None:
    """A general-admission section's row is changed by every hold and every sale of the section; PostgreSQL
    keeps it locked from that change until COMMIT. So a hold changes it after its own rows (followed only by
    its event's outbox row), and a payment's confirmation changes it as its last statement. The order is
    the code's, the same on every database: seen here in SQLite's trace of booking's one writer connection."""
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "booking", "payments"]) as app:
        event = general_event(capacity=5)
        await publish_event(app, event)
        booking = app.service("booking")
        async with booking.db.uow() as uow:  # the pool's one writer connection, which every write uses
            raw = (await uow.conn.get_raw_connection()).driver_connection.raw
        statements: list[str] = []
        raw.set_trace_callback(lambda sql: statements.append(" ".join(sql.split()[:3]).upper()))
        try:
            buyer = token_for(app)
            hold = await hold_general(app, event, 2, buyer)
            assert hold.status_code == 201, hold.text
            assert (await buy(app, hold.json(), buyer)).status_code == 200
        finally:
            raw.set_trace_callback(None)
    changes = [n for n, sql in enumerate(statements) if sql.startswith("UPDATE SECTIONS SET")]
    assert len(changes) == 2, statements  # the claim and the sale
    claim, sale = changes
    assert statements[claim + 1 :][:2] == ["INSERT INTO OUTBOX", "COMMIT"], statements
    assert statements[sale + 1 :][:1] == ["COMMIT"], statements
    assert "INSERT INTO HOLDS" in statements[:claim]
