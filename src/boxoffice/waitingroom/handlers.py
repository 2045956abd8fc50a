"""The waiting room's use cases: join the line, see one's place, admit people, learn from other services.

Admission runs in one loop (``tick_rooms``), one short transaction per room and tick, locking the room row
(PostgreSQL) so that two workers never admit the same people; positions and arrivals come from conditional
increments of the room's counters, so two joins never share a number.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.admission import sign_admission
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.metrics import counter
from boxoffice.waitingroom import domain, store
from boxoffice.waitingroom.deps import WaitingRoomDeps
from boxoffice.waitingroom.domain import PlaceStatus, RoomStatus
from boxoffice.waitingroom.memory import plainly_waiting

JOINED = counter("boxoffice_waitingroom_joined_total", "People who joined a line")
ADMITTED = counter("boxoffice_waitingroom_admitted_total", "People admitted from a line")
ABANDONED = counter("boxoffice_waitingroom_abandoned_total", "Places passed over because their holder left")
RATE_CHANGES = counter("boxoffice_waitingroom_rate_changes_total", "Adaptive rate changes", ("change",))
CATALOG_GROUP = "waitingroom.catalog"
BOOKINGS_GROUP = "waitingroom.bookings"
HOLDS_GROUP = "waitingroom.holds"
_NO_SIGNALS = domain.Signals(holds=0, slow_holds=0, due=0, stalled=0, waiting=0, unheld=0)
SEEN_EVERY = timedelta(seconds=60)  # how stale a waiting place's last_seen_at may get (abandonment is 10 min)


@dataclass(frozen=True, slots=True)
class Admission:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class MyPlace:
    room: domain.Room
    standing: domain.Standing
    admission: Admission | None
    poll_after_seconds: int | None  # when to ask again (Retry-After); None once admitted or closed


@dataclass(frozen=True, slots=True)
class LineReport:
    room: domain.Room
    counts: store.LineCounts
    eta_clear_seconds: int | None


def _my_place(deps: WaitingRoomDeps, place: domain.Place, room: domain.Room) -> MyPlace:
    now = deps.now()
    admission = None
    if domain.admission_valid(place, now) and place.expires_at is not None:
        token = sign_admission(deps.secret, event_id=place.event_id, user_id=place.user_id, expires_at=place.expires_at)
        admission = Admission(token, place.expires_at)
    standing = domain.standing(place, room, now)
    return MyPlace(room, standing, admission, domain.poll_after(standing, room, now))


async def _room(deps: WaitingRoomDeps, event_id: str) -> domain.Room | None:
    """The room as this process last read it (at most ``status_max_age_seconds`` ago)."""

    async def read() -> domain.Room | None:
        async with deps.db.read() as conn:
            return await store.room(conn, event_id)

    return await deps.memory.room(event_id, read)


async def join_line(deps: WaitingRoomDeps, event_id: str, user_id: str) -> MyPlace:
    """Take a place in the line, or get back the one this account already has.

    Every buyer of a big sale joins within seconds, so joins that arrive together are written together
    (``memory.Batcher``): one transaction per batch takes the numbers for all of them, decided by the room's
    status in the same UPDATE (so a join racing the opening is either drawn or gets a position, never
    neither), and inserts their places in the order they came. A retried join this process has seen writes
    nothing.
    """
    room = await _room(deps, event_id)
    if room is None:
        raise domain.NoWaitingRoom("This sale has no waiting room.")
    if deps.memory.place(event_id, user_id) is not None:
        return await my_place(deps, event_id, user_id)  # a retried join
    if room.status == RoomStatus.CLOSED:
        async with deps.db.read() as conn:
            fresh, existing = await store.room_and_place(conn, event_id, user_id)
        if fresh is None or existing is None:
            raise domain.QueueClosed("This sale is sold out; the line is closed.")
        return _my_place(deps, existing, fresh)

    async def write(batch: Sequence[str]) -> list[domain.Place | BaseException]:
        return await _write_joins(deps, event_id, batch)

    place = await deps.memory.joins.submit(event_id, user_id, write)
    if place.position is not None and room.status != RoomStatus.OPEN:  # the room opened meanwhile
        deps.memory.forget_room(event_id)
        room = await _room(deps, event_id) or room
    return _my_place(deps, place, room)


async def _write_joins(
    deps: WaitingRoomDeps, event_id: str, batch: Sequence[str]
) -> list[domain.Place | BaseException]:
    """One transaction for a batch of joins (user ids in arrival order): those who already have a place get
    it back, the others get the next numbers in that order. Another process may insert the same account
    between the read and the insert (PostgreSQL): then the batch is tried again and finds that place."""
    for attempt in range(3):
        try:
            return await _write_joins_once(deps, event_id, batch)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _write_joins_once(
    deps: WaitingRoomDeps, event_id: str, batch: Sequence[str]
) -> list[domain.Place | BaseException]:
    users = list(dict.fromkeys(batch))
    async with deps.db.uow() as uow:
        found = await store.places_of(uow.conn, event_id, users)
        new = [u for u in users if u not in found]
        if new:
            numbers = await store.take_numbers(uow.conn, event_id, len(new))
            if numbers.status == RoomStatus.CLOSED:  # rolled back: nobody takes a number
                closed = domain.QueueClosed("This sale is sold out; the line is closed.")
                return [found.get(u) or closed for u in batch]
            # Read after the numbers: a room that opened before them opened before this time. A pre-queue
            # join is recorded before the opening time, as the replay of the draw expects.
            now = deps.now()
            if numbers.first_position is None:
                now = min(now, numbers.on_sale_at - timedelta(microseconds=1))
            elif numbers.opened_at is not None:
                now = max(now, numbers.opened_at)
            made = [
                domain.Place(
                    event_id=event_id, user_id=u, arrival=numbers.first_arrival + i, joined_at=now,
                    position=None if numbers.first_position is None else numbers.first_position + i,
                    status=PlaceStatus.WAITING, reason=None, admitted_at=None, expires_at=None, last_seen_at=now,
                    converted=False,
                )
                for i, u in enumerate(new)
            ]
            await store.insert_places(uow.conn, made)
            await uow.commit()
            JOINED.inc(len(made))
            found.update((p.user_id, p) for p in made)
    for place in found.values():
        deps.memory.remember_place(place)
    return [found[u] for u in batch]


async def my_place(deps: WaitingRoomDeps, event_id: str, user_id: str) -> MyPlace:
    """Where this account stands; asking keeps the place from being abandoned.

    This is what every waiting buyer polls. A place still plainly waiting is answered from this process's
    memory against the room read at most ``status_max_age_seconds`` ago (no query of its own); anything else
    (admitted, closed, drawn at the opening, or unknown here) is one read. Asking is recorded in memory and
    written for many places at once (``memory.SEEN_FLUSH``).
    """
    now = deps.now()
    room = await _room(deps, event_id)
    if room is None:
        raise domain.NoWaitingRoom("This sale has no waiting room.")
    place = deps.memory.place(event_id, user_id)
    if place is None or not plainly_waiting(place, room):
        async with deps.db.read() as conn:
            fresh, place = await store.room_and_place(conn, event_id, user_id)
        if fresh is None:
            raise domain.NoWaitingRoom("This sale has no waiting room.")
        room = fresh
        deps.memory.remember_room(room)
        if place is None:
            raise domain.NoWaitingRoom("You are not in this line; join it first.")
        deps.memory.remember_place(place)
    if place.status == PlaceStatus.WAITING and now - place.last_seen_at > SEEN_EVERY:
        place = deps.memory.mark_seen(place, now)
    if deps.memory.seen_due(now):
        await deps.memory.flush_seen(now, lambda e, users, at: _write_seen(deps, e, users, at))
    return _my_place(deps, place, room)


async def _write_seen(deps: WaitingRoomDeps, event_id: str, user_ids: list[str], at: datetime) -> None:
    async with deps.db.uow() as uow:
        await store.mark_seen(uow.conn, event_id, user_ids, at)
        await uow.commit()


async def report_line(deps: WaitingRoomDeps, event_id: str) -> LineReport:
    now = deps.now()
    async with deps.db.read() as conn:
        room = await store.room(conn, event_id)
        if room is None:
            raise domain.NoWaitingRoom("This sale has no waiting room.")
        counts = await store.line_counts(conn, event_id, now, now - timedelta(minutes=1))
    return LineReport(room, counts, domain.eta_seconds(counts.waiting, room.rate_per_minute))


async def tick_rooms(deps: WaitingRoomDeps) -> int:
    """One admission round over every scheduled or open room; returns how many were admitted."""
    async with deps.db.read() as conn:
        event_ids = await store.rooms_to_tick(conn)
    admitted = 0
    for event_id in event_ids:
        admitted += await tick_room(deps, event_id)
    return admitted


async def tick_room(deps: WaitingRoomDeps, event_id: str) -> int:
    now = deps.now()
    async with deps.db.uow() as uow:
        room = await store.room(uow.conn, event_id, lock=True)
        if room is None or room.status == RoomStatus.CLOSED:
            return 0
        if room.status == RoomStatus.SCHEDULED:
            if now < room.on_sale_at:
                return 0
            room = await _open(uow.conn, room, now)
        await store.expire_admissions(uow.conn, event_id, now)
        grace = timedelta(seconds=deps.config.hold_grace_seconds)
        unheld = await store.unheld(uow.conn, event_id, now - grace)
        rate = await _rate(deps, uow.conn, room, unheld, now)
        elapsed = (now - room.last_tick_at).total_seconds() if room.last_tick_at else deps.config.tick_seconds
        count, carry = domain.admit_count(rate, elapsed, room.carry)
        window = _window(deps, room)
        allowed = count if window is None else domain.window_room(count, unheld, window)
        if allowed < count:
            carry = 0.0  # the window is full: no credit piles up for a burst once it frees
        admitted = await _admit(deps, uow.conn, room, allowed, rate, now) if allowed else 0
        await store.update_room(uow.conn, event_id, rate_per_minute=rate, carry=carry, last_tick_at=now)
        await uow.commit()
    deps.memory.forget_room(event_id)  # this process's polls see the tick at once
    return admitted


async def _open(conn: AsyncConnection, room: domain.Room, now: datetime) -> domain.Room:
    """The opening: the pre-queue is drawn into positions with a fresh seed, which is recorded."""
    seed = secrets.token_hex(16)
    drawn = domain.draw_positions(await store.prequeue(conn, room.event_id), seed)
    await store.set_positions(conn, room.event_id, drawn)
    await store.update_room(
        conn, room.event_id, status=RoomStatus.OPEN, seed=seed, opened_at=now, next_position=len(drawn) + 1,
        adjusted_at=now, signal_holds=0, signal_slow=0,
    )
    how = "the organiser's rate" if room.admit_per_minute is not None else "the initial adaptive rate"
    await store.record_rate_change(
        conn, event_id=room.event_id, at=now, from_rate=room.rate_per_minute, to_rate=room.rate_per_minute,
        reason=f"opened at {how}", signals=_NO_SIGNALS,
    )
    opened = await store.room(conn, room.event_id)
    assert opened is not None
    return opened


def _window(deps: WaitingRoomDeps, room: domain.Room) -> int | None:
    """The adaptive rate's concurrency window: admitted buyers without a hold yet, never more than tickets
    left to sell. An organiser's own rate is kept as set (None: no window)."""
    if room.admit_per_minute is not None:
        return None
    if room.capacity <= 0:
        return deps.config.admission_window
    return max(1, min(deps.config.admission_window, room.capacity - room.sold))


