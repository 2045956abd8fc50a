"""The waiting room's use cases: join the line, see one's place, admit people, learn from other services.

Admission runs in one loop (``tick_rooms``), one short transaction per room and tick, locking the room row
(PostgreSQL) so that two workers never admit the same people; positions and arrivals come from conditional
increments of the room's counters, so two joins never share a number.
"""

from __future__ import annotations

import dataclasses
import secrets
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


async def join_line(deps: WaitingRoomDeps, event_id: str, user_id: str) -> MyPlace:
    """Take a place in the line, or get back the one this account already has.

    Every buyer of a big sale joins within seconds, so a join keeps the service's writer (on SQLite, its one
    write connection) for two statements only: the numbers, decided by the room's status in the same UPDATE
    (so a join racing the opening is either drawn or gets a position, never neither), and the place.
    Looking for an existing place is a read on the read pool; a retried join writes nothing.
    """
    async with deps.db.read() as conn:
        room, existing = await store.room_and_place(conn, event_id, user_id)
    if room is None:
        raise domain.NoWaitingRoom("This sale has no waiting room.")
    if existing is not None:
        return _my_place(deps, existing, room)
    if room.status == RoomStatus.CLOSED:
        raise domain.QueueClosed("This sale is sold out; the line is closed.")
    now, raced = deps.now(), False
    async with deps.db.uow() as uow:
        arrival, position, status = await store.take_numbers(uow.conn, event_id)
        if status == RoomStatus.CLOSED:
            raise domain.QueueClosed("This sale is sold out; the line is closed.")
        place = domain.Place(
            event_id=event_id, user_id=user_id, arrival=arrival, joined_at=now, position=position,
            status=PlaceStatus.WAITING, reason=None, admitted_at=None, expires_at=None, last_seen_at=now,
            converted=False,
        )
        try:
            await store.insert_place(
                uow.conn,
                {
                    "event_id": event_id, "user_id": user_id, "arrival": arrival, "joined_at": now,
                    "position": position, "status": PlaceStatus.WAITING, "last_seen_at": now, "converted": False,
                },
            )
            await uow.commit()
        except IntegrityError:
            raced = True
    if raced:  # a second browser won the race: its place is this account's place
        return await my_place(deps, event_id, user_id)
    JOINED.inc()
    return _my_place(deps, place, dataclasses.replace(room, status=status))  # what was just written


async def my_place(deps: WaitingRoomDeps, event_id: str, user_id: str) -> MyPlace:
    """Where this account stands; asking keeps the place from being abandoned.

    This is what every waiting buyer polls, so it is one read (room and place joined) and, at most once a
    minute per place, one small write.
    """
    now = deps.now()
    async with deps.db.read() as conn:
        room, place = await store.room_and_place(conn, event_id, user_id)
    if room is None:
        raise domain.NoWaitingRoom("This sale has no waiting room.")
    if place is None:
        raise domain.NoWaitingRoom("You are not in this line; join it first.")
    if place.status == PlaceStatus.WAITING and now - place.last_seen_at > SEEN_EVERY:
        async with deps.db.uow() as uow:
            await store.update_place(uow.conn, event_id, user_id, last_seen_at=now)
            await uow.commit()
    return _my_place(deps, place, room)


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


async def _has_room(deps: WaitingRoomDeps, event_id: str) -> bool:
    """Rooms are made from catalog events, which come before any booking of their sale."""
    async with deps.db.read() as conn:
        return await store.room(conn, event_id) is not None


async def apply_booking(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    """Confirmed and cancelled orders move the sold count; a sale that sells out closes its line."""
    data = envelope.data
    tickets = int(data.get("ticket_count") or 0)
    if data.get("status") == "cancelled":
        tickets = -tickets
    if not await _has_room(deps, str(data.get("event_id"))):
        return  # most sales have no line: no write at all for them (this runs for every order)
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, BOOKINGS_GROUP, envelope.id):
            return
        room = await store.room(uow.conn, str(data.get("event_id")), lock=True)
        if room is not None:
            room = await store.add_sold(uow.conn, room.event_id, tickets)
            if room is not None and room.status != RoomStatus.CLOSED and room.capacity and room.sold >= room.capacity:
                await store.close_line(uow.conn, room.event_id, deps.now())
        await uow.commit()


async def apply_hold(deps: WaitingRoomDeps, envelope: Envelope) -> None:
    """Holds placed on a queued sale: booking's own latency for each feeds the adaptive rate, and an admitted
    buyer's hold marks the admission as used (it leaves the concurrency window)."""
    if envelope.type != "booking.hold-placed":
        return
    event_id, user_id = str(envelope.data.get("event_id")), str(envelope.data.get("user_id"))
    if not await _has_room(deps, event_id):
        return  # every hold of every sale comes here; only queued sales need a write
    latency = envelope.data.get("latency_ms")
    slow = isinstance(latency, int | float) and latency > deps.config.hold_latency_target_ms
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, HOLDS_GROUP, envelope.id):
            return
        await store.count_hold(uow.conn, event_id, slow=slow)
        await store.mark_converted(uow.conn, event_id, user_id)
        await uow.commit()
