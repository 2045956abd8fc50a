"""Music against real databases (SQLite with FTS5, PostgreSQL with tsvector + GIN), through the gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxoffice.catalog.deps import CatalogSettings
from boxoffice.identity.deps import IdentitySettings
from boxoffice.music import handlers
from boxoffice.music.deps import MusicSettings
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running, wait_for
from tests.integration.test_catalog import ADMIN, admin_headers, customer_headers


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    configs = {
        "music": MusicSettings(database_url=db_url),
        "catalog": CatalogSettings(),
        "identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"]),
    }
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "catalog", "music"],
                       configs=configs) as app:
        yield app


async def _artist(client: httpx.AsyncClient, admin: dict[str, str], name: str, genres: list[str]) -> dict[str, Any]:
    response = await client.post("/api/artists", json={"name": name, "genres": genres, "country": "NL"},
                                 headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _track(client: httpx.AsyncClient, admin: dict[str, str], artist_id: str, title: str, *,
                 album: str = "Songs", genre: str = "jazz", popularity: int = 50) -> dict[str, Any]:
    body = {"title": title, "artist_id": artist_id, "album": album, "duration_s": 200, "genre": genre,
            "popularity": popularity}
    response = await client.post("/api/tracks", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _all_pages(client: httpx.AsyncClient, path: str, params: dict[str, Any],
                     headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(path, params=query, headers=headers)).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination never ended")


async def test_search_is_ranked_filtered_and_paged(app: Running) -> None:
    client = app.client
    admin = await admin_headers(client)
    await handlers.seed_demo(app.service("music").deps)
    mingus = await _artist(client, admin, "Harbor Moon Ensemble", ["jazz"])
    other = await _artist(client, admin, "Quiet Rooms", ["folk"])
    in_title = await _track(client, admin, other["id"], "Moonlit Harbor", album="Nights", genre="folk")
    in_album = await _track(client, admin, other["id"], "Small Hours", album="Harbor Tapes", genre="folk")
    by_artist = await _track(client, admin, mingus["id"], "Blue Steps", album="Nights")

    found = (await client.get("/api/tracks", params={"q": "harbor", "limit": 100})).json()["items"]
    ids = [t["id"] for t in found]
    # A title match outranks an artist-name match, which outranks an album match.
    assert ids.index(in_title["id"]) < ids.index(by_artist["id"]) < ids.index(in_album["id"])
    prefix = [t["id"] for t in (await client.get("/api/tracks", params={"q": "moonl harb"})).json()["items"]]
    assert prefix == [in_title["id"]]
    folk = (await client.get("/api/tracks", params={"q": "harbor", "genre": "folk", "limit": 100})).json()["items"]
    assert {t["id"] for t in folk} == {in_title["id"], in_album["id"]}

    artists = (await client.get("/api/artists", params={"q": "harbor moon"})).json()["items"]
    assert artists[0]["id"] == mingus["id"]
    jazz = await _all_pages(client, "/api/artists", {"genre": "jazz", "limit": 3})
    assert mingus["id"] in {a["id"] for a in jazz} and other["id"] not in {a["id"] for a in jazz}
    assert all("jazz" in a["genres"] for a in jazz)

    # Keyset pages, searching or not, add up to the one long page: no duplicates, nothing skipped.
    for params in ({}, {"q": "golden"}, {"q": "rivers", "genre": "rock"}):
        whole = await _all_pages(client, "/api/tracks", {**params, "limit": 100})
        paged = await _all_pages(client, "/api/tracks", {**params, "limit": 7})
        assert whole and [t["id"] for t in paged] == [t["id"] for t in whole], params
        assert len({t["id"] for t in paged}) == len(paged)
    names = [a["name"] for a in await _all_pages(client, "/api/artists", {"limit": 9})]
    assert len(names) >= 62 and names == sorted(names)

    bad = await client.get("/api/tracks", params={"cursor": "not-ours"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    searching_cursor = (await client.get("/api/tracks", params={"q": "golden", "limit": 1})).json()["next_cursor"]
    assert (await client.get("/api/tracks", params={"cursor": searching_cursor})).status_code == 400
    assert (await client.get("/api/tracks", params={"q": "\"*) OR ("})).status_code == 200
    assert (await client.post("/api/artists", json={"name": "X", "genres": ["jazz"], "country": "NL"})).status_code == 401


async def _event(client: httpx.AsyncClient, admin: dict[str, str], name: str, category: str = "concert") -> str:
    body = {"name": name, "category": category, "venue": "Paradiso", "city": "Amsterdam",
            "starts_at": (datetime.now(UTC) + timedelta(days=10)).isoformat(), "currency": "EUR",
            "sections": [{"name": "Floor", "price": 4000, "capacity": 100}]}
    response = await client.post("/api/events", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_lineup_of_a_published_event_makes_a_playlist(app: Running) -> None:
    client = app.client
    admin, fan = await admin_headers(client), await customer_headers(client)
    assert (await client.put("/api/lineups/never-published", json={"artist_ids": []}, headers=admin)).status_code == 404
    assert (await client.get("/api/lineups/never-published")).status_code == 404
    event_id = await _event(client, admin, "Moonlight Jam")

    async def learned() -> bool:
        return (await client.get(f"/api/lineups/{event_id}")).status_code == 200

    await wait_for(learned)
    headliner = await _artist(client, admin, "Nova Quartet", ["jazz"])
    support = await _artist(client, admin, "Late Trains", ["jazz"])
    tracks = {
        "hit": await _track(client, admin, headliner["id"], "Hit", popularity=90),
        "deep": await _track(client, admin, headliner["id"], "Deep Cut", popularity=10),
        "mid": await _track(client, admin, headliner["id"], "Middle", popularity=50),
        "b-side": await _track(client, admin, headliner["id"], "B-Side", popularity=20),
        "support": await _track(client, admin, support["id"], "Opener", popularity=70),
    }
    assert (await client.post(f"/api/lineups/{event_id}/playlist", headers=fan)).status_code == 422  # empty
    body = {"artist_ids": [headliner["id"], support["id"]]}
    assert (await client.put(f"/api/lineups/{event_id}", json=body, headers=fan)).status_code == 403
    unknown = await client.put(f"/api/lineups/{event_id}", json={"artist_ids": ["nobody"]}, headers=admin)
    assert unknown.status_code == 422
    lineup = await client.put(f"/api/lineups/{event_id}", json=body, headers=admin)
    assert lineup.status_code == 200, lineup.text
    assert [a["name"] for a in (await client.get(f"/api/lineups/{event_id}")).json()["artists"]] == [
        "Nova Quartet", "Late Trains"]

    made = await client.post(f"/api/lineups/{event_id}/playlist", headers=fan)
    assert made.status_code == 201, made.text
    playlist = made.json()
    assert playlist["public"] is False and playlist["name"].startswith("Moonlight Jam")
    assert [e["track"]["id"] for e in playlist["tracks"]] == [
        tracks["hit"]["id"], tracks["mid"]["id"], tracks["b-side"]["id"], tracks["support"]["id"]]
    assert [e["position"] for e in playlist["tracks"]] == [0, 1, 2, 3]
    mine = (await client.get("/api/playlists", headers=fan)).json()["items"]
    assert [p["id"] for p in mine] == [playlist["id"]] and mine[0]["track_count"] == 4

    artist = (await client.get(f"/api/artists/{headliner['id']}")).json()
    assert [e["event_id"] for e in artist["upcoming_events"]] == [event_id]
    assert artist["upcoming_events"][0]["tickets_url"] == f"/events/{event_id}"
    assert artist["tracks"][0]["title"] == "Hit"


async def test_playlist_positions_versions_limits_and_privacy(app: Running) -> None:
    client = app.client
    admin = await admin_headers(client)
    owner, other = await customer_headers(client, "owner@example.com"), await customer_headers(client, "o@example.com")
    artist = await _artist(client, admin, "Tape Loop", ["indie"])
    a, b, c = [(await _track(client, admin, artist["id"], t, genre="indie"))["id"] for t in ("A", "B", "C")]

    created = await client.post("/api/playlists", json={"name": "Road trip"}, headers=owner)
    assert created.status_code == 201 and created.json()["version"] == 1
    pid = created.json()["id"]
    assert created.json()["share_url"] == f"/playlists/{pid}"
    for track_id, position in ((a, None), (b, None), (c, 0)):
        body = {"track_id": track_id} if position is None else {"track_id": track_id, "position": position}
        assert (await client.post(f"/api/playlists/{pid}/tracks", json=body, headers=owner)).status_code == 201
    playlist = (await client.get(f"/api/playlists/{pid}", headers=owner)).json()
    assert [(e["position"], e["track"]["id"]) for e in playlist["tracks"]] == [(0, c), (1, a), (2, b)]
    removed = await client.delete(f"/api/playlists/{pid}/tracks/1", headers=owner)
    assert [(e["position"], e["track"]["id"]) for e in removed.json()["tracks"]] == [(0, c), (1, b)]
    assert (await client.delete(f"/api/playlists/{pid}/tracks/2", headers=owner)).status_code == 422
    bad_track = await client.post(f"/api/playlists/{pid}/tracks", json={"track_id": "nope"}, headers=owner)
    assert bad_track.status_code == 422
    version = removed.json()["version"]
    assert removed.headers["etag"] == f'"{version}"'

    # Reorder: only against the version last seen.
    body = {"track_ids": [b, c]}
    assert (await client.put(f"/api/playlists/{pid}/tracks", json=body, headers=owner)).status_code == 428
    stale = await client.put(f"/api/playlists/{pid}/tracks", json=body, headers={**owner, "If-Match": str(version - 1)})
    assert stale.status_code == 412 and stale.json()["version"] == version
    fresh = await client.put(f"/api/playlists/{pid}/tracks", json=body, headers={**owner, "If-Match": f'"{version}"'})
    assert fresh.status_code == 200 and [e["track"]["id"] for e in fresh.json()["tracks"]] == [b, c]
    again = await client.put(f"/api/playlists/{pid}/tracks", json=body, headers={**owner, "If-Match": str(version)})
    assert again.status_code == 412

    # At most 1,000 tracks.
    v = fresh.json()["version"]
    full = await client.put(f"/api/playlists/{pid}/tracks", json={"track_ids": [a] * 1000},
                            headers={**owner, "If-Match": str(v)})
    assert full.status_code == 200 and len(full.json()["tracks"]) == 1000
    assert full.json()["tracks"][-1]["position"] == 999
    over = await client.post(f"/api/playlists/{pid}/tracks", json={"track_id": b}, headers=owner)
    assert over.status_code == 422 and over.json()["type"].endswith("/playlist-full")
    too_long = await client.put(f"/api/playlists/{pid}/tracks", json={"track_ids": [a] * 1001},
                                headers={**owner, "If-Match": str(full.json()["version"])})
    assert too_long.status_code == 422 and too_long.json()["type"].endswith("/playlist-full")

    # Private: another user and an anonymous visitor get 404, never the content; nor can they change it.
    for headers in (other, {}):
        hidden = await client.get(f"/api/playlists/{pid}", headers=headers)
        assert hidden.status_code == 404 and "Road trip" not in hidden.text
    assert (await client.patch(f"/api/playlists/{pid}", json={"name": "Mine"}, headers=other)).status_code == 404
    assert (await client.delete(f"/api/playlists/{pid}", headers=other)).status_code == 404
    assert (await client.post(f"/api/playlists/{pid}/tracks", json={"track_id": a}, headers=other)).status_code == 404
    assert (await client.get("/api/playlists", headers=other)).json()["items"] == []

    shared = await client.patch(f"/api/playlists/{pid}", json={"public": True, "description": "for the road"},
                                headers=owner)
    assert shared.status_code == 200 and shared.json()["public"] is True
    seen = await client.get(f"/api/playlists/{pid}")
    assert seen.status_code == 200 and seen.json()["description"] == "for the road"
    assert (await client.patch(f"/api/playlists/{pid}", json={"name": ""}, headers=owner)).status_code == 422

    assert (await client.delete(f"/api/playlists/{pid}", headers=owner)).status_code == 204
    assert (await client.get(f"/api/playlists/{pid}", headers=owner)).status_code == 404
    assert await playlist_changes(app, pid, 9) == [
        "created", "track-added", "track-added", "track-added", "track-removed", "reordered", "reordered", "updated",
        "deleted"]  # and nothing from the refused changes


async def playlist_changes(app: Running, playlist_id: str, count: int) -> list[str]:
    """The changes ``music.playlist-changed`` announced for one playlist, in order, each once."""
    consumer = app.runtime.bus.consumer(f"test-{uuid.uuid4().hex[:8]}", ["music.playlists"])
    await consumer.start()
    changes: list[str] = []
    try:

        async def enough() -> bool:
            records = await consumer.poll(timeout=0.5)
            await consumer.commit(records)
            changes.extend(r.envelope.data["change"] for r in records if r.envelope.key == playlist_id)
            return len(changes) >= count

        await wait_for(enough)
        await asyncio.sleep(0.3)
        await enough()  # nothing more arrives
    finally:
        await consumer.stop()
    return changes


async def test_demo_concerts_and_festivals_get_their_lineups(tmp_path: Path, db_url: str) -> None:
    configs = {"music": MusicSettings(database_url=db_url), "catalog": CatalogSettings(),
               "identity": IdentitySettings()}
    async with running(Settings(data_dir=tmp_path, demo=True), ["identity", "catalog", "music"],
                       configs=configs) as app:
        client = app.client
        events = (await client.get("/api/events", params={"limit": 100})).json()["items"]
        musical = [e for e in events if e["category"] in ("concert", "festival")]
        assert len(musical) >= 10

        async def lineups() -> dict[str, list[dict[str, Any]]] | None:
            found = {}
            for event in events:
                response = await client.get(f"/api/lineups/{event['id']}")
                if response.status_code != 200:
                    return None
                found[event["id"]] = response.json()["artists"]
            return found

        by_event = await wait_for(lineups, timeout=30)
        for event in events:
            expected = {"concert": 3, "festival": 8}.get(event["category"], 0)
            assert len(by_event[event["id"]]) == expected, event["name"]
        jazz = next(e for e in events if e["name"] == "Jazz at Blue Note")
        assert all("jazz" in a["genres"] for a in by_event[jazz["id"]])
        artists = (await client.get("/api/artists", params={"limit": 100})).json()["items"]
        assert len(artists) >= 50
        headliner = (await client.get(f"/api/artists/{by_event[jazz['id']][0]['id']}")).json()
        assert jazz["id"] in [e["event_id"] for e in headliner["upcoming_events"]]


def _published(event_id: str, name: str, envelope_id: str) -> Envelope:
    data = {"event_id": event_id, "name": name, "category": "concert", "venue": "Blue Note", "city": "Milan",
            "starts_at": (datetime.now(UTC) + timedelta(days=9)).isoformat().replace("+00:00", "Z"),
            "currency": "EUR", "seating": "general", "sections": []}
    return Envelope(id=envelope_id, type="catalog.event-published", source="catalog", time=datetime.now(UTC),
                    key=event_id, data=data, topic="catalog.events")


async def test_catalog_events_are_applied_once_and_the_demo_lineup_given_once(tmp_path: Path, db_url: str) -> None:
    async with running(Settings(data_dir=tmp_path, demo=True), ["music"],
                       configs={"music": MusicSettings(database_url=db_url)}, workers=False) as app:
        deps = app.service("music").deps
        first = _published("ev-1", "Jazz at Blue Note", "00000000-0000-7000-8000-000000000001")
        await handlers.apply_catalog_event(deps, first)
        assert len((await handlers.get_lineup(deps, "ev-1")).artists) == 3
        await handlers.set_lineup(deps, "ev-1", [])  # the admins' choice from now on
        await handlers.apply_catalog_event(deps, first)  # delivered again: already applied (inbox)
        again = _published("ev-1", "Jazz at Blue Note (late show)", "00000000-0000-7000-8000-000000000002")
        await handlers.apply_catalog_event(deps, again)  # republished: the event changes, the line-up stays
        lineup = await handlers.get_lineup(deps, "ev-1")
        assert lineup.artists == () and lineup.event.name == "Jazz at Blue Note (late show)"


@pytest.mark.kafka
async def test_music_learns_events_over_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    settings = Settings(data_dir=tmp_path, demo=False, bus="kafka", kafka_bootstrap_servers=kafka_bootstrap,
                        kafka_session_timeout_ms=2_000, kafka_heartbeat_interval_ms=300,
                        kafka_rebalance_timeout_ms=1_000)
    configs = {"identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"])}
    async with running(settings, ["identity", "catalog", "music"], configs=configs) as app:
        client = app.client
        event_id = await _event(client, await admin_headers(client), "Kafka Jazz Night")

        async def learned() -> bool:
            response = await client.get(f"/api/lineups/{event_id}")
            return response.status_code == 200 and response.json()["event"]["name"] == "Kafka Jazz Night"

        await wait_for(learned, timeout=40)


async def test_my_playlists_are_paged_oldest_first(app: Running) -> None:
    client = app.client
    fan = await customer_headers(client, "pager@example.com")
    made = [(await client.post("/api/playlists", json={"name": f"Mix {i}"}, headers=fan)).json()["id"]
            for i in range(5)]
    pages = await _all_pages(client, "/api/playlists", {"limit": 2}, headers=fan)
    assert [p["id"] for p in pages] == made
    assert (await client.get("/api/playlists", params={"cursor": "x"}, headers=fan)).status_code == 400
    assert (await client.get("/api/playlists")).status_code == 401