async def _rate(deps: WaitingRoomDeps, conn: AsyncConnection, room: domain.Room, unheld: int, now: datetime) -> float:
    """The rate in force: the organiser's, or the adaptive one, adjusted once per ``adjust_seconds``."""
    if room.admit_per_minute is not None:
        if room.admit_per_minute != room.rate_per_minute:  # the organiser changed it
            await store.record_rate_change(
                conn, event_id=room.event_id, at=now, from_rate=room.rate_per_minute,
                to_rate=float(room.admit_per_minute), reason="set by the organiser", signals=_NO_SIGNALS,
            )
        return float(room.admit_per_minute)
    c = deps.config
    since = room.adjusted_at or room.opened_at or now
    if (now - since).total_seconds() < c.adjust_seconds:
        return room.rate_per_minute
    grace = timedelta(seconds=c.hold_grace_seconds)
    due, stalled = await store.admitted_between(conn, room.event_id, since - grace, now - grace)
    signals = domain.Signals(
        holds=room.signal_holds, slow_holds=room.signal_slow, due=due, stalled=stalled,
        waiting=await store.waiting(conn, room.event_id), unheld=unheld,
    )
    rule = domain.RateRule(
        floor=c.min_admit_per_minute, ceiling=c.max_admit_per_minute, step=c.rate_step_per_minute,
        window=_window(deps, room) or c.admission_window,
    )
    change = domain.next_rate(room.rate_per_minute, signals, rule)
    if change.rate != room.rate_per_minute:
        await store.record_rate_change(
            conn, event_id=room.event_id, at=now, from_rate=room.rate_per_minute, to_rate=change.rate,
            reason=change.reason, signals=signals,
        )
        RATE_CHANGES.labels(change.reason.split(":", 1)[0]).inc()
    # The signals counted so far belong to this period; the counters start again (holds that arrive while
    # the room is locked wait for the commit and count in the next period).
    await store.update_room(
        conn, room.event_id, adjusted_at=now,
        signal_holds=store.rooms.c.signal_holds - room.signal_holds,
        signal_slow=store.rooms.c.signal_slow - room.signal_slow,
    )
    return change.rate


