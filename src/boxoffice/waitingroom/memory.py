"""What one process of the waiting room keeps in memory so that a crowd in line costs little: the database
stays the record, memory only saves reads and batches writes.

- **Rooms**, each read at most once per ``max_age`` seconds (one read for all the buyers polling it; several
  waiting for an expired room share one read), and replaced at once by what this process itself writes
  (its admission ticks, a sale selling out).
- **Places** this process has seen. A waiting place can only change through its room: admitted or passed
  over once the room's ``admitted_through`` reaches its position, drawn at the opening, closed when the room
  closes. So a place that is waiting, in a room that is still scheduled (no position yet) or open and has not
  reached its position, is answered from memory; anything else is read again.
- **Last-seen marks** (abandonment counts places whose holder stopped asking for 10 minutes): kept here and
  written for many places in one statement every ``SEEN_FLUSH`` instead of one transaction per place.
- **Joins** arriving together share one transaction (group commit): the first one to get the room's writer
  writes every join queued behind it, in the order they came (first come, first served).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from boxoffice.waitingroom.domain import Place, PlaceStatus, Room, RoomStatus

T = TypeVar("T")
R = TypeVar("R")
MAX_PLACES = 200_000  # places kept in memory at most (the oldest go first); a miss costs one read
SEEN_FLUSH = timedelta(seconds=5)
BATCH = 500  # joins or last-seen marks written in one statement at most


def plainly_waiting(place: Place, room: Room) -> bool:
    """Whether nothing can have changed this place since it was read, as far as ``room`` shows."""
    if place.status != PlaceStatus.WAITING:
        return False
    if room.status == RoomStatus.SCHEDULED:
        return place.position is None
    return room.status == RoomStatus.OPEN and place.position is not None and place.position > room.admitted_through


@dataclass
class _Cached:
    room: Room
    read_at: float  # time.monotonic()


class Batcher(Generic[T, R]):
    """Group commit: items submitted under one key while a write is in flight go together in the next one.

    No task of its own: the first submitter to get the key's lock writes everything queued (at most
    ``BATCH``); those whose item went with it find their answer ready when they get the lock in turn.
    """

    def __init__(self) -> None:
        self._queued: dict[str, list[tuple[T, asyncio.Future[R]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def submit(
        self, key: str, item: T, write: Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]
    ) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(key, []).append((item, answer))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # One turn of the loop first: the joins already under way (an in-process SQLite write never
            # yields) queue behind this one and go in the same transaction.
            await asyncio.sleep(0)
            while not answer.done():
                queued = self._queued.get(key, [])
                batch, self._queued[key] = queued[:BATCH], queued[BATCH:]
                try:
                    results = await write([i for i, _ in batch])
                except Exception as exc:  # every item of the batch learns why, as it would alone
                    results = [exc] * len(batch)
                except BaseException:  # this writer was cancelled: the next one writes its batch
                    self._queued[key] = batch + self._queued.get(key, [])
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
            if not self._queued.get(key):
                self._queued.pop(key, None)
        return answer.result()


@dataclass
class LineMemory:
    max_age: float = 0.5
    """How old a room read may be when it answers a status poll (seconds)."""
    _rooms: dict[str, _Cached] = field(default_factory=dict)
    _room_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _places: dict[tuple[str, str], Place] = field(default_factory=dict)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    _seen_since: datetime | None = None
    _flush_lock: asyncio.Lock | None = None
    joins: Batcher[str, Place] = field(default_factory=Batcher)
    """Joins waiting to be written, by sale (user ids in arrival order)."""

    async def room(self, event_id: str, read: Callable[[], Awaitable[Room | None]]) -> Room | None:
        cached = self._rooms.get(event_id)
        if cached is not None and time.monotonic() - cached.read_at < self.max_age:
            return cached.room
        async with self._room_locks.setdefault(event_id, asyncio.Lock()):  # one read for all who wait
            cached = self._rooms.get(event_id)
            if cached is not None and time.monotonic() - cached.read_at < self.max_age:
                return cached.room
            found = await read()
            if found is not None:
                self.remember_room(found)
            return found

    def remember_room(self, room: Room) -> None:
        self._rooms[room.event_id] = _Cached(room, time.monotonic())

    def forget_room(self, event_id: str) -> None:
        self._rooms.pop(event_id, None)

    def place(self, event_id: str, user_id: str) -> Place | None:
        return self._places.get((event_id, user_id))

    def remember_place(self, place: Place) -> None:
        key = (place.event_id, place.user_id)
        self._places.pop(key, None)
        self._places[key] = place
        while len(self._places) > MAX_PLACES:
            del self._places[next(iter(self._places))]

    def mark_seen(self, place: Place, now: datetime) -> Place:
        """The holder asked for ``place`` now: to be written with the next flush. Returns the place as seen."""
        self._seen.setdefault(place.event_id, set()).add(place.user_id)
        self._seen_since = self._seen_since or now
        seen = dataclasses.replace(place, last_seen_at=now)
        self.remember_place(seen)
        return seen

    def seen_due(self, now: datetime) -> bool:
        return self._seen_since is not None and (
            now - self._seen_since >= SEEN_FLUSH or sum(len(s) for s in self._seen.values()) >= BATCH
        )

    async def flush_seen(self, now: datetime, write: Callable[[str, list[str], datetime], Awaitable[None]]) -> None:
        """Write the last-seen marks gathered so far (one statement per sale and ``BATCH`` places)."""
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            seen, self._seen, self._seen_since = self._seen, {}, None
            for event_id, users in seen.items():
                ordered = sorted(users)
                for start in range(0, len(ordered), BATCH):
                    await write(event_id, ordered[start : start + BATCH], now)
