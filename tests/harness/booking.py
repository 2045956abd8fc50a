"""Helpers for booking tests: customers with real access tokens, and catalog events on the real bus.

Catalog events are published exactly as docs/contracts.md shapes them, so booking's inventory is built the
way production builds it (through its consumer), whether or not the catalog service runs in the test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from boxoffice.platform.bus.envelope import new_event
from tests.harness.app import Running, wait_for


def token_for(app: Running, *, name: str = "Buyer", roles: tuple[str, ...] = ("customer",)) -> dict[str, str]:
    """Authorization headers for a new customer, signed by identity's real key."""
    user_id = str(uuid.uuid4())
    identity = app.service("identity")
    token = identity.keyring().issue_access_token(
        user_id=user_id,
        email=f"{user_id[:8]}@example.com",
        name=name,
        roles=list(roles),
        now=datetime.now(UTC),
        ttl=timedelta(hours=1),
    )
    return {"Authorization": f"Bearer {token}"}


def general_event(capacity: int = 100, price: int = 4500) -> dict[str, Any]:
    event_id = f"ev-{uuid.uuid4().hex[:10]}"
    return {
        "event_id": event_id,
        "name": "The Flash Sale Tour",
        "category": "concert",
        "venue": "Arena",
        "city": "Glasgow",
        "starts_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "currency": "EUR",
        "seating": "general",
        "sections": [
            {"section_id": f"{event_id}-floor", "name": "Floor", "price": price, "capacity": capacity, "seats": []}
        ],
    }


def reserved_event(rows: int = 5, per_row: int = 10, price: int = 6000) -> dict[str, Any]:
    event_id = f"ev-{uuid.uuid4().hex[:10]}"
    section_id = f"{event_id}-stalls"
    seats = [
        {"seat_id": f"{section_id}-{r}{n}", "row": r, "number": n, "label": f"{r}-{n}", "price": price}
        for r in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:rows]
        for n in range(1, per_row + 1)
    ]
    return {
        "event_id": event_id,
        "name": "Hamlet",
        "category": "theatre",
        "venue": "Old Vic",
        "city": "London",
        "address": "The Cut, London SE1 8NB",
        "timezone": "Europe/London",
        "starts_at": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
        "currency": "GBP",
        "seating": "reserved",
        "sections": [
            {"section_id": section_id, "name": "Stalls", "price": price, "capacity": len(seats), "seats": seats}
        ],
    }


def train_run(seats_per_class: int = 8) -> dict[str, Any]:
    run_id = f"run-{uuid.uuid4().hex[:10]}"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    stations = ["NDLS", "KOTA", "RTM", "BCT"]
    names = {"NDLS": "New Delhi", "KOTA": "Kota Junction", "RTM": "Ratlam Junction", "BCT": "Mumbai Central"}
    stops = [
        {
            "station": code,
            "name": names[code],
            "timezone": "Asia/Kolkata",
            "index": i,
            "arrives_at": None if i == 0 else (start + timedelta(hours=4 * i)).isoformat(),
            "departs_at": None if i == len(stations) - 1 else (start + timedelta(hours=4 * i, minutes=5)).isoformat(),
            "distance_km": 400 * i,
        }
        for i, code in enumerate(stations)
    ]
    fares = {f"{a}>{b}": 50000 * (j - i) for i, a in enumerate(stations) for j, b in enumerate(stations) if i < j}
    return {
        "run_id": run_id,
        "train_id": "12951",
        "train_number": "12951",
        "name": "Rajdhani Express",
        "date": start.date().isoformat(),
        "currency": "INR",
        "stops": stops,
        "classes": [
            {
                "code": "3A",
                "name": "AC 3 Tier",
                "fares": fares,
                "coaches": [
                    {
                        "coach_id": "12951-B1",
                        "label": "B1",
                        "seats": [
                            {"seat_id": f"12951-B1-{n}", "label": f"B1-{n}"} for n in range(1, seats_per_class + 1)
                        ],
                    }
                ],
            }
        ],
    }


async def publish_event(app: Running, data: dict[str, Any]) -> None:
    """Publish a catalog event on the bus and wait until booking has built its inventory."""
    if "run_id" in data:
        envelope = new_event(
            "catalog.run-published", source="catalog", key=data["run_id"], data=data, topic="catalog.runs"
        )
        path = f"/internal/availability/runs?ids={data['run_id']}"
        key = "runs"
    else:
        envelope = new_event(
            "catalog.event-published", source="catalog", key=data["event_id"], data=data, topic="catalog.events"
        )
        path = f"/internal/availability/events?ids={data['event_id']}"
        key = "events"
    await app.runtime.bus.publish([envelope])
    booking = app.runtime.clients.get("booking")

    async def ready() -> bool:
        response = await booking.get(path)
        return bool(response.status_code == 200 and response.json()[key])

    await wait_for(ready)


CARD_OK = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
CARD_DECLINED = {**CARD_OK, "card_number": "4000000000000002"}
CARD_NO_FUNDS = {**CARD_OK, "card_number": "4000000000009995"}
