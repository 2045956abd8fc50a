"""Tracking end to end in one process: POST /collect -> bus -> processor -> database -> query API.

Runs on SQLite and PostgreSQL, on the sql bus and on Kafka (Tansu), through the real gateway.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.settings import Settings
from boxoffice.tracking import handlers, store
from boxoffice.tracking.deps import TrackingSettings
from boxoffice.tracking.domain import BATCH_TYPE, EVENT_TYPE, TOPIC
from tests.harness.app import Running, running, wait_for

pytestmark = pytest.mark.timeout(120)

ADMIN = {"email": "boss@example.com", "password": "boss-password-2026"}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def event(
    session: str = "s-1", *, type_: str = "page_view", url: str = "http://shop.test/events", ts: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "ts": (ts or datetime.now(UTC)).isoformat(),
        "anonymous_id": "a-" + session,
        "session_id": session,
        "url": url,
        **extra,
    }
    return body


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"sent_at": datetime.now(UTC).isoformat(), "events": list(events)}


@dataclass
class App:
    running: Running
    admin: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.running.client

    @property
    def tracking(self) -> Any:
        return self.running.service("tracking")

    async def stored(self) -> int:
        async with self.tracking.db.read() as conn:
            return await store.count_events(conn)

    async def events(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get("/api/tracking/events", params=params, headers=self.admin)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


def kafka_settings(tmp_path: Path, bootstrap: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        bus="kafka",
        bus_partitions=2,
        kafka_bootstrap_servers=bootstrap,
        kafka_session_timeout_ms=2_000,
        kafka_heartbeat_interval_ms=300,
        kafka_rebalance_timeout_ms=1_000,
    )


@asynccontextmanager
async def open_app(settings: Settings, db_url: str | None, *, workers: bool = True, **config: Any) -> AsyncIterator[App]:
    configs = {
        "identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"]),
        "tracking": TrackingSettings(database_url=db_url, **config),
    }
    async with running(settings, ["identity", "tracking"], configs=configs, workers=workers) as app:
        tokens = (await app.client.post("/api/auth/login", json=ADMIN)).json()
        yield App(app, {"Authorization": f"Bearer {tokens['access_token']}"})


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[App]:
    async with open_app(Settings(data_dir=tmp_path, bus_poll_interval_seconds=0.05), db_url) as opened:
        yield opened


async def post(app: App, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await app.client.post("/collect", json=body, headers={"user-agent": CHROME, **headers})


async def test_collected_events_are_enriched_stored_and_found_newest_first(app: App) -> None:
    now = datetime.now(UTC)
    sent = [
        event("s-1", url="http://shop.test/events/ev-42", ts=now - timedelta(seconds=4), title="Night of Strings"),
        event("s-1", type_="click", ts=now - timedelta(seconds=3), element={"tag": "a", "text": "Buy", "track": "buy"}),
        event("s-1", type_="form_submit", ts=now - timedelta(seconds=2), props={"fields": ["email", "quantity"]}),
        event("s-1", type_="custom", name="seat-picked", ts=now - timedelta(seconds=1), props={"seat": "A-1"}),
        {**event("s-1"), "type": "scroll"},
        event("s-1", type_="custom"),  # a custom event needs a name
        {**event("s-1"), "url": "javascript:alert(1)"},
    ]
    response = await post(app, batch(*sent))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 4
    assert [r["index"] for r in body["rejected"]] == [4, 5, 6]
    assert all(r["reason"] for r in body["rejected"])
    await wait_for(lambda: _at_least(app, 4), timeout=20)

    items = await app.events(session_id="s-1")
    assert [i["type"] for i in items] == ["custom", "form_submit", "click", "page_view"]
    view = items[-1]
    assert view["event_id"] == sent[0]["event_id"]
    assert view["subject"] == {"type": "event", "id": "ev-42"}
    assert (view["browser"], view["os"], view["device"], view["is_bot"]) == ("Chrome", "Linux", "desktop", False)
    assert view["title"] == "Night of Strings"
    assert items[2]["element"] == {"tag": "a", "text": "Buy", "track": "buy"}
    assert items[0]["name"] == "seat-picked" and items[0]["props"] == {"seat": "A-1"}
    assert datetime.fromisoformat(view["received_at"]) >= datetime.fromisoformat(view["ts"])

    # Keyset pages of two: no overlap, no gap, and the last page has no cursor.
    first = (await app.client.get("/api/tracking/events", params={"limit": 2}, headers=app.admin)).json()
    second = (await app.client.get("/api/tracking/events", params={"limit": 2, "cursor": first["next_cursor"]},
                                   headers=app.admin)).json()
    assert [i["event_id"] for i in first["items"] + second["items"]] == [i["event_id"] for i in items]
    assert second["next_cursor"] is None
    assert [i["type"] for i in await app.events(type="click")] == ["click"]
    assert await app.events(user_id="nobody") == []
    window = {"from": (now - timedelta(seconds=3.5)).isoformat(), "to": (now - timedelta(seconds=1.5)).isoformat()}
    assert [i["type"] for i in await app.events(**window)] == ["form_submit", "click"]

    stats = await app.client.get("/api/tracking/stats", params={"interval": "minute"}, headers=app.admin)
    assert stats.status_code == 200, stats.text
    counts: dict[str, int] = {}
    for bucket in stats.json()["items"]:
        counts[bucket["type"]] = counts.get(bucket["type"], 0) + bucket["events"]
        assert bucket["sessions"] == 1 and bucket["users"] == 0
    assert counts == {"page_view": 1, "click": 1, "form_submit": 1, "custom": 1}
    pages = (await app.client.get("/api/tracking/pages", headers=app.admin)).json()["items"]
    assert pages == [{"path": "/events/ev-42", "views": 1, "sessions": 1}]


async def _at_least(app: App, count: int) -> bool:
    return await app.stored() >= count


async def test_agents_bots_and_users_are_told_apart(app: App) -> None:
    await post(app, batch(event("phone", user_id="u-7", url="http://shop.test/trains/runs/r-9")), **{"user-agent": IPHONE})
    await post(app, batch(event("crawler")), **{"user-agent": GOOGLEBOT})
    await wait_for(lambda: _at_least(app, 2), timeout=20)
    phone = (await app.events(user_id="u-7"))[0]
    assert (phone["browser"], phone["os"], phone["device"], phone["is_bot"]) == ("Mobile Safari", "iOS", "mobile", False)
    assert phone["subject"] == {"type": "run", "id": "r-9"}
    crawler = (await app.events(session_id="crawler"))[0]
    assert crawler["is_bot"] is True and crawler["device"] == "bot"


async def test_a_session_faster_than_a_person_is_flagged(tmp_path: Path, sqlite_url: str) -> None:
    async with open_app(Settings(data_dir=tmp_path), sqlite_url, bot_events_per_minute=30) as app:
        now = datetime.now(UTC).replace(second=30)
        events = [event("fast", type_="click", ts=now + timedelta(milliseconds=10 * i)) for i in range(40)]
        assert (await post(app, batch(*events))).json()["accepted"] == 40
        await wait_for(lambda: _at_least(app, 40), timeout=20)
        flags = [e["is_bot"] for e in reversed(await app.events(session_id="fast", limit=100))]
        assert flags[:30] == [False] * 30 and flags[30:] == [True] * 10


async def test_limits_content_types_and_access(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(data_dir=tmp_path)
    async with open_app(settings, sqlite_url, client_events_per_second=1, client_burst_events=30,
                        cors_origins=["https://partner.example"]) as app:
        too_many = await post(app, batch(*[event(f"s{i}") for i in range(501)]), **{"x-forwarded-for": "1.1.1.1"})
        assert too_many.status_code == 413 and too_many.json()["type"].endswith("/batch-too-large")
        big = batch(event("big", props={"blob": "x" * 4000}))
        big["events"] *= 1  # one event is fine; seventeen copies of it exceed 64 KB
        big["events"] = [dict(big["events"][0], event_id=str(uuid.uuid4())) for _ in range(17)]
        assert (await post(app, big)).status_code == 413

        plain = await app.client.post("/collect", content=_json(batch(event("beacon"))),
                                      headers={"content-type": "text/plain;charset=UTF-8"})
        assert plain.status_code == 202 and plain.json()["accepted"] == 1
        form = await app.client.post("/collect", content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415 and form.headers["content-type"].startswith("application/problem+json")
        malformed = await app.client.post("/collect", content=b"{not json", headers={"content-type": "application/json"})
        assert malformed.status_code == 400
        not_a_batch = await app.client.post("/collect", json={"events": "many"})
        assert not_a_batch.status_code == 422 and not_a_batch.json()["type"].endswith("/invalid-batch")

        foreign = await post(app, batch(event("x")), origin="https://evil.example")
        assert foreign.status_code == 403
        partner = await post(app, batch(event("p")), origin="https://partner.example")
        assert partner.status_code == 202
        assert partner.headers["access-control-allow-origin"] == "https://partner.example"
        preflight = await app.client.options("/collect", headers={"origin": "https://partner.example"})
        assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]

        # The bucket holds 30 events per client; what has been taken so far leaves fewer than 20.
        flood = [await post(app, batch(*[event("flood") for _ in range(10)])) for _ in range(3)]
        assert flood[-1].status_code == 429
        assert int(flood[-1].headers["retry-after"]) >= 1

        for path in ("/api/tracking/events", "/api/tracking/stats", "/api/tracking/pages"):
            assert (await app.client.get(path)).status_code == 401
        bad_cursor = await app.client.get("/api/tracking/events", params={"cursor": "nope"}, headers=app.admin)
        assert bad_cursor.status_code == 400
        naive = await app.client.get("/api/tracking/events", params={"from": "2026-01-01T00:00:00"}, headers=app.admin)
        assert naive.status_code == 422
        huge = await app.client.get("/api/tracking/stats", headers=app.admin,
                                    params={"interval": "minute", "from": "2020-01-01T00:00:00Z"})
        assert huge.status_code == 400


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()


async def test_records_that_are_not_valid_events_go_to_the_failed_table(app: App) -> None:
    bus = app.running.runtime.bus
    good, also_good, late = event("ok"), event("ok2"), event("late")
    received = datetime.now(UTC).isoformat()
    records = [
        # One event per record, as collectors before the batch record published.
        new_event(EVENT_TYPE, source="test", key="ok", topic=TOPIC,
                  data={**good, "received_at": received, "user_agent": CHROME}),
        new_event(EVENT_TYPE, source="test", key="bad", topic=TOPIC, data={"event_id": "e-1", "type": "page_view"}),
        new_event("tracking.something-else", source="test", key="odd", topic=TOPIC, data={"x": 1}),
        # A batch record: its bad event fails alone; a record whose own fields are wrong fails all its events.
        new_event(BATCH_TYPE, source="test", key="ok2", topic=TOPIC, data={
            "received_at": received, "user_agent": CHROME,
            "events": [also_good, {**event("ok2"), "event_id": "e-2"}, {**event("ok2"), "url": "mailto:x"}]}),
        new_event(BATCH_TYPE, source="test", key="late", topic=TOPIC,
                  data={"received_at": "yesterday", "user_agent": CHROME, "events": [late]}),
    ]
    await bus.publish(records)
    await wait_for(lambda: _at_least(app, 2), timeout=20)

    async def failed() -> list[tuple[str | None, str, str]]:
        async with app.tracking.db.read() as conn:
            return await store.failed(conn)

    rows = await wait_for(lambda: _failed_count(failed, 5), timeout=20)
    by_id = {event_id: (reason, payload) for event_id, reason, payload in rows}
    assert by_id["e-1"][0] == "event_id: must be a UUID"
    assert '"event_id":"e-1"' in by_id["e-1"][1]
    assert by_id["e-2"][0] == "event_id: must be a UUID" and f'"received_at":"{received}"' in by_id["e-2"][1]
    assert [reason for reason, _ in by_id.values()].count("url: must be an http(s) URL") == 1
    assert by_id[late["event_id"]][0] == "received_at: must be an RFC 3339 date and time with its zone"
    assert any("unexpected record type" in reason for reason, _ in by_id.values())
    assert {e["event_id"] for e in await app.events()} == {good["event_id"], also_good["event_id"]}


async def _failed_count(read: Callable[[], Any], count: int) -> Any:
    rows = await read()
    return rows if len(rows) >= count else None


BACKENDS = ["sql-sqlite", "sql-postgres", "kafka-sqlite", "kafka-postgres"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_batch_sent_twice_is_stored_once_and_a_crash_before_storing_loses_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    bus, database = backend.split("-")
    if database == "postgres":
        from tests.harness.postgres import create_database

        db_url: str | None = create_database(request.getfixturevalue("postgres_admin_url"), prefix="tracking")
    else:
        db_url = None
    if bus == "kafka":
        settings = kafka_settings(tmp_path, request.getfixturevalue("kafka_bootstrap"))
    else:
        settings = Settings(data_dir=tmp_path, bus_poll_interval_seconds=0.05)
    sent = batch(*[event(f"s-{i % 3}", type_="click") for i in range(30)])

    # The processor is down (crashed): the collector still accepts, twice, and the bus keeps both copies.
    async with open_app(settings, db_url, workers=False) as app:
        for _ in range(2):
            response = await post(app, sent)
            assert response.status_code == 202 and response.json()["accepted"] == 30
        assert await app.stored() == 0

    # Back up: every event is stored, once, though it was delivered twice.
    async with open_app(settings, db_url) as app:
        await wait_for(lambda: _at_least(app, 30), timeout=60)
        await asyncio.sleep(1.0)  # the second copy has been read by now; it must not add rows
        assert await app.stored() == 30
        ids = {e["event_id"] for e in await app.events(limit=500)}
        assert ids == {e["event_id"] for e in sent["events"]}
        # A redelivery of what is already stored is a no-op.
        envelope = new_event(EVENT_TYPE, source="test", key="s-0", topic=TOPIC,
                             data={**sent["events"][0], "received_at": datetime.now(UTC).isoformat()})
        assert await handlers.store_batch(app.tracking.deps, [envelope, envelope]) == 0
        assert await app.stored() == 30


@pytest.mark.postgres
async def test_postgres_keeps_a_partition_per_day_and_drops_them_after_the_retention(
    tmp_path: Path, pg_url: str
) -> None:
    async with open_app(Settings(data_dir=tmp_path), pg_url, workers=False, retention_days=2) as app:
        deps = app.tracking.deps
        await handlers.maintain_storage(deps)
        async with deps.db.read() as conn:
            days = await store.partitions(conn)
        today = datetime.now(UTC).date()
        assert days == [today + timedelta(days=n) for n in range(-1, 4)]
        old = datetime.now(UTC) - timedelta(days=1)
        await post(app, batch(event("old", ts=old), event("new")))
        envelope_data = {**event("older", ts=datetime.now(UTC) - timedelta(days=5)),
                         "received_at": datetime.now(UTC).isoformat()}
        # Read what the collector published and store it, as the processor would.
        consumer = app.running.runtime.bus.consumer("tracking-processor", [TOPIC])
        await consumer.start()
        records = await consumer.poll(max_records=100, timeout=2.0)
        await consumer.stop()
        stored = await handlers.store_batch(
            deps,
            [r.envelope for r in records]
            + [new_event(EVENT_TYPE, source="test", key="older", topic=TOPIC, data=envelope_data)],
        )
        assert stored == 2
        async with deps.db.read() as conn:
            rows = await conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM tracking_events GROUP BY 1"))
            per_partition = {name: count for name, count in rows}
            failed_rows = await store.failed(conn)
        assert per_partition == {store.partition_name(old.date()): 1, store.partition_name(today): 1}
        assert [reason for _, reason, _ in failed_rows] == ["ts: older than the retention period"]

        # Two days later, yesterday's partition is past the retention and goes, with its rows.
        app.tracking.clock = lambda: datetime.now(UTC) + timedelta(days=2)
        await handlers.maintain_storage(deps)
        async with deps.db.read() as conn:
            days = await store.partitions(conn)
            left = (await conn.execute(select(func.count()).select_from(store.events))).scalar_one()
        assert store.partition_name(old.date()) not in [store.partition_name(d) for d in days]
        assert min(days) == today and left == 1


async def test_the_lean_collect_route_keeps_what_the_middlewares_gave(tmp_path: Path, sqlite_url: str) -> None:
    """``POST /collect`` is answered in front of FastAPI (``tracking.collector``): the request id, the security
    header, the metrics, the body limit of a body without a declared length, and fault injection still apply."""
    from boxoffice.platform import faults
    from boxoffice.platform.metrics import HTTP_REQUESTS

    settings = Settings(data_dir=tmp_path)
    async with open_app(settings, sqlite_url, workers=False) as app:
        counted = HTTP_REQUESTS.labels("tracking", "POST", "/collect", "202")
        before = counted._value.get()
        ok = await post(app, batch(event("lean")), **{"x-request-id": "req-lean-1"})
        assert ok.status_code == 202 and ok.json() == {"accepted": 1, "rejected": []}
        assert ok.headers["x-request-id"] == "req-lean-1"
        assert ok.headers["x-content-type-options"] == "nosniff"
        assert counted._value.get() == before + 1
        made = await post(app, batch(event("lean")))
        assert len(made.headers["x-request-id"]) == 32

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies as the body grows
            yield b'{"events": ['
            for _ in range(70):
                yield b'{"pad": "' + b"x" * 1000 + b'"},'
            yield b"{}]}"

        chunked = await app.client.post("/collect", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert chunked.headers["content-type"].startswith("application/problem+json")
        assert chunked.headers["x-content-type-options"] == "nosniff"

        wrong_method = await app.client.get("/collect")
        assert wrong_method.status_code == 405  # not the lean route's: FastAPI's answer, as for any route

        faults.registry().replace(faults.parse_rules(
            '[{"service": "tracking", "path_prefix": "/collect", "abort_status": 503, "abort_percent": 100}]'
        ))
        try:
            refused = await post(app, batch(event("faulted")))
        finally:
            faults.registry().clear()
        assert refused.status_code == 503 and refused.json()["type"].endswith("/injected-fault")
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert (await post(app, batch(event("again")))).status_code == 202


async def test_a_poll_is_stored_in_slices_that_let_the_loop_run(tmp_path: Path, db_url: str) -> None:
    """A poll's events are validated, built and inserted ``SLICE_EVENTS`` at a time (in one transaction), and the
    event loop runs between slices (here after each: no hold): in one process the collector's requests are
    answered meanwhile."""
    async with open_app(Settings(data_dir=tmp_path), db_url, workers=False, processor_hold_ms=0) as app:
        deps = app.tracking.deps
        received = datetime.now(UTC).isoformat()
        sessions = [[event(f"slice-{n}", type_="click") for _ in range(20)] for n in range(40)]
        sessions[33][7]["event_id"] = "not-a-uuid"  # a bad event in a late slice fails alone
        records = [
            new_event(BATCH_TYPE, source="test", key=f"slice-{n}", topic=TOPIC,
                      data={"received_at": received, "user_agent": CHROME, "events": events})
            for n, events in enumerate(sessions)
        ]
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        ticks = 0
        try:
            stored = await handlers.store_batch(deps, records)
        finally:
            ticker.cancel()
        assert stored == 799 and await app.stored() == 799
        assert ticks >= 800 // handlers.SLICE_EVENTS * 2 - 1  # at least once between slices of building and inserting
        async with deps.db.read() as conn:
            assert [(e, r) for e, r, _ in await store.failed(conn)] == [("not-a-uuid", "event_id: must be a UUID")]
        assert await handlers.store_batch(deps, records) == 0  # delivered again: nothing new
        assert await app.stored() == 799


async def test_sqlite_retention_deletes_the_oldest_events_in_slices(tmp_path: Path, sqlite_url: str) -> None:
    async with open_app(Settings(data_dir=tmp_path), sqlite_url, workers=False, retention_days=2) as app:
        deps = app.tracking.deps
        now = datetime.now(UTC)
        received = now.isoformat()
        old = [event("old", ts=now - timedelta(days=1, seconds=n)) for n in range(5)]
        new = [event("new", ts=now - timedelta(seconds=n)) for n in range(3)]
        record = new_event(BATCH_TYPE, source="test", key="old", topic=TOPIC,
                           data={"received_at": received, "user_agent": CHROME, "events": old + new})
        assert await handlers.store_batch(deps, [record]) == 8
        cutoff = now - timedelta(hours=12)
        async with deps.db.uow() as uow:
            assert await store.delete_before(uow.conn, cutoff, limit=3) == 3
            await uow.commit()
        kept = {e["event_id"] for e in await app.events(limit=100)}
        # The oldest three went first.
        assert kept == {e["event_id"] for e in old[:2] + new}
        async with deps.db.uow() as uow:
            assert await store.delete_before(uow.conn, cutoff, limit=3) == 2
            await uow.commit()
        assert {e["event_id"] for e in await app.events(limit=100)} == {e["event_id"] for e in new}
