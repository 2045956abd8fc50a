"""The buyer's and the gate's journeys over real HTTP against ``boxoffice run`` with its demo data.

register -> browse -> hold -> order -> pay -> the confirmed order with its tickets -> the PDF -> check-in,
for a general-admission event and for a train seat on a segment; then a cancellation with its refund.
Each journey runs against ``boxoffice run`` in one process, again with ``--api-processes 2`` (two
processes serve the API on one port, a third runs the workers, over the same SQLite files), and with
``--workers-apart`` (one API process, one worker process).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.harness.server import Server, boxoffice_run

ADMIN = {"email": "admin@example.com", "password": "admin-password-2026"}
CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


@pytest.fixture(
    scope="module",
    params=[(), ("--api-processes", "2"), ("--workers-apart",)],
    ids=["one-process", "api-processes-2", "workers-apart"],
)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"BOXOFFICE_ADMIN_EMAIL": ADMIN["email"], "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"]}
    args: tuple[str, ...] = request.param
    with boxoffice_run(tmp_path_factory.mktemp("e2e") / "var", env=env, args=args, timeout=120) as server:
        yield server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=15) as client:
        yield client


def eventually(fetch: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("not there in time")
        time.sleep(0.1)


def sign_up(client: httpx.Client, email: str) -> dict[str, str]:
    response = client.post(
        "/api/auth/register", json={"email": email, "password": "an-e2e-password!", "name": "E2E Fan"}
    )
    assert response.status_code == 201, response.text

    def code() -> str | None:
        items = client.get("/api/dev/mailbox", params={"to": email}).json()["items"]
        return re.search(r"\b(\d{6})\b", items[0]["text"]).group(1) if items else None  # type: ignore[union-attr]

    tokens = client.post("/api/auth/verify", json={"email": email, "code": eventually(code)}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def admin_headers(client: httpx.Client) -> dict[str, str]:
    tokens = client.post("/api/auth/login", json=ADMIN).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def place_hold(client: httpx.Client, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The hold, once booking has what the catalog lists: the catalog's events reach booking over the bus, so
    for a moment after start an event listed may still answer 404 "Not on sale". Any other answer fails."""

    def on_sale() -> httpx.Response | None:
        response = client.post("/api/holds", json=body, headers=headers)
        if response.status_code == 404 and response.json().get("title") == "Not on sale":
            return None
        return response

    hold = eventually(on_sale, timeout=60)
    assert hold.status_code == 201, hold.text
    return dict(hold.json())


