"""The waiting room on SQLite and PostgreSQL: the draw, first come first served, one place per account,
admission at the rate, expiry, sold-out closing the line, a restart keeping it, and the fairness replay."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import update

from boxoffice.booking.deps import BookingSettings
from boxoffice.catalog.deps import CatalogSettings
from boxoffice.platform.admission import admitted
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.settings import Settings
from boxoffice.waitingroom import domain, fairness, handlers, store
from boxoffice.waitingroom.deps import WaitingRoomSettings
from boxoffice.waitingroom.memory import LineMemory
from tests.harness.app import FakeClock, Running, running, wait_for
from tests.harness.booking import CARD_OK, token_for

SECRET = Settings().secret


def queued_event(*, on_sale_at: datetime, capacity: int = 100, admit_per_minute: int | None = 60) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    queue: dict[str, Any] = {"on_sale_at": on_sale_at.isoformat()}
    if admit_per_minute is not None:
        queue["admit_per_minute"] = admit_per_minute
    return {
        "event_id": event_id,
        "name": "Reunion Tour",
        "starts_at": (on_sale_at + timedelta(days=60)).isoformat(),
        "sections": [{"section_id": f"{event_id}-floor", "name": "Floor", "price": 9000, "capacity": capacity}],
        "queue": queue,
    }


def published(data: dict[str, Any]) -> Envelope:
    return new_event("catalog.event-published", source="catalog", key=data["event_id"], data=data, topic="catalog.events")


def booked(event_id: str, tickets: int, status: str = "confirmed") -> Envelope:
    data = {"event_id": event_id, "user_id": "u", "order_id": str(uuid.uuid4()), "ticket_count": tickets,
            "amount_minor": 100, "currency": "EUR", "status": status, "timestamp": datetime.now(UTC).isoformat()}
    return new_event("booking.order-confirmed", source="booking", key=event_id, data=data, topic="ticket-bookings")


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    configs = {"waitingroom": WaitingRoomSettings(database_url=db_url, abandon_after_seconds=3600)}
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "waitingroom"], workers=False,
                       configs=configs) as app:
        app.service("waitingroom").clock = FakeClock()
        yield app


def clock(app: Running) -> FakeClock:
    value: FakeClock = app.service("waitingroom").clock
    return value


async def open_room(app: Running, **event: Any) -> dict[str, Any]:
    data = queued_event(on_sale_at=clock(app).now + timedelta(minutes=5), **event)
    await handlers.apply_catalog_event(app.service("waitingroom").deps, published(data))
    return data


async def join(app: Running, event_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await app.client.post(f"/api/queue/{event_id}/join", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def me(app: Running, event_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await app.client.get(f"/api/queue/{event_id}/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def user_of(headers: dict[str, str]) -> str:
    claims = jwt.decode(headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    return str(claims["sub"])


async def tick(app: Running, seconds: float = 1.0) -> int:
    clock(app).advance(seconds=seconds)
    return await handlers.tick_rooms(app.service("waitingroom").deps)


async def test_the_pre_queue_is_drawn_at_the_opening_and_later_arrivals_queue_in_order(app: Running) -> None:
    event = await open_room(app)
    early = [token_for(app) for _ in range(30)]
    for buyer in early:
        place = await join(app, event["event_id"], buyer)
        assert place["status"] == "waiting" and place["position"] is None  # nobody has a position before the draw
        assert 0 < place["eta_seconds"] <= 300  # the wait starts at on_sale_at
    clock(app).advance(minutes=5)
    await tick(app, 0)
    positions = [(await me(app, event["event_id"], b))["position"] for b in early]
    assert sorted(positions) == list(range(1, 31))
    assert positions != list(range(1, 31)), "arriving first gave the first place: no draw happened"

    late = [token_for(app) for _ in range(5)]
    assert [(await join(app, event["event_id"], b))["position"] for b in late] == [31, 32, 33, 34, 35]

    replay = await fairness.replay_line(app.service("waitingroom").deps, event["event_id"])
    assert replay.prequeue == 30 and replay.seed and replay.fair, replay.violations


async def test_one_place_per_account_even_when_joining_from_two_browsers_at_once(app: Running) -> None:
    event = await open_room(app)
    buyer = token_for(app)
    places = await asyncio.gather(*(join(app, event["event_id"], buyer) for _ in range(6)))
    assert len({p["position"] for p in places}) == 1
    clock(app).advance(minutes=5)
    await tick(app, 0)
    other = await join(app, event["event_id"], token_for(app))
    assert other["position"] == 2  # the six joins took one place, not six


async def test_admission_follows_the_rate_in_position_order_and_signs_a_token_booking_accepts(app: Running) -> None:
    event = await open_room(app, admit_per_minute=60)  # one a second
    clock(app).advance(minutes=5)
    await tick(app, 0)
    buyers = [token_for(app) for _ in range(5)]
    for buyer in buyers:
        await join(app, event["event_id"], buyer)
    admitted_per_tick = [await tick(app, 1.0) for _ in range(3)]
    assert admitted_per_tick == [1, 1, 1]
    states = [await me(app, event["event_id"], b) for b in buyers]
    assert [s["status"] for s in states] == ["admitted"] * 3 + ["waiting"] * 2
    # One ahead, then its own turn, one a second.
    assert [s["ahead"] for s in states[3:]] == [0, 1] and states[4]["eta_seconds"] == 2
    token = states[0]["admission"]["token"]
    me_id = user_of(buyers[0])
    now = clock(app).now
    assert admitted(SECRET, token, event_id=event["event_id"], user_id=me_id, now=now)
    assert not admitted(SECRET, token, event_id=str(uuid.uuid4()), user_id=me_id, now=now)  # another sale
    assert not admitted(SECRET, token, event_id=event["event_id"], user_id="someone-else", now=now)
    assert not admitted(SECRET, token[:-2] + "xx", event_id=event["event_id"], user_id=me_id, now=now)


async def test_an_admission_expires_and_then_admits_nobody(app: Running) -> None:
    event = await open_room(app, admit_per_minute=600)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    buyer = token_for(app)
    await join(app, event["event_id"], buyer)
    await tick(app)
    assert (await me(app, event["event_id"], buyer))["admission"] is not None
    await tick(app, 601)
    after = await me(app, event["event_id"], buyer)
    assert after["status"] == "closed" and after["reason"] == "admission_expired" and after["admission"] is None


async def test_selling_out_closes_the_line_for_everyone_at_once(app: Running) -> None:
    event = await open_room(app, capacity=10)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    buyers = [token_for(app) for _ in range(4)]
    for buyer in buyers:
        await join(app, event["event_id"], buyer)
    deps = app.service("waitingroom").deps
    await handlers.apply_booking(deps, booked(event["event_id"], 6))
    assert (await me(app, event["event_id"], buyers[0]))["status"] == "waiting"
    await handlers.apply_booking(deps, booked(event["event_id"], 4))
    assert {(await me(app, event["event_id"], b))["reason"] for b in buyers} == {"sold_out"}
    late = await app.client.post(f"/api/queue/{event['event_id']}/join", headers=token_for(app))
    assert late.status_code == 410 and late.json()["type"].endswith("/queue-closed")


async def test_a_poll_of_orders_counts_only_sales_with_a_line_and_a_redelivered_poll_counts_nothing(
    app: Running,
) -> None:
    event = await open_room(app, capacity=10)
    deps = app.service("waitingroom").deps
    no_line = str(uuid.uuid4())
    poll = [booked(event["event_id"], 3), booked(no_line, 5), booked(event["event_id"], 2)]
    await handlers.apply_bookings(deps, poll)
    await handlers.apply_bookings(deps, poll)  # the same poll again: each order's inbox claim holds
    async with deps.db.read() as conn:
        room = await store.room(conn, event["event_id"])
        assert room is not None and room.sold == 5
        assert await store.room(conn, no_line) is None  # an order of a sale without a line writes nothing


async def test_the_organiser_sees_the_line_and_buyers_may_not(app: Running) -> None:
    event = await open_room(app, admit_per_minute=60)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    for _ in range(3):
        await join(app, event["event_id"], token_for(app))
    await tick(app)
    buyer_view = await app.client.get(f"/api/queue/{event['event_id']}", headers=token_for(app))
    assert buyer_view.status_code == 403
    admin = token_for(app, roles=("admin",))
    line = (await app.client.get(f"/api/queue/{event['event_id']}", headers=admin)).json()
    assert line["waiting"] == 2 and line["admitted"] == 1 and line["admitted_per_minute"] == 1
    assert line["eta_clear_seconds"] == 2 and line["status"] == "open"
    missing = await app.client.get(f"/api/queue/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404
    bad = await app.client.get("/api/queue/%00/me", headers=admin)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_the_replay_finds_a_tampered_record(app: Running) -> None:
    event = await open_room(app)
    buyers = [token_for(app) for _ in range(8)]
    for buyer in buyers:
        await join(app, event["event_id"], buyer)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    deps = app.service("waitingroom").deps
    assert (await fairness.replay_line(deps, event["event_id"])).fair
    positions = [(await me(app, event["event_id"], b))["position"] for b in buyers]
    last = buyers[positions.index(8)]
    async with deps.db.uow() as uow:  # someone moves the last of the draw to the front
        places = store.places.c
        await uow.conn.execute(update(store.places).where(places.position == 1).values(position=8))
        await uow.conn.execute(update(store.places).where(places.user_id == user_of(last)).values(position=1))
        await uow.commit()
    replay = await fairness.replay_line(deps, event["event_id"])
    assert not replay.fair and "differ from the draw" in replay.violations[0]


async def test_a_restart_keeps_the_line(tmp_path: Path, db_url: str) -> None:
    configs = {"waitingroom": WaitingRoomSettings(database_url=db_url)}
    settings = Settings(data_dir=tmp_path, demo=False)
    event = queued_event(on_sale_at=datetime.now(UTC) - timedelta(seconds=1), admit_per_minute=1)
    async with running(settings, ["identity", "waitingroom"], workers=False, configs=configs) as app:
        await handlers.apply_catalog_event(app.service("waitingroom").deps, published(event))
        await handlers.tick_rooms(app.service("waitingroom").deps)
        buyers = [token_for(app) for _ in range(3)]
        before = [(await join(app, event["event_id"], b))["position"] for b in buyers]
    async with running(settings, ["identity", "waitingroom"], workers=False, configs=configs) as again:
        after = [(await me(again, event["event_id"], b))["position"] for b in buyers]
    assert before == after == [1, 2, 3]


async def test_with_its_workers_the_room_opens_admits_and_learns_rooms_from_the_bus(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, demo=False)
    configs = {"waitingroom": WaitingRoomSettings(tick_seconds=0.1)}
    async with running(settings, ["identity", "waitingroom"], configs=configs) as app:
        event = queued_event(on_sale_at=datetime.now(UTC) + timedelta(seconds=1), admit_per_minute=600)
        await app.runtime.bus.publish([published(event)])
        buyer = token_for(app)

        async def joined() -> dict[str, Any] | None:
            response = await app.client.post(f"/api/queue/{event['event_id']}/join", headers=buyer)
            return response.json() if response.status_code == 200 else None

        assert (await wait_for(joined))["status"] == "waiting"

        async def my_turn() -> dict[str, Any] | None:
            place = await me(app, event["event_id"], buyer)
            return place if place["status"] == "admitted" else None

        place = await wait_for(my_turn)
        assert place["position"] == 1 and place["admission"]["token"]
        expires = datetime.fromisoformat(place["admission"]["expires_at"].replace("Z", "+00:00"))
        assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)


def test_draw_and_token_bucket_rules() -> None:
    people = [f"u{i}" for i in range(100)]
    assert domain.draw_positions(people, "seed-a") == domain.draw_positions(people, "seed-a")
    assert domain.draw_positions(people, "seed-a") != domain.draw_positions(people, "seed-b")
    assert sorted(domain.draw_positions(people, "seed-a")) == sorted(people)
    carry, total = 0.0, 0
    for _ in range(60):  # 90 a minute, ticked every second, admits 90 in a minute and never two at once
        count, carry = domain.admit_count(90, 1.0, carry)
        assert count <= 2
        total += count
    assert total == 90
    assert domain.admit_count(60, 3600, 0.0)[0] == 5  # a stalled loop does not release an hour at once


async def test_the_audit_command_replays_the_record_from_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, demo=False)
    event = queued_event(on_sale_at=datetime.now(UTC) + timedelta(minutes=1), admit_per_minute=600)
    async with running(settings, ["identity", "waitingroom"], workers=False) as app:
        deps = app.service("waitingroom").deps
        await handlers.apply_catalog_event(deps, published(event))
        for _ in range(12):
            await join(app, event["event_id"], token_for(app))
        app.service("waitingroom").clock = FakeClock(datetime.now(UTC) + timedelta(minutes=1))
        await handlers.tick_rooms(deps)
        app.service("waitingroom").clock.advance(seconds=1)
        await handlers.tick_rooms(deps)

    def audit() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "BOXOFFICE_DATA_DIR": str(tmp_path), "BOXOFFICE_LOG_LEVEL": "WARNING"}
        return subprocess.run(
            [sys.executable, "-m", "boxoffice.cli", "queue-audit", event["event_id"]],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )

    fair = await asyncio.to_thread(audit)
    assert fair.returncode == 0, fair.stdout + fair.stderr
    # 10 a second: the first tick admits 10, the second the last 2.
    assert "pre-queue of 12" in fair.stdout and fair.stdout.count(" admitted ") == 12
    assert fair.stdout.count("at tick 1,") == 10 and fair.stdout.count("at tick 2,") == 2
    assert "fair: every rule held" in fair.stdout
    async with running(settings, ["waitingroom"], workers=False) as app:
        uow = app.service("waitingroom").deps.db.uow()
        async with uow:  # an admission out of turn
            await uow.conn.execute(update(store.admissions).where(store.admissions.c.seq == 2).values(position=99))
            await uow.commit()
    tampered = await asyncio.to_thread(audit)
    assert tampered.returncode == 1 and "went in after position 99" in tampered.stdout


async def test_a_queued_sale_sells_only_to_buyers_the_room_admitted(tmp_path: Path, db_factory: Any) -> None:
    """Catalog publishes the queued sale, the room opens its line, booking refuses holds without admission."""
    configs = {
        "booking": BookingSettings(database_url=db_factory("booking")),
        "waitingroom": WaitingRoomSettings(database_url=db_factory("waitingroom"), tick_seconds=0.1),
    }
    names = ["identity", "catalog", "booking", "waitingroom"]
    async with running(Settings(data_dir=tmp_path, demo=False), names, configs=configs) as app:
        admin = token_for(app, roles=("admin",))
        on_sale = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        body = {
            "name": "Reunion Tour", "category": "concert", "venue": "Arena", "city": "Glasgow", "currency": "GBP",
            "starts_at": (on_sale + timedelta(days=30)).isoformat(),
            "sections": [{"name": "Floor", "price": 9000, "capacity": 50}],
            "queue": {"on_sale_at": on_sale.isoformat(), "admit_per_minute": 600},
        }
        created = await app.client.post("/api/events", json=body, headers=admin)
        assert created.status_code == 201, created.text
        event_id, section_id = created.json()["id"], created.json()["sections"][0]["id"]
        hold = {"event_id": event_id, "section_id": section_id, "quantity": 2}
        ann, bob = token_for(app), token_for(app)

        async def line_exists() -> bool:
            return (await app.client.post(f"/api/queue/{event_id}/join", headers=ann)).status_code == 200

        await wait_for(line_exists)

        async def refused_without_admission() -> bool:  # once booking has the event from the bus
            response = await app.client.post("/api/holds", json=hold, headers=ann)
            return response.status_code == 403 and response.json()["type"].endswith("/not-admitted")

        await wait_for(refused_without_admission)

        async def admitted_place() -> dict[str, Any] | None:
            place = await me(app, event_id, ann)
            return place if place["admission"] else None

        token = (await wait_for(admitted_place))["admission"]["token"]
        with_admission = await app.client.post("/api/holds", json=hold, headers={**ann, "X-Admission": token})
        assert with_admission.status_code == 201, with_admission.text
        borrowed = await app.client.post("/api/holds", json=hold, headers={**bob, "X-Admission": token})
        assert borrowed.status_code == 403  # an admission is for one account
        forged = await app.client.post("/api/holds", json=hold, headers={**ann, "X-Admission": token[:-3] + "abc"})
        assert forged.status_code == 403


@pytest.mark.parametrize("bus", ["sql", "kafka"])
async def test_a_sale_sold_out_over_the_bus_closes_its_line(
    tmp_path: Path, bus: str, request: pytest.FixtureRequest
) -> None:
    """Booking's confirmations reach the room through the bus (either bus), and the last ticket closes the
    line: buyers whose polls are answered from memory are told at once."""
    configs = {"waitingroom": WaitingRoomSettings(tick_seconds=0.1)}
    names = ["identity", "catalog", "booking", "payments", "waitingroom"]
    settings = Settings(data_dir=tmp_path, demo=False)
    if bus == "kafka":
        settings = Settings(
            data_dir=tmp_path, demo=False, bus="kafka", bus_partitions=2,
            kafka_bootstrap_servers=request.getfixturevalue("kafka_bootstrap"), kafka_session_timeout_ms=2_000,
            kafka_heartbeat_interval_ms=300, kafka_rebalance_timeout_ms=1_000,
        )
    async with running(settings, names, configs=configs) as app:
        admin = token_for(app, roles=("admin",))
        on_sale = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
        body = {
            "name": "Tiny Club Night", "category": "concert", "venue": "Cellar", "city": "Leeds", "currency": "GBP",
            "starts_at": (on_sale + timedelta(days=9)).isoformat(),
            "sections": [{"name": "Floor", "price": 1500, "capacity": 2}],
            "queue": {"on_sale_at": on_sale.isoformat(), "admit_per_minute": 60},
        }
        created = (await app.client.post("/api/events", json=body, headers=admin)).json()
        event_id, section_id = created["id"], created["sections"][0]["id"]
        buyers = [token_for(app) for _ in range(4)]

        async def joined() -> bool:
            return (await app.client.post(f"/api/queue/{event_id}/join", headers=buyers[0])).status_code == 200

        await wait_for(joined)
        for buyer in buyers[1:]:
            await join(app, event_id, buyer)

        async def admitted_place() -> dict[str, Any] | None:
            place = await me(app, event_id, buyers[0])
            return place if place["admission"] else None

        admission = (await wait_for(admitted_place))["admission"]["token"]
        headers = {**buyers[0], "X-Admission": admission}
        hold = await app.client.post(
            "/api/holds", json={"event_id": event_id, "section_id": section_id, "quantity": 2}, headers=headers
        )
        assert hold.status_code == 201, hold.text
        order = (await app.client.post("/api/orders", json={"hold_id": hold.json()["id"]}, headers=headers)).json()
        paid = await app.client.post(f"/api/orders/{order['id']}/payment", json=CARD_OK, headers=headers)
        assert paid.status_code == 200, paid.text

        async def closed() -> bool:  # whether or not their turn came meanwhile, the others are told
            reasons = [(await me(app, event_id, b))["reason"] for b in buyers[1:]]
            return reasons == ["sold_out"] * 3

        await wait_for(closed)
        late = await app.client.post(f"/api/queue/{event_id}/join", headers=token_for(app))
        assert late.status_code == 410


def held(event_id: str, headers: dict[str, str], latency_ms: int) -> Envelope:
    data = {"hold_id": str(uuid.uuid4()), "user_id": user_of(headers), "event_id": event_id, "quantity": 1,
            "expires_at": datetime.now(UTC).isoformat(), "latency_ms": latency_ms}
    return new_event("booking.hold-placed", source="booking", key=event_id, data=data, topic="booking.holds")


@pytest.fixture
async def adaptive(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    """A room whose rate adapts: 60 a minute to start, adjusted every 2 s by 60, a window of 6."""
    config = WaitingRoomSettings(
        database_url=db_url, abandon_after_seconds=3600, initial_admit_per_minute=60, adjust_seconds=2,
        rate_step_per_minute=60, min_admit_per_minute=30, hold_latency_target_ms=500, hold_grace_seconds=4,
        admission_window=6,
    )
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "waitingroom"], workers=False,
                       configs={"waitingroom": config}) as app:
        app.service("waitingroom").clock = FakeClock()
        yield app


async def test_the_adaptive_rate_grows_while_booking_keeps_up_and_halves_when_holds_slow_down(
    adaptive: Running,
) -> None:
    app = adaptive
    event = await open_room(app, admit_per_minute=None)
    event_id, deps = event["event_id"], app.service("waitingroom").deps
    buyers = {user_of(b): b for b in (token_for(app) for _ in range(40))}
    for buyer in buyers.values():
        await join(app, event_id, buyer)
    clock(app).advance(minutes=5)
    await tick(app, 0)

    async def hold_for_admitted(latency_ms: int) -> None:
        async with deps.db.read() as conn:
            admitted_now = [p.user_id for p in await store.arrivals(conn, event_id)]
        for user_id in admitted_now:
            place = await me(app, event_id, buyers[user_id])
            if place["status"] == "admitted":
                await handlers.apply_hold(deps, held(event_id, buyers[user_id], latency_ms))

    async def rate() -> float:
        line = (await app.client.get(f"/api/queue/{event_id}", headers=token_for(app, roles=("admin",)))).json()
        return float(line["rate_per_minute"])

    rates = []
    for latency in (100, 100, 100, 2000, 100, 2000, 2000, 2000):  # booking's own hold latency, per period
        await tick(app, 1.0)
        await hold_for_admitted(latency)
        await tick(app, 1.0)  # the adjustment, every 2 s
        rates.append(await rate())
    # Grows by 60 while holds are fast (fewer or more of them alike), halves on slow holds, never below 30.
    assert rates == [120, 180, 240, 120, 180, 90, 45, 30], rates

    replay = await fairness.replay_line(deps, event_id)
    assert replay.fair, replay.violations
    reasons = [c.reason for c in replay.rate_changes]
    assert reasons[0] == "opened at the initial adaptive rate"
    assert [r.split(":")[0] for r in reasons[1:]] == ["grew", "grew", "grew", "halved", "grew", "halved", "halved",
                                                      "halved"]
    assert "holds slower than the target in booking" in reasons[4]


async def test_admitted_buyers_who_fail_to_hold_halve_the_rate_and_the_window_caps_them(adaptive: Running) -> None:
    app = adaptive
    event = await open_room(app, admit_per_minute=None)
    event_id, deps = event["event_id"], app.service("waitingroom").deps
    buyers = [token_for(app) for _ in range(20)]
    for buyer in buyers:
        await join(app, event_id, buyer)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    for _ in range(12):  # nobody ever holds (booking answers them 503, say)
        await tick(app, 1.0)
        async with deps.db.read() as conn:  # the concurrency window: admitted within the grace, no hold yet
            assert await store.unheld(conn, event_id, clock(app).now - timedelta(seconds=4)) <= 6
    async with deps.db.read() as conn:
        # Buyers still without a hold after the grace leave the window, so the line keeps moving.
        assert 6 < await store.unheld(conn, event_id) < 20
    replay = await fairness.replay_line(deps, event_id)
    assert replay.fair, replay.violations
    reasons = [c.reason for c in replay.rate_changes]
    assert any(r.startswith("halved:") and "placed no hold in time" in r for r in reasons), reasons
    assert all(c.to_rate >= 30 for c in replay.rate_changes)


async def test_a_train_runs_booking_day_can_be_queued_and_sells_only_to_admitted_buyers(
    tmp_path: Path, db_factory: Any
) -> None:
    """Catalog queues a run's booking day, the room opens a line for the run, booking refuses its holds
    without the room's admission and accepts them with it."""
    configs = {
        "catalog": CatalogSettings(database_url=db_factory("catalog")),
        "booking": BookingSettings(database_url=db_factory("booking")),
        "waitingroom": WaitingRoomSettings(database_url=db_factory("waitingroom"), tick_seconds=0.1),
    }
    names = ["identity", "catalog", "booking", "waitingroom"]
    async with running(Settings(data_dir=tmp_path, demo=False), names, configs=configs) as app:
        admin = token_for(app, roles=("admin",))
        for code, city in (("GLC", "Glasgow"), ("EDB", "Edinburgh")):
            station = {"code": code, "name": city, "city": city}
            assert (await app.client.post("/api/stations", json=station, headers=admin)).status_code == 201
        train = {
            "number": "1S42", "name": "Shuttle", "currency": "GBP", "departure_time": "08:00",
            "stops": [{"station": "GLC", "departure_minutes": 0, "distance_km": 0},
                      {"station": "EDB", "arrival_minutes": 50, "distance_km": 75}],
            "classes": [{"code": "STD", "name": "Standard", "base_fare": 1000, "per_km_fare": 10,
                         "coaches": [{"label": "A", "seats": 6}]}],
        }
        made = await app.client.post("/api/trains", json=train, headers=admin)
        assert made.status_code == 201, made.text
        day = (datetime.now(UTC) + timedelta(days=5)).date()
        runs = await app.client.post(f"/api/trains/{made.json()['id']}/runs", json={"date": str(day)}, headers=admin)
        run_id = runs.json()["items"][0]["run_id"]

        on_sale = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        path = f"/api/trains/runs/{run_id}/queue"
        too_late = {"on_sale_at": (on_sale + timedelta(days=30)).isoformat()}
        refused = await app.client.put(path, json=too_late, headers=admin)
        assert refused.status_code == 422 and refused.json()["type"].endswith("/invalid-date")
        opens = {"on_sale_at": on_sale.isoformat()}
        assert (await app.client.put(path, json=opens, headers=token_for(app))).status_code == 403
        missing = await app.client.put(f"/api/trains/runs/{uuid.uuid4()}/queue", json=opens, headers=admin)
        assert missing.status_code == 404
        queued = await app.client.put(path, json={"on_sale_at": on_sale.isoformat(), "admit_per_minute": 600},
                                      headers=admin)
        assert queued.status_code == 200, queued.text
        assert queued.json()["queued"] is True and queued.json()["on_sale_at"].startswith(on_sale.date().isoformat())
        assert (await app.client.get(f"/api/trains/runs/{run_id}")).json()["queued"] is True

        hold = {"run_id": run_id, "class_code": "STD", "origin": "GLC", "destination": "EDB", "quantity": 2}
        ann, bob = token_for(app), token_for(app)

        async def line_exists() -> bool:
            return (await app.client.post(f"/api/queue/{run_id}/join", headers=ann)).status_code == 200

        await wait_for(line_exists)

        async def refused_without_admission() -> bool:  # once booking has the queued run from the bus
            response = await app.client.post("/api/holds", json=hold, headers=ann)
            return response.status_code == 403 and response.json()["type"].endswith("/not-admitted")

        await wait_for(refused_without_admission)

        async def admitted_place() -> dict[str, Any] | None:
            place = await me(app, run_id, ann)
            return place if place["admission"] else None

        token = (await wait_for(admitted_place, timeout=30))["admission"]["token"]  # a loaded machine
        with_admission = await app.client.post("/api/holds", json=hold, headers={**ann, "X-Admission": token})
        assert with_admission.status_code == 201, with_admission.text
        borrowed = await app.client.post("/api/holds", json=hold, headers={**bob, "X-Admission": token})
        assert borrowed.status_code == 403  # an admission is for one account and one sale
        line = (await app.client.get(f"/api/queue/{run_id}", headers=admin)).json()
        assert line["capacity"] == 6 and line["name"].startswith("1S42 Shuttle")

        async def counted() -> bool:  # the hold reaches the room: the admission is used
            async with app.service("waitingroom").deps.db.read() as conn:
                return await store.unheld(conn, run_id) == 0

        await wait_for(counted, timeout=30)