async def _admit(
    deps: WaitingRoomDeps, conn: AsyncConnection, room: domain.Room, count: int, rate: float, now: datetime
) -> int:
    tick = await store.last_tick_number(conn, room.event_id) + 1
    abandon_after = timedelta(seconds=deps.config.abandon_after_seconds)
    expires_at = now + timedelta(seconds=deps.config.admission_ttl_seconds)
    admitted, through = 0, room.admitted_through
    # A few statements per batch, not per person: the tick holds the service's one SQLite writer, which
    # every join also needs.
    while admitted < count:
        batch = await store.next_waiting(conn, room.event_id, count - admitted)
        if not batch:
            break
        gone = [p for p in batch if domain.unseen(p, now, abandon_after)]
        going = [p for p in batch if not domain.unseen(p, now, abandon_after)]
        through = max(through, *(p.position or 0 for p in batch))
        await store.close_places(conn, room.event_id, [p.user_id for p in gone], domain.CloseReason.ABANDONED)
        await store.admit_places(conn, room.event_id, [p.user_id for p in going], at=now, expires_at=expires_at)
        outcomes = [(p, "abandoned" if p in gone else "admitted") for p in batch]  # in position order
        await store.record_admissions(conn, outcomes, at=now, rate=rate, tick=tick)
        ABANDONED.inc(len(gone))
        admitted += len(going)
    await store.update_room(conn, room.event_id, admitted_through=through)
    ADMITTED.inc(admitted)
    return admitted


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def apply_catalog_event(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    """A published event, or a train run whose booking day is queued, with ``queue`` settings gets (or
    updates) its room; a run's room is keyed by the run id, which booking's holds and orders carry."""
    if envelope.type not in ("catalog.event-published", "catalog.run-published"):
        return
    queue = envelope.data.get("queue")
    if not isinstance(queue, dict) or not queue.get("on_sale_at"):
        return
    data = envelope.data
    if envelope.type == "catalog.run-published":
        sale_id = str(data["run_id"])
        name = f"{data.get('train_number', '')} {data.get('name', '')}, {data.get('date')}"
        seats = sum(len(c.get("seats") or ()) for k in data.get("classes") or () for c in k.get("coaches") or ())
        capacity = int(data.get("capacity") or seats)
    else:
        sale_id, name = str(data["event_id"]), str(data.get("name", ""))
        capacity = sum(int(s.get("capacity") or len(s.get("seats") or ())) for s in data.get("sections") or ())
    admit = queue.get("admit_per_minute")
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, CATALOG_GROUP, envelope.id):
            return
        await store.upsert_room(
            uow.conn,
            event_id=sale_id,
            name=name.strip()[:200],
            on_sale_at=_time(str(queue["on_sale_at"])),
            admit_per_minute=int(admit) if admit else None,
            rate_per_minute=float(admit) if admit else deps.config.initial_admit_per_minute,
            capacity=capacity,
        )
        await uow.commit()
    deps.memory.forget_room(sale_id)


