"""Catalog trains against real databases: stations, trains, runs, search and seat maps per segment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.harness.app import Running
from tests.integration.test_catalog import (
    admin_headers,
    customer_headers,
    problem_type,
    published,
    running_catalog,
)

STATIONS = [
    ("NDLS", "New Delhi", "New Delhi"),
    ("KOTA", "Kota Junction", "Kota"),
    ("BRC", "Vadodara Junction", "Vadodara"),
    ("BCT", "Mumbai Central", "Mumbai"),
    ("HWH", "Howrah", "Kolkata"),
]
TODAY = datetime.now(UTC).date()


def train(number: str = "12952", **extra: Any) -> dict[str, Any]:
    """Leaves New Delhi at 22:00 UTC: Vadodara and Mumbai are reached on the next day."""
    return {
        "number": number,
        "name": "Mumbai Rajdhani",
        "currency": "INR",
        "departure_time": "22:00",
        "stops": [
            {"station": "NDLS", "departure_minutes": 0, "distance_km": 0},
            {"station": "KOTA", "arrival_minutes": 270, "departure_minutes": 280, "distance_km": 465},
            {"station": "BRC", "arrival_minutes": 640, "departure_minutes": 650, "distance_km": 994},
            {"station": "BCT", "arrival_minutes": 940, "distance_km": 1386},
        ],
        "classes": [
            {
                "code": "3A",
                "name": "AC 3 Tier",
                "base_fare": 20000,
                "per_km_fare": 180,
                "coaches": [{"label": "B1", "seats": 8}, {"label": "B2", "seats": 8}],
            },
            {
                "code": "1A",
                "name": "First AC",
                "base_fare": 50000,
                "per_km_fare": 440,
                "coaches": [{"label": "H1", "seats": 4}],
            },
        ],
        **extra,
    }


@dataclass
class World:
    app: Running
    admin: dict[str, str]
    train: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.app.client


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    async with running_catalog(tmp_path, db_url) as app:
        admin = await admin_headers(app.client)
        for code, name, city in STATIONS:
            response = await app.client.post(
                "/api/stations", json={"code": code, "name": name, "city": city}, headers=admin
            )
            assert response.status_code == 201, response.text
        made = await app.client.post("/api/trains", json=train(), headers=admin)
        assert made.status_code == 201, made.text
        runs = await app.client.post(
            f"/api/trains/{made.json()['id']}/runs",
            json={"from_date": str(TODAY + timedelta(days=1)), "to_date": str(TODAY + timedelta(days=3))},
            headers=admin,
        )
        assert runs.status_code == 201, runs.text
        yield World(app, admin, made.json(), runs.json()["items"])


async def search(world: World, origin: str, destination: str, day: date) -> httpx.Response:
    return await world.client.get(
        "/api/trains/search", params={"origin": origin, "destination": destination, "date": str(day)}
    )


async def test_stations_and_train_as_published(world: World) -> None:
    stations = (await world.client.get("/api/stations")).json()
    assert stations["next_cursor"] is None
    assert [s["code"] for s in stations["items"]] == sorted(code for code, _, _ in STATIONS)
    assert world.train["departure_time"] == "22:00" and [s["station"] for s in world.train["stops"]] == [
        "NDLS",
        "KOTA",
        "BRC",
        "BCT",
    ]
    assert (await world.client.get(f"/api/trains/{world.train['id']}")).json() == world.train
    assert [r["date"] for r in world.runs] == [str(TODAY + timedelta(days=d)) for d in (1, 2, 3)]
    first = world.runs[0]
    assert first["departs_at"] == f"{TODAY + timedelta(days=1)}T22:00:00Z"
    assert first["arrives_at"] == f"{TODAY + timedelta(days=2)}T13:40:00Z"


async def test_only_admins_create_stations_trains_and_runs(world: World) -> None:
    customer = await customer_headers(world.client)
    for path, body in [
        ("/api/stations", {"code": "PNO", "name": "Paris Nord", "city": "Paris"}),
        ("/api/trains", train("999")),
        (f"/api/trains/{world.train['id']}/runs", {"date": str(TODAY + timedelta(days=9))}),
    ]:
        assert (await world.client.post(path, json=body)).status_code == 401
        assert (await world.client.post(path, json=body, headers=customer)).status_code == 403
    assert len((await world.client.get("/api/stations")).json()["items"]) == len(STATIONS)


async def test_search_finds_only_runs_going_from_origin_to_destination(world: World) -> None:
    day = TODAY + timedelta(days=2)
    found = (await search(world, "KOTA", "BCT", day)).json()["items"]
    assert len(found) == 1
    option = found[0]
    assert option["run_id"] == world.runs[0]["run_id"] and option["train_number"] == "12952"  # run of the day before
    assert option["departs_at"] == f"{day}T02:40:00Z"  # leaves Kota at 02:40 on the day after the run date
    assert option["arrives_at"] == f"{day}T13:40:00Z"
    assert option["classes"] == [
        {"code": "3A", "name": "AC 3 Tier", "fare": 20000 + 180 * (1386 - 465), "available": 16},
        {"code": "1A", "name": "First AC", "fare": 50000 + 440 * (1386 - 465), "available": 4},
    ]
    assert (await search(world, "BCT", "KOTA", day)).json()["items"] == []  # the train goes the other way
    assert (await search(world, "NDLS", "HWH", day)).json()["items"] == []  # HWH is not on the route
    ndls = (await search(world, "NDLS", "BRC", TODAY + timedelta(days=1))).json()["items"]
    assert [o["run_id"] for o in ndls] == [world.runs[0]["run_id"]]
    assert (await search(world, "NDLS", "BRC", TODAY)).json()["items"] == []  # no run that day


async def test_runs_departing_on_a_day_are_listed_first_to_last_station(world: World) -> None:
    """What a gate picks a train by (issue 14): every run leaving its first station that day, with names."""
    day = TODAY + timedelta(days=2)
    listed = await world.client.get("/api/trains/runs", params={"date": str(day)})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == [{
        "run_id": world.runs[1]["run_id"], "train_number": "12952", "name": "Mumbai Rajdhani",
        "origin": "NDLS", "origin_name": "New Delhi", "destination": "BCT", "destination_name": "Mumbai Central",
        "departs_at": f"{day}T22:00:00Z", "arrives_at": f"{day + timedelta(days=1)}T13:40:00Z",
        "origin_timezone": "UTC", "destination_timezone": "UTC",
    }]
    assert (await world.client.get("/api/trains/runs", params={"date": str(TODAY)})).json()["items"] == []
    bad = await world.client.get("/api/trains/runs", params={"date": "2026-02-30"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_search_with_unknown_or_equal_stations_is_a_problem(world: World) -> None:
    unknown = await search(world, "XXX", "BCT", TODAY)
    assert unknown.status_code == 404 and problem_type(unknown) == "/problems/unknown-station"
    same = await search(world, "BCT", "BCT", TODAY)
    assert same.status_code == 422 and problem_type(same) == "/problems/invalid-segment"
    assert (await world.client.get("/api/trains/search", params={"origin": "KOTA"})).status_code == 422


async def test_run_detail_shows_fare_and_seats_for_the_segment(world: World) -> None:
    run_id = world.runs[0]["run_id"]
    whole = (await world.client.get(f"/api/trains/runs/{run_id}")).json()
    assert (whole["origin"], whole["destination"]) == ("NDLS", "BCT")
    assert [s["station"] for s in whole["stops"]] == ["NDLS", "KOTA", "BRC", "BCT"]
    assert whole["stops"][0]["arrives_at"] is None and whole["stops"][-1]["departs_at"] is None
    third = whole["classes"][0]
    assert third["fare"] == 20000 + 180 * 1386 and third["available"] == 16
    assert [c["label"] for c in third["coaches"]] == ["B1", "B2"]
    assert [s["label"] for s in third["coaches"][0]["seats"]][:2] == ["B1-1", "B1-2"]
    part = await world.client.get(f"/api/trains/runs/{run_id}", params={"origin": "kota", "destination": "BRC"})
    assert part.status_code == 200, part.text
    assert part.json()["classes"][0]["fare"] == 20000 + 180 * (994 - 465)
    assert part.json()["departs_at"] < part.json()["arrives_at"]
    backwards = await world.client.get(f"/api/trains/runs/{run_id}", params={"origin": "BCT", "destination": "KOTA"})
    assert backwards.status_code == 422 and problem_type(backwards) == "/problems/invalid-segment"
    missing = await world.client.get("/api/trains/runs/nope")
    assert missing.status_code == 404 and problem_type(missing) == "/problems/run-not-found"


async def test_seat_status_per_segment_comes_from_booking(world: World) -> None:
    run_id = world.runs[0]["run_id"]
    whole = (await world.client.get(f"/api/trains/runs/{run_id}")).json()
    seat = whole["classes"][0]["coaches"][0]["seats"][0]["id"]
    asked: list[dict[str, str]] = []

    async def availability(request: Request) -> JSONResponse:
        asked.append(dict(request.query_params))
        sold = request.query_params["origin"] == "NDLS"  # sold NDLS->KOTA only
        answer = {"classes": {"3A": 15}, "seats": {seat: "sold"}} if sold else {}
        return JSONResponse({"runs": {run_id: answer}})

    world.app.runtime.clients.register_local(
        "booking", Starlette(routes=[Route("/internal/availability/runs", availability)])
    )
    first_leg = (await world.client.get(f"/api/trains/runs/{run_id}", params={"destination": "KOTA"})).json()
    assert first_leg["classes"][0]["available"] == 15 and first_leg["classes"][1]["available"] == 4
    assert first_leg["classes"][0]["coaches"][0]["seats"][0]["status"] == "sold"
    later_leg = (await world.client.get(f"/api/trains/runs/{run_id}", params={"origin": "KOTA"})).json()
    assert later_leg["classes"][0]["available"] == 16
    assert later_leg["classes"][0]["coaches"][0]["seats"][0]["status"] == "available"
    assert asked[0] == {"ids": run_id, "origin": "NDLS", "destination": "KOTA"}
    found = (await search(world, "NDLS", "BCT", TODAY + timedelta(days=1))).json()["items"]
    assert found[0]["classes"][0]["available"] == 15


async def test_runs_are_published_with_the_contract_shape(world: World) -> None:
    envelopes = await published(world.app, "catalog.runs", 3)
    assert sorted(e.key for e in envelopes) == sorted(r["run_id"] for r in world.runs)
    first = next(e for e in envelopes if e.key == world.runs[0]["run_id"])
    assert first.type == "catalog.run-published"
    data = first.data
    assert set(data) == {"run_id", "train_id", "train_number", "name", "date", "currency", "stops", "classes"}
    assert (data["train_id"], data["date"], data["currency"]) == (world.train["id"], world.runs[0]["date"], "INR")
    assert data["stops"][1] == {
        "station": "KOTA",
        "index": 1,
        "arrives_at": f"{TODAY + timedelta(days=2)}T02:30:00Z",
        "departs_at": f"{TODAY + timedelta(days=2)}T02:40:00Z",
        "distance_km": 465,
        "name": "Kota Junction",
        "timezone": "UTC",  # stations made without a zone are UTC (the demo's Indian stations are Asia/Kolkata)
    }
    third = data["classes"][0]
    assert set(third["fares"]) == {"NDLS>KOTA", "NDLS>BRC", "NDLS>BCT", "KOTA>BRC", "KOTA>BCT", "BRC>BCT"}
    assert third["fares"]["KOTA>BRC"] == 20000 + 180 * (994 - 465)
    assert [len(c["seats"]) for c in third["coaches"]] == [8, 8]
    seat_ids = [s["seat_id"] for c in data["classes"] for coach in c["coaches"] for s in coach["seats"]]
    assert len(set(seat_ids)) == 20
    for other in envelopes:  # the same seat ids on every run of the train
        assert [s["seat_id"] for c in other.data["classes"] for k in c["coaches"] for s in k["seats"]] == seat_ids


async def test_publishing_runs_again_keeps_the_existing_ones(world: World) -> None:
    again = await world.client.post(
        f"/api/trains/{world.train['id']}/runs",
        json={"from_date": str(TODAY + timedelta(days=3)), "to_date": str(TODAY + timedelta(days=4))},
        headers=world.admin,
    )
    assert again.status_code == 201
    items = again.json()["items"]
    assert items[0]["run_id"] == world.runs[2]["run_id"] and len(items) == 2
    envelopes = await published(world.app, "catalog.runs", 4)
    assert len({e.key for e in envelopes}) == 4


BAD_INPUT: list[tuple[str, dict[str, Any], int, str]] = [
    ("/api/stations", {"code": "NDLS", "name": "Again", "city": "Delhi"}, 409, "/problems/station-exists"),
    ("/api/stations", {"code": "nd ls", "name": "x", "city": "y"}, 422, "/problems/validation-error"),
    ("/api/trains", train(), 409, "/problems/train-exists"),
    (
        "/api/trains",
        train(
            "1",
            stops=[
                {"station": "NDLS", "departure_minutes": 0, "distance_km": 0},
                {"station": "ZZZ", "arrival_minutes": 5, "distance_km": 4},
            ],
        ),
        422,
        "/problems/invalid-route",
    ),
    (
        "/api/trains",
        train(
            "2",
            stops=[
                {"station": "NDLS", "departure_minutes": 0, "distance_km": 0},
                {"station": "BCT", "arrival_minutes": 5, "distance_km": 0},
            ],
        ),
        422,
        "/problems/invalid-route",
    ),
    ("/api/trains", train("3", departure_time="25:00"), 422, "/problems/validation-error"),
    ("/api/trains", train("4", classes=[]), 422, "/problems/validation-error"),
    ("/api/trains/nope/runs", {"date": str(TODAY + timedelta(days=10))}, 404, "/problems/train-not-found"),
]


async def test_bad_train_input_is_a_clear_4xx(world: World) -> None:
    for path, body, status, kind in BAD_INPUT:
        response = await world.client.post(path, json=body, headers=world.admin)
        assert (response.status_code, problem_type(response)) == (status, kind), response.text
    assert len((await world.client.get("/api/stations")).json()["items"]) == len(STATIONS)


async def test_bad_run_dates_are_refused(world: World) -> None:
    path = f"/api/trains/{world.train['id']}/runs"
    for body, kind in [
        ({"date": str(TODAY - timedelta(days=1))}, "/problems/invalid-date"),
        ({"from_date": str(TODAY)}, "/problems/validation-error"),
        ({"date": str(TODAY), "to_date": str(TODAY)}, "/problems/validation-error"),
    ]:
        response = await world.client.post(path, json=body, headers=world.admin)
        assert response.status_code == 422 and problem_type(response) == kind, response.text
