"""Catalog events against real databases (SQLite and PostgreSQL), through the gateway, with identity's tokens."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from boxoffice.catalog.deps import CatalogSettings
from boxoffice.cli import Configs
from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.tables import outbox_backlog
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running, wait_for

ADMIN = {"email": "admin@example.com", "password": "admin-password-2026"}


def catalog_settings(tmp_path: Path, db_url: str, *, demo: bool = False) -> tuple[Settings, Configs]:
    """The process's settings and the services' own: catalog on ``db_url``, identity with an admin."""
    configs: Configs = {
        "catalog": CatalogSettings(database_url=db_url),
        "identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"]),
    }
    return Settings(data_dir=tmp_path, demo=demo), configs


@asynccontextmanager
async def running_catalog(tmp_path: Path, db_url: str, *, demo: bool = False) -> AsyncIterator[Running]:
    settings, configs = catalog_settings(tmp_path, db_url, demo=demo)
    async with running(settings, ["catalog", "identity"], configs=configs) as app:
        yield app


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    async with running_catalog(tmp_path, db_url) as app:
        yield app


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/auth/login", json=ADMIN)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def customer_headers(client: httpx.AsyncClient, email: str = "fan@example.com") -> dict[str, str]:
    body = {"email": email, "password": "a-long-ticket-password", "name": "Fan"}
    assert (await client.post("/api/auth/register", json=body)).status_code == 201

    async def code() -> str | None:
        items = (await client.get("/api/dev/mailbox", params={"to": email})).json()["items"]
        match = re.search(r"\b(\d{6})\b", items[0]["text"]) if items else None
        return match.group(1) if match else None

    verified = await client.post("/api/auth/verify", json={"email": email, "code": await wait_for(code)})
    return {"Authorization": f"Bearer {verified.json()['access_token']}"}


async def published(app: Running, topic: str, count: int) -> list[Envelope]:
    """The first ``count`` events on ``topic``, read from the bus by a fresh consumer group."""
    consumer = app.runtime.bus.consumer(f"test-{uuid.uuid4().hex[:8]}", [topic])
    await consumer.start()
    envelopes: list[Envelope] = []
    try:

        async def more() -> bool:
            envelopes.extend(r.envelope for r in await consumer.poll(timeout=0.5))
            return len(envelopes) >= count

        await wait_for(more)
    finally:
        await consumer.stop()
    return envelopes


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"])


def at(days: float, hour: int = 19) -> str:
    when = datetime.now(UTC).replace(hour=hour, minute=30, second=0, microsecond=0) + timedelta(days=days)
    return when.isoformat().replace("+00:00", "Z")


def general(name: str = "Aurora Live", *, category: str = "concert", days: float = 10, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "category": category,
        "venue": "Paradiso",
        "city": "Amsterdam",
        "starts_at": at(days),
        "currency": "EUR",
        "sections": [
            {"name": "Floor", "price": 4500, "capacity": 100},
            {"name": "Balcony", "price": 3000, "capacity": 40},
        ],
        **extra,
    }


def reserved(name: str = "Hamlet") -> dict[str, Any]:
    return {
        "name": name,
        "category": "theatre",
        "venue": "Royal Lyceum",
        "city": "Edinburgh",
        "starts_at": at(5),
        "currency": "GBP",
        "sections": [
            {"name": "Stalls", "price": 6000, "rows": [{"label": "A", "seats": 10}, {"label": "B", "seats": 12}]},
            {"name": "Circle", "price": 3500, "rows": [{"label": "A", "seats": 8}]},
        ],
    }


async def create(app: Running, body: dict[str, Any]) -> dict[str, Any]:
    response = await app.client.post("/api/events", json=body, headers=await admin_headers(app.client))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_without_demo_the_catalog_starts_empty(app: Running) -> None:
    assert (await app.client.get("/api/events")).json() == {"items": [], "next_cursor": None}
    assert (await app.client.get("/api/stations")).json() == {"items": [], "next_cursor": None}


async def test_admin_publishes_a_general_admission_event(app: Running) -> None:
    event = await create(app, general())
    assert event["seating"] == "general" and event["price_from"] == 3000 and event["available"] == 140
    assert event["starts_at"] == at(10) and event["seats"] == []
    assert [(s["name"], s["capacity"], s["available"]) for s in event["sections"]] == [
        ("Floor", 100, 100),
        ("Balcony", 40, 40),
    ]
    assert (await app.client.get(f"/api/events/{event['id']}")).json() == event
    listed = (await app.client.get("/api/events")).json()["items"]
    assert listed == [
        {
            k: event[k]
            for k in (
                "id",
                "name",
                "category",
                "venue",
                "city",
                "starts_at",
                "timezone",
                "address",
                "seating",
                "currency",
                "price_from",
                "available",
                "availability_stale",
                "queued",
                "on_sale_at",
                "image_url",
            )
        }
    ]
    (envelope,) = await published(app, "catalog.events", 1)
    assert envelope.type == "catalog.event-published" and envelope.key == event["id"] and envelope.source == "catalog"
    assert envelope.data == {
        "event_id": event["id"],
        "name": "Aurora Live",
        "category": "concert",
        "venue": "Paradiso",
        "city": "Amsterdam",
        "starts_at": at(10),
        "timezone": "UTC",
        "address": None,
        "currency": "EUR",
        "seating": "general",
        "sections": [
            {"section_id": s["id"], "name": s["name"], "price": s["price"], "capacity": s["capacity"], "seats": []}
            for s in event["sections"]
        ],
    }


async def test_admin_publishes_a_reserved_seat_map(app: Running) -> None:
    event = await create(app, reserved())
    assert event["seating"] == "reserved" and event["available"] == 30 and event["price_from"] == 3500
    stalls, circle = event["sections"]
    assert stalls["capacity"] == 22 and circle["capacity"] == 8
    assert [s["label"] for s in event["seats"][:3]] == ["A-1", "A-2", "A-3"]
    assert len({s["id"] for s in event["seats"]}) == 30
    assert {s["status"] for s in event["seats"]} == {"available"}
    assert sum(s["section_id"] == circle["id"] for s in event["seats"]) == 8
    (envelope,) = await published(app, "catalog.events", 1)
    sections = envelope.data["sections"]
    assert [len(s["seats"]) for s in sections] == [s["capacity"] for s in sections] == [22, 8]
    assert sections[1]["seats"][0] == {
        "seat_id": event["seats"][22]["id"],
        "row": "A",
        "number": 1,
        "label": "A-1",
        "price": 3500,
    }


async def test_only_admins_publish_events(app: Running) -> None:
    anonymous = await app.client.post("/api/events", json=general())
    assert anonymous.status_code == 401 and problem_type(anonymous) == "/problems/unauthorized"
    customer = await app.client.post("/api/events", json=general(), headers=await customer_headers(app.client))
    assert customer.status_code == 403 and problem_type(customer) == "/problems/forbidden"
    assert (await app.client.get("/api/events")).json()["items"] == []


BAD_EVENTS: list[tuple[dict[str, Any], int, str]] = [
    ({"organiser": "me"}, 422, "/problems/validation-error"),
    ({"currency": "eur"}, 422, "/problems/validation-error"),
    ({"category": "opera"}, 422, "/problems/validation-error"),
    ({"starts_at": "2030-01-01T19:00:00"}, 422, "/problems/validation-error"),  # no time zone
    ({"starts_at": "2020-01-01T19:00:00Z"}, 422, "/problems/starts-in-past"),
    ({"sections": []}, 422, "/problems/validation-error"),
    ({"sections": [{"name": "Floor", "price": -1, "capacity": 10}]}, 422, "/problems/validation-error"),
    ({"sections": [{"name": "Floor", "price": 1, "capacity": 0}]}, 422, "/problems/validation-error"),
    ({"sections": [{"name": "Floor", "price": 1, "capacity": 100_001}]}, 422, "/problems/validation-error"),
    ({"sections": [{"name": "Floor", "price": "12", "capacity": 10}]}, 422, "/problems/validation-error"),
    ({"sections": [{"name": "Floor", "price": 1}]}, 422, "/problems/validation-error"),
    (
        {"sections": [{"name": "A", "price": 1, "capacity": 5, "rows": [{"label": "A", "seats": 5}]}]},
        422,
        "/problems/validation-error",
    ),
    (
        {"sections": [{"name": "A", "price": 1, "rows": [{"label": "A", "seats": 501}]}]},
        422,
        "/problems/validation-error",
    ),
    (
        {"sections": [{"name": "A", "price": 1, "capacity": 5}, {"name": "a", "price": 1, "capacity": 5}]},
        422,
        "/problems/invalid-seat-map",
    ),
    (
        {
            "sections": [
                {"name": "A", "price": 1, "capacity": 5},
                {"name": "B", "price": 1, "rows": [{"label": "A", "seats": 5}]},
            ]
        },
        422,
        "/problems/invalid-seat-map",
    ),
]


async def test_bad_input_is_a_clear_4xx_and_changes_nothing(app: Running) -> None:
    headers = await admin_headers(app.client)
    for change, status, kind in BAD_EVENTS:
        response = await app.client.post("/api/events", json=general(**change), headers=headers)
        assert (response.status_code, problem_type(response)) == (status, kind), (change, response.text)
        assert "Traceback" not in response.text
    json_headers = headers | {"content-type": "application/json"}
    malformed = await app.client.post("/api/events", content=b"{nope", headers=json_headers)
    assert malformed.status_code == 400 and problem_type(malformed) == "/problems/malformed-json"
    assert (await app.client.get("/api/events")).json()["items"] == []
    async with app.service("catalog").db.read() as conn:
        assert await outbox_backlog(conn) == 0


async def test_list_filters_and_paginates_by_start_time(app: Running) -> None:
    made = [
        await create(app, general("Late Laughs", category="comedy", days=3)),
        await create(app, general("Cup Final", category="sports", days=1) | {"city": "Rotterdam"}),
        await create(app, general("Summer Fest", category="festival", days=20)),
        await create(app, general("Night Show", category="comedy", days=7) | {"venue": "Boom Chicago"}),
        await create(app, reserved("Macbeth")),
    ]
    by_time = [e["id"] for e in sorted(made, key=lambda e: (e["starts_at"], e["id"]))]
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await app.client.get("/api/events", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == by_time and pages == 3

    async def names(**params: Any) -> list[str]:
        response = await app.client.get("/api/events", params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert await names(category="comedy") == ["Late Laughs", "Night Show"]
    assert await names(q="ROTTER") == ["Cup Final"]
    assert await names(q="boom") == ["Night Show"]
    assert await names(q="100%") == []
    assert await names(starts_after=at(6), starts_before=at(15)) == ["Night Show"]
    assert await names(category="comedy", q="late") == ["Late Laughs"]
    bad = await app.client.get("/api/events", params={"cursor": "garbage"})
    assert bad.status_code == 400 and problem_type(bad) == "/problems/invalid-cursor"
    assert (await app.client.get("/api/events", params={"limit": 101})).status_code == 422
    assert (await app.client.get("/api/events", params={"category": "opera"})).status_code == 422


async def test_a_new_event_is_listed_at_once_despite_the_cache(app: Running) -> None:
    assert (await app.client.get("/api/events")).json()["items"] == []
    event = await create(app, general())
    assert [e["id"] for e in (await app.client.get("/api/events")).json()["items"]] == [event["id"]]


async def test_unknown_event_is_a_404(app: Running) -> None:
    response = await app.client.get("/api/events/no-such-event")
    assert response.status_code == 404 and problem_type(response) == "/problems/event-not-found"


async def test_availability_comes_from_booking(app: Running) -> None:
    event = await create(app, reserved())
    stalls, circle = event["sections"]
    held, sold = event["seats"][0]["id"], event["seats"][23]["id"]
    asked: list[dict[str, str]] = []

    async def availability(request: Request) -> JSONResponse:
        asked.append(dict(request.query_params))
        sections, seats = {stalls["id"]: 21, circle["id"]: 6}, {held: "held", sold: "sold"}
        answer = {"available": 27, "sections": sections, "seats": seats}
        return JSONResponse({"events": {event["id"]: answer}})

    booking = Starlette(routes=[Route("/internal/availability/events", availability)])
    app.runtime.clients.register_local("booking", booking)
    detail = (await app.client.get(f"/api/events/{event['id']}")).json()
    assert detail["available"] == 27
    assert [s["available"] for s in detail["sections"]] == [21, 6]
    statuses = {s["id"]: s["status"] for s in detail["seats"]}
    assert statuses.pop(held) == "held" and statuses.pop(sold) == "sold"
    assert set(statuses.values()) == {"available"}
    assert (await app.client.get("/api/events")).json()["items"][0]["available"] == 27
    assert asked[0] == {"ids": event["id"]}


async def test_without_booking_availability_is_the_capacity(app: Running) -> None:
    event = await create(app, general())
    app.runtime.clients.register_local("booking", Starlette())  # booking answers 404 to everything
    detail = await app.client.get(f"/api/events/{event['id']}")
    assert detail.status_code == 200 and detail.json()["available"] == 140
    assert detail.json()["availability_stale"] is True  # said, so that pages can say it


async def test_a_queued_sale_is_published_with_its_line(app: Running) -> None:
    admin = await admin_headers(app.client)
    on_sale = at(2, hour=9)
    created = await app.client.post(
        "/api/events", json=general("Reunion Tour", queue={"on_sale_at": on_sale, "admit_per_minute": 120}), headers=admin
    )
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["queued"] is True and event["on_sale_at"] == on_sale
    listed = (await app.client.get("/api/events", params={"q": "Reunion"})).json()["items"][0]
    assert listed["queued"] is True and listed["on_sale_at"] == on_sale
    envelope = next(e for e in await published(app, "catalog.events", 1) if e.data["event_id"] == event["id"])
    assert envelope.data["queue"] == {"on_sale_at": on_sale, "admit_per_minute": 120}

    plain = (await app.client.post("/api/events", json=general("Open Sale"), headers=admin)).json()
    assert plain["queued"] is False and plain["on_sale_at"] is None
    late = await app.client.post(
        "/api/events", json=general("Too Late", queue={"on_sale_at": at(20)}), headers=admin
    )
    assert late.status_code == 422 and problem_type(late).endswith("/on-sale-after-start")
    odd = await app.client.post(
        "/api/events", json=general("Odd", queue={"on_sale_at": on_sale, "admit_per_minute": "5"}), headers=admin
    )
    assert odd.status_code == 422


async def test_events_and_stations_carry_their_time_zone(app: Running) -> None:
    admin = await admin_headers(app.client)
    body = general("Zoned", timezone="Europe/Amsterdam", address="Weteringschans 6-8, 1017 SG Amsterdam")
    event = await create(app, body)
    assert event["timezone"] == "Europe/Amsterdam" and event["address"].startswith("Weteringschans")
    assert event["starts_at"] == body["starts_at"]  # the API keeps UTC
    # A later event at the same venue without a zone gets the venue's; the published event carries it.
    again = await create(app, general("Same Venue"))
    assert again["timezone"] == "Europe/Amsterdam" and again["address"] == event["address"]
    envelope = next(e for e in await published(app, "catalog.events", 2) if e.data["event_id"] == again["id"])
    assert envelope.data["timezone"] == "Europe/Amsterdam"
    # A new venue without a zone is UTC; a zone that is not IANA's is refused and changes nothing.
    assert (await create(app, {**general("Elsewhere"), "venue": "Somewhere new"}))["timezone"] == "UTC"
    for zone in ("Mars/Olympus", "../etc/passwd", "IST"):
        bad = await app.client.post("/api/events", json=general("Bad Zone", timezone=zone), headers=admin)
        assert bad.status_code == 422, zone
        assert problem_type(bad).endswith("/unknown-timezone")
    assert (await app.client.get("/api/events", params={"q": "Bad Zone"})).json()["items"] == []

    station = {"code": "SBC", "name": "Bengaluru City", "city": "Bengaluru", "timezone": "Asia/Kolkata"}
    created = await app.client.post("/api/stations", json=station, headers=admin)
    assert created.status_code == 201 and created.json()["timezone"] == "Asia/Kolkata"
    odd = await app.client.post("/api/stations", json={**station, "code": "XX", "timezone": "Nowhere/At_All"}, headers=admin)
    assert odd.status_code == 422 and problem_type(odd).endswith("/unknown-timezone")
    listed = {s["code"]: s for s in (await app.client.get("/api/stations")).json()["items"]}
    assert listed["SBC"]["timezone"] == "Asia/Kolkata" and "XX" not in listed
