"""The demo catalog (SQLite only, to keep the suite fast): what it seeds, once, even with two processes."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from boxoffice.catalog import demo
from boxoffice.catalog.service import CatalogService
from boxoffice.platform.bus.sql import SqlBus
from boxoffice.platform.bus.tables import outbox_backlog
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.migrate import upgrade
from tests.integration.test_catalog import catalog_settings, published, running_catalog


async def test_demo_seeds_events_stations_trains_and_a_month_of_runs(tmp_path: Path, sqlite_url: str) -> None:
    async with running_catalog(tmp_path, sqlite_url, demo=True) as app:
        events: list[dict[str, object]] = []
        cursor = None
        while True:
            page = (await app.client.get("/api/events", params={"limit": 100, "cursor": cursor or ""})).json()
            events += page["items"]
            if not (cursor := page["next_cursor"]):
                break
        assert len(events) >= 20
        assert set(Counter(e["category"] for e in events)) == {"concert", "theatre", "comedy", "sports", "festival"}
        assert {e["seating"] for e in events} == {"general", "reserved"}
        big = next(e for e in events if e["seating"] == "reserved")
        assert len((await app.client.get(f"/api/events/{big['id']}")).json()["seats"]) >= 200

        assert len((await app.client.get("/api/stations")).json()["items"]) >= 10
        zones = {s["code"]: s["timezone"] for s in (await app.client.get("/api/stations")).json()["items"]}
        assert zones["NDLS"] == "Asia/Kolkata" and zones["PNO"] == "Europe/Paris" and zones["AMS"] == "Europe/Amsterdam"
        # Every event is at a real venue with its zone and address, at a plausible local hour.
        by_name = {e["name"]: e for e in events}
        rahman = by_name["AR Rahman Live"]
        assert rahman["timezone"] == "Asia/Kolkata" and "New Delhi" in rahman["address"]
        assert datetime.fromisoformat(rahman["starts_at"]).astimezone(ZoneInfo("Asia/Kolkata")).strftime("%H:%M") == "19:00"
        assert all(e["timezone"] != "UTC" and e["address"] for e in events)
        for event in events:
            hour = datetime.fromisoformat(event["starts_at"]).astimezone(ZoneInfo(event["timezone"])).hour
            assert 11 <= hour <= 22, event["name"]
        ziggo = (await app.client.get(f"/api/events/{by_name['Aurora Nights Live']['id']}")).json()
        assert sum(s["capacity"] for s in ziggo["sections"]) == 17_000  # the Ziggo Dome's capacity
        day = (datetime.now(UTC) + timedelta(days=29)).date()
        rajdhani = (
            await app.client.get(
                "/api/trains/search", params={"origin": "NDLS", "destination": "BCT", "date": str(day)}
            )
        ).json()["items"]
        assert [t["train_number"] for t in rajdhani] == ["12952"]
        assert [c["code"] for c in rajdhani[0]["classes"]] == ["3A", "2A", "1A"]
        # Times stay UTC in the API; the zones say where they are read: 11:25 UTC leaves New Delhi at 16:55 IST.
        assert rajdhani[0]["departs_at"].endswith("T11:25:00Z")
        assert rajdhani[0]["origin_timezone"] == rajdhani[0]["destination_timezone"] == "Asia/Kolkata"
        run = (await app.client.get(f"/api/trains/runs/{rajdhani[0]['run_id']}")).json()
        assert run["stops"][0]["name"] == "New Delhi" and run["stops"][0]["timezone"] == "Asia/Kolkata"
        eurostar = (
            await app.client.get("/api/trains/search", params={"origin": "PNO", "destination": "AMS", "date": str(day)})
        ).json()["items"]
        assert [c["code"] for c in eurostar[0]["classes"]] == ["standard", "first"]

        catalog: CatalogService = app.service("catalog")
        assert await catalog.seed_demo() == {"events": 0, "stations": 0, "trains": 0, "runs": 0}
        runs = await published(app, "catalog.runs", 150)
        assert len({e.key for e in runs}) >= 150  # at least 5 trains x 30 days
        assert len(await published(app, "catalog.events", len(events))) == len(events)


async def test_two_processes_starting_at_once_seed_once_and_fast(tmp_path: Path, sqlite_url: str) -> None:
    settings, configs = catalog_settings(tmp_path, sqlite_url, demo=True)
    await asyncio.to_thread(upgrade, "catalog", sqlite_url)
    bus = SqlBus(settings.bus_url())
    await bus.start()
    first, second = (CatalogService(settings, bus=bus, clients=ServiceClients(settings), config=configs["catalog"]) for _ in range(2))
    try:
        started = time.monotonic()
        a, b = await asyncio.gather(first.seed_demo(), second.seed_demo())
        assert time.monotonic() - started < 5
        events, trains = len(demo.EVENTS), len(demo.TRAINS)
        assert {a["events"], b["events"]} == {0, events} and {a["trains"], b["trains"]} == {0, trains}
        assert a["runs"] + b["runs"] == trains * demo.RUN_DAYS
        async with first.db.read() as conn:  # one event per event and per run, left for the relay
            assert await outbox_backlog(conn) == events + trains * demo.RUN_DAYS
    finally:
        for service in (first, second):
            await service.stop()
        await bus.stop()


async def test_without_demo_nothing_is_seeded(tmp_path: Path, sqlite_url: str) -> None:
    async with running_catalog(tmp_path, sqlite_url) as app:
        assert (await app.client.get("/api/events")).json()["items"] == []
        assert (await app.client.get("/api/stations")).json()["items"] == []
        async with app.service("catalog").db.read() as conn:
            assert await outbox_backlog(conn) == 0