def pay(client: httpx.Client, hold: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"hold_id": hold["id"]}
    if "run_id" in hold:  # a train ticket is personal: a passenger name per seat
        body["passengers"] = [{"seat_id": i["seat_id"], "name": f"Passenger {n}"} for n, i in enumerate(hold["items"])]
    order = client.post("/api/orders", json=body, headers=headers)
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "pending_payment"
    paid = client.post(
        f"/api/orders/{order.json()['id']}/payment", json=CARD, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "confirmed"
    return dict(paid.json())


def tickets_of(client: httpx.Client, order_id: str, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        order = client.get(f"/api/orders/{order_id}", headers=headers).json()
        tickets = order["tickets"]
        return tickets if len(tickets) == count and all(t["pdf_url"] for t in tickets) else None

    return list(eventually(ready, timeout=30))


def test_general_admission_purchase_to_check_in(client: httpx.Client) -> None:
    buyer = sign_up(client, "ga-fan@example.com")
    events = client.get("/api/events", params={"category": "concert", "limit": 50}).json()["items"]
    event = next(e for e in events if e["seating"] == "general" and e["available"] >= 2)
    detail = client.get(f"/api/events/{event['id']}").json()
    section = detail["sections"][0]
    hold = place_hold(client, {"event_id": event["id"], "section_id": section["id"], "quantity": 2}, buyer)
    assert hold["total"] == 2 * section["price"]
    paid = pay(client, hold, buyer)

    order = client.get(f"/api/orders/{paid['order_id']}", headers=buyer).json()
    assert order["status"] == "confirmed" and order["total"] == 2 * section["price"]
    tickets = tickets_of(client, paid["order_id"], buyer, 2)
    pdf = client.get(tickets[0]["pdf_url"], headers=buyer)
    assert (
        pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    )
    assert client.get(tickets[0]["pdf_url"], headers=sign_up(client, "someone-else@example.com")).status_code in (
        403,
        404,
    )

    gate = admin_headers(client)
    first = client.post("/api/checkin", json={"code": tickets[0]["code"]}, headers=gate)
    assert first.status_code == 200 and first.json()["status"] == "admitted"
    again = client.post("/api/checkin", json={"code": tickets[0]["code"]}, headers=gate)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-used")
    assert client.post("/api/checkin", json={"code": tickets[1]["code"]}, headers=buyer).status_code == 403

    after = client.get(f"/api/events/{event['id']}").json()
    assert after["sections"][0]["available"] == section["available"] - 2


def test_train_seat_for_a_segment(client: httpx.Client) -> None:
    buyer = sign_up(client, "rail-fan@example.com")
    date = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    runs = client.get("/api/trains/search", params={"origin": "NDLS", "destination": "BCT", "date": date}).json()[
        "items"
    ]
    assert runs, "the demo timetable has a Rajdhani from New Delhi to Mumbai every day"
    run = runs[0]
    stops = client.get(f"/api/trains/runs/{run['run_id']}").json()["stops"]
    middle = stops[1]["station"]
    detail = client.get(f"/api/trains/runs/{run['run_id']}", params={"origin": "NDLS", "destination": middle}).json()
    travel_class = detail["classes"][0]
    seat = next(s for c in travel_class["coaches"] for s in c["seats"] if s["status"] == "available")
    body = {
        "run_id": run["run_id"],
        "class_code": travel_class["code"],
        "origin": "NDLS",
        "destination": middle,
        "seat_ids": [seat["id"]],
    }
    hold = place_hold(client, body, buyer)
    assert hold["total"] == travel_class["fare"]
    paid = pay(client, hold, buyer)
    assert len(tickets_of(client, paid["order_id"], buyer, 1)) == 1

    # Sold from NDLS to the next stop: taken there, still free from that stop onwards.
    sold = client.get(f"/api/trains/runs/{run['run_id']}", params={"origin": "NDLS", "destination": middle}).json()
    later = client.get(f"/api/trains/runs/{run['run_id']}", params={"origin": middle, "destination": "BCT"}).json()

    def status(run_detail: dict[str, Any]) -> str:
        return next(
            s["status"]
            for c in run_detail["classes"]
            for co in c["coaches"]
            for s in co["seats"]
            if s["id"] == seat["id"]
        )

    assert status(sold) == "sold" and status(later) == "available"


def test_cancellation_refunds_and_voids_tickets(client: httpx.Client) -> None:
    buyer = sign_up(client, "changed-mind@example.com")
    events = client.get("/api/events", params={"category": "theatre", "limit": 50}).json()["items"]
    event = next(e for e in events if e["seating"] == "reserved")
    detail = client.get(f"/api/events/{event['id']}").json()
    seat = next(s for s in detail["seats"] if s["status"] == "available")
    hold = place_hold(client, {"event_id": event["id"], "seat_ids": [seat["id"]]}, buyer)
    paid = pay(client, hold, buyer)
    [ticket] = tickets_of(client, paid["order_id"], buyer, 1)
    cancelled = client.post(f"/api/orders/{paid['order_id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    eventually(lambda: client.get(f"/api/payments/{paid['payment_id']}", headers=buyer).json()["status"] == "refunded")
    gate = admin_headers(client)

    def voided() -> bool:
        response = client.post("/api/checkin", json={"code": ticket["code"]}, headers=gate)
        return response.status_code == 409 and response.json()["type"].endswith("/voided")

    eventually(voided)
    seats = {s["id"]: s["status"] for s in client.get(f"/api/events/{event['id']}").json()["seats"]}
    assert seats[seat["id"]] == "available"