async def _among_rooms(deps: WaitingRoomDeps, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """The events of sales with a line, in their order: one read for a whole poll. Most sales have none, and
    every hold and order of every sale comes to these groups (a flash sale without a line: two reads per
    purchase before, one per poll now)."""
    async with deps.db.read() as conn:
        queued = await store.with_rooms(conn, (str(e.data.get("event_id")) for e in envelopes))
    return [e for e in envelopes if str(e.data.get("event_id")) in queued]


async def apply_booking(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    """Confirmed and cancelled orders move the sold count; a sale that sells out closes its line. Most sales
    have none: no write at all for them. (Rooms are made from catalog events, which come first.)"""
    await apply_bookings(deps, [envelope])


async def apply_bookings(deps: WaitingRoomDeps, envelopes: Sequence[Envelope]) -> None:
    """A poll's orders (``Batched``): those of sales with a line, each in its own transaction with its inbox
    claim, so that when one fails the one-by-one retry of the poll finds the others done."""
    for envelope in await _among_rooms(deps, envelopes):
        await _apply_booking(deps, envelope)


async def _apply_booking(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    data = envelope.data
    tickets = int(data.get("ticket_count") or 0)
    if data.get("status") == "cancelled":
        tickets = -tickets
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, BOOKINGS_GROUP, envelope.id):
            return
        room = await store.room(uow.conn, str(data.get("event_id")), lock=True)
        if room is not None:
            room = await store.add_sold(uow.conn, room.event_id, tickets)
            if room is not None and room.status != RoomStatus.CLOSED and room.capacity and room.sold >= room.capacity:
                await store.close_line(uow.conn, room.event_id, deps.now())
        await uow.commit()
    deps.memory.forget_room(str(data.get("event_id")))


async def apply_hold(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    """Holds placed on a queued sale: booking's own latency for each feeds the adaptive rate, and an admitted
    buyer's hold marks the admission as used (it leaves the concurrency window)."""
    await apply_holds(deps, [envelope])  # every hold of every sale comes here; only queued sales need a write


async def apply_holds(deps: WaitingRoomDeps, envelopes: Sequence[Envelope]) -> None:
    """A poll's holds (``Batched``): those placed on sales with a line, each as ``apply_bookings`` does."""
    placed = [e for e in envelopes if e.type == "booking.hold-placed"]
    for envelope in await _among_rooms(deps, placed) if placed else ():
        await _apply_hold(deps, envelope)


async def _apply_hold(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    event_id, user_id = str(envelope.data.get("event_id")), str(envelope.data.get("user_id"))
    latency = envelope.data.get("latency_ms")
    slow = isinstance(latency, int | float) and latency > deps.config.hold_latency_target_ms
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, HOLDS_GROUP, envelope.id):
            return
        await store.count_hold(uow.conn, event_id, slow=slow)
        await store.mark_converted(uow.conn, event_id, user_id)
        await uow.commit()
