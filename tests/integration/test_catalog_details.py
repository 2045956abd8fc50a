"""An event's page details (description, picture, doors, venue address) and the search over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness.app import Running
from tests.integration.test_catalog import admin_headers, general, running_catalog


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    async with running_catalog(tmp_path, db_url) as app:
        yield app


def details(days: float = 10, **change: Any) -> dict[str, Any]:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return {
        "description": "Lumen Quartet play Shostakovich; the support act is Nora Vale.",
        "image_url": "/static/events/concert-2.svg",
        "doors_at": (starts - timedelta(minutes=45)).isoformat(),
        "venue_address": "Weteringschans 6-8, 1017 SG Amsterdam",
        "starts_at": starts.isoformat(),
        **change,
    }


async def test_an_event_keeps_its_details_and_shows_them(app: Running) -> None:
    admin = await admin_headers(app.client)
    body = details()
    created = await app.client.post("/api/events", json=general("Lumen Live", **body), headers=admin)
    assert created.status_code == 201, created.text
    event = (await app.client.get(f"/api/events/{created.json()['id']}")).json()
    assert event["description"] == body["description"]
    assert event["image_url"] == "/static/events/concert-2.svg"
    assert event["venue_address"] == body["venue_address"]
    starts = datetime.fromisoformat(event["starts_at"].replace("Z", "+00:00"))
    doors = datetime.fromisoformat(event["doors_at"].replace("Z", "+00:00"))
    assert starts - doors == timedelta(minutes=45)
    listed = (await app.client.get("/api/events", params={"q": "Lumen"})).json()["items"]
    assert [e["image_url"] for e in listed] == ["/static/events/concert-2.svg"]
    # Details are optional: an event without them has none, but the venue's address is kept with the venue.
    plain = await app.client.post("/api/events", json=general("Plain Night"), headers=admin)
    assert plain.status_code == 201
    assert {k: plain.json()[k] for k in ("description", "image_url", "doors_at")} == dict.fromkeys(
        ("description", "image_url", "doors_at"))
    assert plain.json()["venue_address"] == plain.json()["address"] == body["venue_address"]


@pytest.mark.parametrize(
    "change",
    [
        {"image_url": "javascript:alert(1)"},
        {"image_url": "//evil.example/x.png"},
        {"image_url": "http://example.com/x.png"},
        {"image_url": "/static/a b.svg"},
        {"description": "x" * 4001},
        {"venue_address": ""},
        {"doors_at": "2030-01-01T18:00:00"},  # no offset
        {"doors_at": 5},
        {"doors_at": "0001-01-01T00:00:00+01:00"},  # no UTC form: a 422, not a 500
        {"starts_at": "9999-12-31T23:59:59-05:00"},
    ],
)
async def test_bad_details_are_refused_and_nothing_is_created(app: Running, change: dict[str, Any]) -> None:
    admin = await admin_headers(app.client)
    refused = await app.client.post("/api/events", json=general("Refused", **details(**change)), headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await app.client.get("/api/events", params={"q": "Refused"})).json()["items"] == []


async def test_doors_open_before_the_start_by_at_most_twelve_hours(app: Running) -> None:
    admin = await admin_headers(app.client)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    for doors, status in ((starts + timedelta(minutes=1), 422), (starts - timedelta(hours=13), 422),
                          (starts - timedelta(hours=12), 201), (starts, 201)):
        body = details(starts_at=starts.isoformat(), doors_at=doors.isoformat())
        answer = await app.client.post("/api/events", json=general(f"Doors {status}", **body), headers=admin)
        assert answer.status_code == status, (doors, answer.text)
        if status == 422:
            assert answer.json()["type"].endswith("/invalid-doors")


async def test_search_finds_events_by_name_artist_in_the_description_city_address_and_date(app: Running) -> None:
    admin = await admin_headers(app.client)
    await app.client.post("/api/events", json=general("Lumen Live", days=5, **details(days=5)), headers=admin)
    await app.client.post("/api/events", json=general("Other Night", days=20, venue="Melkweg"), headers=admin)

    async def names(**params: str) -> list[str]:
        return [e["name"] for e in (await app.client.get("/api/events", params=params)).json()["items"]]

    assert await names(q="lumen") == ["Lumen Live"]
    assert await names(q="Nora Vale") == ["Lumen Live"]  # the support act, named in the description
    assert await names(q="Weteringschans") == ["Lumen Live"]
    assert sorted(await names(q="amsterdam")) == ["Lumen Live", "Other Night"]
    later = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    assert await names(q="amsterdam", starts_after=later) == ["Other Night"]
    assert await names(q="100%") == []
    for bound in ("starts_after", "starts_before"):
        odd = await app.client.get("/api/events", params={bound: "0001-01-01T00:00:00+01:00"})
        assert odd.status_code == 422 and odd.json()["type"].endswith("/invalid-date")