async def test_joins_arriving_together_take_one_place_each_in_one_line(app: Running) -> None:
    """Joins at the same moment share a transaction (group commit): still one place per account, no number
    given twice, the pre-queue drawn as recorded, and later arrivals numbered after it."""
    event_id = (await open_room(app))["event_id"]
    early = [token_for(app) for _ in range(25)]
    places = await asyncio.gather(*(join(app, event_id, b) for b in early for _ in range(2)))  # each twice
    assert all(p["status"] == "waiting" and p["position"] is None for p in places)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    late = [token_for(app) for _ in range(25)]
    late_places = await asyncio.gather(*(join(app, event_id, b) for b in late for _ in range(2)))
    mine = {user_of(b): p["position"] for b, p in zip([b for b in late for _ in range(2)], late_places, strict=True)}
    assert len(mine) == 25 and sorted(mine.values()) == list(range(26, 51))
    drawn = [(await me(app, event_id, b))["position"] for b in early]
    assert sorted(drawn) == list(range(1, 26))
    async with app.service("waitingroom").deps.db.read() as conn:
        rows = await store.arrivals(conn, event_id)
    assert [r.arrival for r in rows] == list(range(1, 51))  # 100 joins, 50 places, every arrival number once
    replay = await fairness.replay_line(app.service("waitingroom").deps, event_id)
    assert replay.prequeue == 25 and replay.fair, replay.violations


