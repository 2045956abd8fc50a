"""A Hypothesis state machine over booking's real handlers and a real SQLite database.

Random sequences of holds (general admission, reserved seats, train segments), releases, orders,
confirmations, cancellations, sweeps and jumps of the clock are applied both to booking and to a small
model of the rules; after every step booking's availability must equal the model's. No sweeper runs on
its own, so expired holds must count as free because of the rules, not because of a cleanup.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from boxoffice.booking import availability, domain, store
from boxoffice.booking.deps import BookingSettings
from boxoffice.booking.handlers import catalog_feed, expiry, holds, orders
from boxoffice.booking.schemas import hold_json, order_json
from boxoffice.cli import Runtime, migrate_all
from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.problems import Problem
from boxoffice.platform.settings import Settings
from tests.harness.app import FakeClock
from tests.harness.booking import general_event, reserved_event, train_run

TTL = 300
GA_CAPACITY = 6


@dataclass
class ModelHold:
    id: str
    kind: str
    quantity: int
    expires_at: Any
    seats: tuple[str, ...] = ()
    span: tuple[int, int] = (0, 0)
    status: str = "active"
    order_id: str | None = None


@dataclass
class Model:
    holds: dict[str, ModelHold] = field(default_factory=dict)

    def live(self, now: Any) -> list[ModelHold]:
        return [h for h in self.holds.values() if h.status == "active" and now < h.expires_at]

    def taking(self, now: Any) -> list[ModelHold]:
        return [h for h in self.holds.values() if h.status == "confirmed"] + self.live(now)


class Shared:
    """One booking service and database for all examples (each example sells its own new event and run)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="boxoffice-sm-"))
        config = Settings(data_dir=self.dir, demo=False)
        booking = BookingSettings(hold_ttl_seconds=TTL, max_active_holds=10_000, max_tickets_per_event=10_000)
        migrate_all(config, ["booking"])
        self.runtime = Runtime(config, ["booking"], run_workers=False, configs={"booking": booking})
        self.loop.run_until_complete(self.runtime.bus.start())

    def close(self) -> None:
        self.loop.run_until_complete(self.runtime.services[0].stop())
        self.loop.run_until_complete(self.runtime.bus.stop())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_shared: Shared | None = None


@pytest.fixture(scope="module", autouse=True)
def shared() -> Iterator[None]:
    global _shared
    _shared = Shared()
    yield
    _shared.close()
    _shared = None


class InventoryMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        assert _shared is not None
        self.loop = _shared.loop
        self.runtime = _shared.runtime
        self.svc = self.runtime.services[0]
        self.clock = FakeClock()
        self.svc.clock = self.clock
        self.deps = self.svc.deps
        self.ga = general_event(capacity=GA_CAPACITY)
        self.reserved = reserved_event(rows=1, per_row=5)
        self.run = train_run(seats_per_class=3)
        self.seat_ids = [s["seat_id"] for s in self.reserved["sections"][0]["seats"]]
        self.train_seats = [s["seat_id"] for s in self.run["classes"][0]["coaches"][0]["seats"]]
        self.stations = [s["station"] for s in self.run["stops"]]
        self.model = Model()
        self.owners: dict[str, Principal] = {}
        for data, kind, topic in [
            (self.ga, "catalog.event-published", "catalog.events"),
            (self.reserved, "catalog.event-published", "catalog.events"),
            (self.run, "catalog.run-published", "catalog.runs"),
        ]:
            key = data.get("event_id") or data["run_id"]
            self.do(
                catalog_feed.apply_catalog_event(
                    self.deps, new_event(kind, source="catalog", key=key, data=data, topic=topic)
                )
            )

    def do(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def try_hold(self, request: holds.PlaceHold) -> str | None:
        user = Principal(id=str(uuid.uuid4()), email="b@example.com", name="B", roles=("customer",))
        try:
            answer = self.do(
                holds.place_hold(self.deps, request, user=user, idempotency_key=None, body=None, render=hold_json)
            )
        except (domain.SoldOut, domain.SeatUnavailable):
            return None
        self.owners[answer.body["id"]] = user
        return str(answer.body["id"])

    @rule(target=holds, quantity=st.integers(1, 4))
    def hold_general(self, quantity: int) -> Any:
        now = self.clock()
        taken = sum(h.quantity for h in self.model.taking(now) if h.kind == "general")
        section = self.ga["sections"][0]["section_id"]
        hold_id = self.try_hold(holds.PlaceHold(event_id=self.ga["event_id"], section_id=section, quantity=quantity))
        assert (hold_id is not None) == (taken + quantity <= GA_CAPACITY)
        if hold_id is None:
            return multiple()  # nothing to add to the bundle
        self.model.holds[hold_id] = ModelHold(hold_id, "general", quantity, now + timedelta(seconds=TTL))
        return hold_id

    @rule(target=holds, seats=st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True))
    def hold_seats(self, seats: list[int]) -> Any:
        now = self.clock()
        wanted = tuple(self.seat_ids[i] for i in seats)
        busy = {s for h in self.model.taking(now) if h.kind == "seats" for s in h.seats}
        hold_id = self.try_hold(holds.PlaceHold(event_id=self.reserved["event_id"], seat_ids=wanted))
        assert (hold_id is not None) == (not busy & set(wanted))
        if hold_id is None:
            return multiple()
        self.model.holds[hold_id] = ModelHold(hold_id, "seats", len(wanted), now + timedelta(seconds=TTL), seats=wanted)
        return hold_id

    @rule(target=holds, seat=st.integers(0, 2), a=st.integers(0, 3), b=st.integers(0, 3))
    def hold_train(self, seat: int, a: int, b: int) -> Any:
        now = self.clock()
        request = holds.PlaceHold(
            run_id=self.run["run_id"],
            class_code="3A",
            origin=self.stations[a],
            destination=self.stations[b],
            seat_ids=(self.train_seats[seat],),
        )
        if a >= b:
            try:
                self.try_hold(request)
            except domain.InvalidSegment:
                return multiple()
            raise AssertionError("a backwards journey was accepted")
        clash = any(
            h.kind == "train" and self.train_seats[seat] in h.seats and domain.overlaps(a, b, *h.span)
            for h in self.model.taking(now)
        )
        hold_id = self.try_hold(request)
        assert (hold_id is not None) == (not clash)
        if hold_id is None:
            return multiple()
        self.model.holds[hold_id] = ModelHold(
            hold_id, "train", 1, now + timedelta(seconds=TTL), seats=(self.train_seats[seat],), span=(a, b)
        )
        return hold_id

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        hold = self.model.holds[hold_id]
        live = hold.status == "active" and self.clock() < hold.expires_at
        try:
            admin = Principal("admin", "a@example.com", "A", ("admin",))
            self.do(holds.release_hold(self.deps, hold_id, user=admin))
            released = True
        except Problem:
            released = False
        assert released == live
        if released:
            hold.status = "released"

    @rule(hold_id=holds)
    def order_and_confirm(self, hold_id: str) -> None:
        hold = self.model.holds[hold_id]
        now = self.clock()
        live = hold.status == "active" and now < hold.expires_at
        try:
            order = self.do(
                orders.place_order(
                    self.deps, hold_id, user=self.owners[hold_id], idempotency_key=None, body=None, render=order_json
                )
            ).body
        except Problem:
            assert not live or hold.order_id is not None
            return
        assert live
        hold.order_id = order["id"]
        held = self.do(self.svc.db.transact(lambda uow: _version(uow, hold_id)))
        self.do(orders.confirm_order(self.deps, orders.ConfirmOrder(order["id"], hold_id, held, "pay-" + hold_id)))
        hold.status = "confirmed"

    @rule(hold_id=holds)
    def cancel(self, hold_id: str) -> None:
        hold = self.model.holds[hold_id]
        if hold.order_id is None:
            return
        try:
            admin = Principal("x", "x@example.com", "X", ("admin",))
            self.do(orders.cancel_order(self.deps, hold.order_id, user=admin))
            cancelled = True
        except Problem:
            cancelled = False
        assert cancelled == (hold.status == "confirmed")
        if cancelled:
            hold.status = "cancelled"

    @rule(seconds=st.integers(1, 400))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @rule()
    def sweep(self) -> None:
        self.do(expiry.sweep_expired_holds(self.deps))
        now = self.clock()
        for hold in self.model.holds.values():
            if hold.status == "active" and now >= hold.expires_at:
                hold.status = "expired"

    @invariant()
    def availability_matches_the_model(self) -> None:
        now = self.clock()
        taking = self.model.taking(now)

        async def read() -> tuple[dict[str, domain.EventAvailability], dict[str, domain.RunAvailability]]:
            async with self.svc.db.read() as conn:
                events = await availability.for_events(conn, [self.ga["event_id"], self.reserved["event_id"]], now)
                runs = await availability.for_runs(conn, [self.run["run_id"]], None, None, now)
            return events, runs

        events, _ = self.do(read())
        ga_taken = sum(h.quantity for h in taking if h.kind == "general")
        assert events[self.ga["event_id"]].available == GA_CAPACITY - ga_taken
        expected_seats = {
            s: ("sold" if h.status == "confirmed" else "held") for h in taking if h.kind == "seats" for s in h.seats
        }
        assert events[self.reserved["event_id"]].seats == expected_seats
        for a, b in ((0, 1), (1, 3), (0, 3)):
            self.check_segment(a, b, taking, now)

    def check_segment(self, a: int, b: int, taking: list[ModelHold], now: Any) -> None:
        async def read() -> dict[str, domain.RunAvailability]:
            async with self.svc.db.read() as conn:
                return await availability.for_runs(conn, [self.run["run_id"]], self.stations[a], self.stations[b], now)

        runs = self.do(read())
        busy = {s for h in taking if h.kind == "train" and domain.overlaps(a, b, *h.span) for s in h.seats}
        assert set(runs[self.run["run_id"]].seats) == busy
        assert runs[self.run["run_id"]].classes["3A"] == 3 - len(busy)


async def _version(uow: Any, hold_id: str) -> int:
    hold = await store.hold_of(uow.conn, hold_id)
    assert hold is not None
    return hold.version


InventoryMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestInventory = InventoryMachine.TestCase
# 40 runs of 30 steps against real databases: about a minute on a quiet machine, more than two on a busy one.
TestInventory.pytestmark = [pytest.mark.timeout(600)]  # type: ignore[attr-defined]