async def test_a_process_that_did_not_admit_sees_the_admission_from_the_record(app: Running) -> None:
    """Each process answers polls from its own copy of the room, read again once older than its max age: a
    second process (its own memory, the same database) tells the buyer when the first one admitted them."""
    deps = app.service("waitingroom").deps
    other = dataclasses.replace(deps, memory=LineMemory(max_age=0.0))
    event = await open_room(app, admit_per_minute=60)
    clock(app).advance(minutes=5)
    await tick(app, 0)
    first, second = token_for(app), token_for(app)
    await join(app, event["event_id"], first)
    place = await handlers.join_line(other, event["event_id"], user_of(second))  # joined through the other
    assert place.standing.place.position == 2
    assert (await handlers.my_place(other, event["event_id"], user_of(first))).standing.place.status == "waiting"
    assert await tick(app) == 1  # the first process admits
    seen = await handlers.my_place(other, event["event_id"], user_of(first))
    assert seen.standing.place.status == "admitted" and seen.admission is not None
    assert (await handlers.my_place(other, event["event_id"], user_of(second))).standing.ahead == 0


async def test_asking_for_ones_place_keeps_it_and_a_holder_who_stopped_is_passed_over(
    tmp_path: Path, db_url: str
) -> None:
    """Last-seen marks are gathered in memory and written for many places at once; they still decide who
    is passed over as gone when their turn comes."""
    configs = {"waitingroom": WaitingRoomSettings(database_url=db_url, abandon_after_seconds=120)}
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "waitingroom"], workers=False,
                       configs=configs) as app:
        app.service("waitingroom").clock = FakeClock()
        event = await open_room(app, admit_per_minute=600)
        clock(app).advance(minutes=5)
        await tick(app, 0)
        gone, staying = token_for(app), token_for(app)
        await join(app, event["event_id"], gone)
        await join(app, event["event_id"], staying)
        clock(app).advance(seconds=100)
        await me(app, event["event_id"], staying)  # marked in memory
        clock(app).advance(seconds=6)
        await me(app, event["event_id"], staying)  # the marks are written
        clock(app).advance(seconds=94)  # gone: 200 s unseen; staying: 94 s
        await handlers.tick_rooms(app.service("waitingroom").deps)
        assert (await me(app, event["event_id"], staying))["status"] == "admitted"
        left = await me(app, event["event_id"], gone)
        assert left["status"] == "closed" and left["reason"] == "abandoned"
