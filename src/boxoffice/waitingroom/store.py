"""The waiting room's tables and queries: rooms, places in line, the admission record, holds seen."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.bus.tables import BigId, add_messaging_tables
from boxoffice.platform.db import UtcDateTime
from boxoffice.waitingroom.domain import CloseReason, Place, PlaceStatus, Room, RoomStatus, Signals

metadata = MetaData()

rooms = Table(
    "rooms",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("on_sale_at", UtcDateTime, nullable=False),
    Column("admit_per_minute", Integer, nullable=True),
    Column("rate_per_minute", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("seed", String(64), nullable=True),
    Column("capacity", Integer, nullable=False),
    Column("sold", Integer, nullable=False, default=0),
    Column("next_arrival", Integer, nullable=False, default=1),
    Column("next_position", Integer, nullable=False, default=1),
    Column("admitted_through", Integer, nullable=False, default=0),
    Column("carry", Float, nullable=False, default=0.0),
    Column("last_tick_at", UtcDateTime, nullable=True),
    Column("opened_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    # The adaptive rate: its last adjustment, and what booking reported since (booking.hold-placed).
    Column("adjusted_at", UtcDateTime, nullable=True),
    Column("signal_holds", Integer, nullable=False, server_default="0"),
    Column("signal_slow", Integer, nullable=False, server_default="0"),
    Index("ix_rooms_status", "status"),
)

places = Table(
    "places",
    metadata,
    Column("event_id", String(36), primary_key=True),
    # One place per account and sale: the key, not a check, so two browsers racing get the same place.
    Column("user_id", String(36), primary_key=True),
    Column("arrival", Integer, nullable=False),
    Column("joined_at", UtcDateTime, nullable=False),
    Column("position", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("admitted_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("converted", Boolean, nullable=False, default=False),
    Index("ix_places_line", "event_id", "status", "position"),
    Index("ix_places_arrival", "event_id", "arrival"),
    Index("ix_places_expiry", "status", "expires_at"),
)

# The fairness record: every admission (and every place passed over) in order, with the rate in force.
admissions = Table(
    "admissions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("position", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # admitted | abandoned
    Column("at", UtcDateTime, nullable=False),
    Column("rate_per_minute", Float, nullable=False),
    Column("tick", Integer, nullable=False),  # admissions of one tick share its number
    Index("ix_admissions_event", "event_id", "seq"),
)

# Every change of the adaptive rate, with the signals that caused it (the audit record explains the rate).
rate_changes = Table(
    "rate_changes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("from_rate", Float, nullable=False),
    Column("to_rate", Float, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("holds", Integer, nullable=False),
    Column("slow_holds", Integer, nullable=False),
    Column("due", Integer, nullable=False),
    Column("stalled", Integer, nullable=False),
    Column("waiting", Integer, nullable=False),
    Column("unheld", Integer, nullable=False),
    Index("ix_rate_changes_event", "event_id", "seq"),
)

outbox, inbox = add_messaging_tables(metadata)


def _room(row: Any) -> Room:
    return Room(
        event_id=row.event_id,
        name=row.name,
        on_sale_at=row.on_sale_at,
        admit_per_minute=row.admit_per_minute,
        rate_per_minute=row.rate_per_minute,
        status=RoomStatus(row.status),
        seed=row.seed,
        capacity=row.capacity,
        sold=row.sold,
        next_position=row.next_position,
        admitted_through=row.admitted_through,
        carry=row.carry,
        last_tick_at=row.last_tick_at,
        opened_at=row.opened_at,
        adjusted_at=row.adjusted_at,
        signal_holds=row.signal_holds,
        signal_slow=row.signal_slow,
    )


def _place(row: Any) -> Place:
    return Place(
        event_id=row.event_id,
        user_id=row.user_id,
        arrival=row.arrival,
        joined_at=row.joined_at,
        position=row.position,
        status=PlaceStatus(row.status),
        reason=CloseReason(row.reason) if row.reason else None,
        admitted_at=row.admitted_at,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
        converted=bool(row.converted),
    )


async def room(conn: AsyncConnection, event_id: str, *, lock: bool = False) -> Room | None:
    stmt = select(rooms).where(rooms.c.event_id == event_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return _room(row) if row else None


async def with_rooms(conn: AsyncConnection, event_ids: Iterable[str]) -> set[str]:
    """Which of these sales have a line (one read for a poll's worth of events)."""
    wanted = sorted(set(event_ids))
    if not wanted:
        return set()
    rows = await conn.execute(select(rooms.c.event_id).where(rooms.c.event_id.in_(wanted)))
    return {row.event_id for row in rows}


async def rooms_to_tick(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        select(rooms.c.event_id).where(rooms.c.status.in_([RoomStatus.SCHEDULED, RoomStatus.OPEN]))
    )
    return [r.event_id for r in rows]


async def upsert_room(
    conn: AsyncConnection, *, event_id: str, name: str, on_sale_at: datetime, admit_per_minute: int | None,
    rate_per_minute: float, capacity: int,
) -> None:
    """A room from the catalog's event; a republished event updates what has not started yet."""
    existing = await room(conn, event_id)
    if existing is None:
        await conn.execute(
            insert(rooms).values(
                event_id=event_id, name=name, on_sale_at=on_sale_at, admit_per_minute=admit_per_minute,
                rate_per_minute=rate_per_minute, status=RoomStatus.SCHEDULED, capacity=capacity, sold=0,
                next_arrival=1, next_position=1, admitted_through=0, carry=0.0,
            )
        )
        return
    values: dict[str, Any] = {"name": name, "capacity": capacity, "admit_per_minute": admit_per_minute}
    if existing.status == RoomStatus.SCHEDULED:
        values["on_sale_at"] = on_sale_at
    await conn.execute(update(rooms).where(rooms.c.event_id == event_id).values(values))


async def update_room(conn: AsyncConnection, event_id: str, **values: Any) -> None:
    await conn.execute(update(rooms).where(rooms.c.event_id == event_id).values(values))


@dataclass(frozen=True, slots=True)
class Numbers:
    """What a batch of ``count`` joins took from its room: arrivals ``first_arrival`` on, and positions
    ``first_position`` on once the room is open (None in the pre-queue), decided with the room's status."""

    first_arrival: int
    first_position: int | None
    status: RoomStatus
    on_sale_at: datetime
    opened_at: datetime | None


async def take_numbers(conn: AsyncConnection, event_id: str, count: int = 1) -> Numbers:
    """The next ``count`` arrival numbers and, once the room is open, the next ``count`` positions (first come,
    first served), with the room's status, all from one conditional increment: never twice, never out of
    step with the opening."""
    opened = rooms.c.status == RoomStatus.OPEN
    result = await conn.execute(
        update(rooms)
        .where(rooms.c.event_id == event_id)
        .values(next_arrival=rooms.c.next_arrival + count,
                next_position=case((opened, rooms.c.next_position + count), else_=rooms.c.next_position))
        .returning(rooms.c.next_arrival, rooms.c.next_position, rooms.c.status, rooms.c.on_sale_at,
                   rooms.c.opened_at)
    )
    row = result.one()
    status = RoomStatus(row.status)
    position = int(row.next_position) - count if status == RoomStatus.OPEN else None
    return Numbers(int(row.next_arrival) - count, position, status, row.on_sale_at, row.opened_at)


async def add_sold(conn: AsyncConnection, event_id: str, tickets: int) -> Room | None:
    await conn.execute(update(rooms).where(rooms.c.event_id == event_id).values(sold=rooms.c.sold + tickets))
    return await room(conn, event_id)


async def place(conn: AsyncConnection, event_id: str, user_id: str) -> Place | None:
    row = (
        await conn.execute(select(places).where(places.c.event_id == event_id, places.c.user_id == user_id))
    ).first()
    return _place(row) if row else None


async def places_of(conn: AsyncConnection, event_id: str, user_ids: Sequence[str]) -> dict[str, Place]:
    rows = await conn.execute(
        select(places).where(places.c.event_id == event_id, places.c.user_id.in_(list(user_ids)))
    )
    return {r.user_id: _place(r) for r in rows}


async def insert_places(conn: AsyncConnection, new: Sequence[Place]) -> None:
    await conn.execute(
        insert(places),
        [
            {"event_id": p.event_id, "user_id": p.user_id, "arrival": p.arrival, "joined_at": p.joined_at,
             "position": p.position, "status": p.status, "last_seen_at": p.last_seen_at, "converted": p.converted}
            for p in new
        ],
    )


async def mark_seen(conn: AsyncConnection, event_id: str, user_ids: Sequence[str], at: datetime) -> None:
    """Their holders asked for these waiting places (abandonment counts from ``last_seen_at``)."""
    await conn.execute(
        update(places)
        .where(places.c.event_id == event_id, places.c.user_id.in_(list(user_ids)),
               places.c.status == PlaceStatus.WAITING, places.c.last_seen_at < at)
        .values(last_seen_at=at)
    )


async def update_place(conn: AsyncConnection, event_id: str, user_id: str, **values: Any) -> None:
    await conn.execute(
        update(places).where(places.c.event_id == event_id, places.c.user_id == user_id).values(values)
    )


async def prequeue(conn: AsyncConnection, event_id: str) -> list[str]:
    """User ids in the pre-queue, in join order."""
    rows = await conn.execute(
        select(places.c.user_id)
        .where(places.c.event_id == event_id, places.c.position.is_(None), places.c.status == PlaceStatus.WAITING)
        .order_by(places.c.arrival)
    )
    return [r.user_id for r in rows]


async def set_positions(conn: AsyncConnection, event_id: str, user_ids: Sequence[str]) -> None:
    """Positions 1..n to ``user_ids`` in that order (the pre-queue draw)."""
    if user_ids:
        await conn.execute(
            update(places)
            .where(places.c.event_id == event_id, places.c.user_id == bindparam("uid"))
            .values(position=bindparam("pos")),
            [{"uid": uid, "pos": index + 1} for index, uid in enumerate(user_ids)],
        )


async def next_waiting(conn: AsyncConnection, event_id: str, limit: int) -> list[Place]:
    rows = await conn.execute(
        select(places)
        .where(places.c.event_id == event_id, places.c.status == PlaceStatus.WAITING, places.c.position.is_not(None))
        .order_by(places.c.position)
        .limit(limit)
    )
    return [_place(r) for r in rows]


async def close_places(conn: AsyncConnection, event_id: str, user_ids: Sequence[str], reason: CloseReason) -> None:
    if user_ids:
        await conn.execute(
            update(places)
            .where(places.c.event_id == event_id, places.c.user_id.in_(list(user_ids)))
            .values(status=PlaceStatus.CLOSED, reason=reason)
        )


async def admit_places(
    conn: AsyncConnection, event_id: str, user_ids: Sequence[str], *, at: datetime, expires_at: datetime
) -> None:
    if user_ids:
        await conn.execute(
            update(places)
            .where(places.c.event_id == event_id, places.c.user_id.in_(list(user_ids)))
            .values(status=PlaceStatus.ADMITTED, admitted_at=at, expires_at=expires_at)
        )


async def record_admissions(
    conn: AsyncConnection, outcomes: Sequence[tuple[Place, str]], *, at: datetime, rate: float, tick: int
) -> None:
    """The record's rows for one batch, in the order given (position order: ``seq`` follows it)."""
    if outcomes:
        await conn.execute(
            insert(admissions),
            [
                {"event_id": p.event_id, "user_id": p.user_id, "position": p.position or 0, "outcome": outcome,
                 "at": at, "rate_per_minute": rate, "tick": tick}
                for p, outcome in outcomes
            ],
        )


async def admission_record(conn: AsyncConnection, event_id: str) -> list[Any]:
    rows = await conn.execute(select(admissions).where(admissions.c.event_id == event_id).order_by(admissions.c.seq))
    return list(rows)


async def last_tick_number(conn: AsyncConnection, event_id: str) -> int:
    value = (
        await conn.execute(select(func.max(admissions.c.tick)).where(admissions.c.event_id == event_id))
    ).scalar_one()
    return int(value or 0)


async def arrivals(conn: AsyncConnection, event_id: str) -> list[Any]:
    rows = await conn.execute(
        select(places.c.user_id, places.c.arrival, places.c.joined_at, places.c.position)
        .where(places.c.event_id == event_id)
        .order_by(places.c.arrival)
    )
    return list(rows)


async def close_line(conn: AsyncConnection, event_id: str, now: datetime) -> int:
    """Sold out: everyone still in line leaves it at once, admitted or not (nothing is left to buy)."""
    result = await conn.execute(
        update(places)
        .where(places.c.event_id == event_id, places.c.status.in_([PlaceStatus.WAITING, PlaceStatus.ADMITTED]))
        .values(status=PlaceStatus.CLOSED, reason=CloseReason.SOLD_OUT)
    )
    await update_room(conn, event_id, status=RoomStatus.CLOSED, closed_at=now)
    return int(result.rowcount or 0)


async def expire_admissions(conn: AsyncConnection, event_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(places)
        .where(places.c.event_id == event_id, places.c.status == PlaceStatus.ADMITTED, places.c.expires_at <= now)
        .values(status=PlaceStatus.CLOSED, reason=CloseReason.ADMISSION_EXPIRED)
    )
    return int(result.rowcount or 0)


async def mark_converted(conn: AsyncConnection, event_id: str, user_id: str) -> None:
    await conn.execute(
        update(places)
        .where(places.c.event_id == event_id, places.c.user_id == user_id, places.c.status == PlaceStatus.ADMITTED)
        .values(converted=True)
    )


async def count_hold(conn: AsyncConnection, event_id: str, *, slow: bool) -> None:
    """A hold booking placed on the sale, and whether it took booking longer than the target."""
    await conn.execute(
        update(rooms)
        .where(rooms.c.event_id == event_id)
        .values(signal_holds=rooms.c.signal_holds + 1, signal_slow=rooms.c.signal_slow + int(slow))
    )


async def unheld(conn: AsyncConnection, event_id: str, since: datetime | None = None) -> int:
    """Admitted buyers who have not placed a hold yet (the concurrency window's use); with ``since``, only
    those admitted after it (a buyer still without a hold after the grace no longer holds a place in the
    window: gone, or failing, which the rate counts instead)."""
    stmt = select(func.count()).where(
        places.c.event_id == event_id, places.c.status == PlaceStatus.ADMITTED, places.c.converted.is_(False)
    )
    if since is not None:
        stmt = stmt.where(places.c.admitted_at > since)
    value = (await conn.execute(stmt)).scalar_one()
    return int(value)


async def waiting(conn: AsyncConnection, event_id: str) -> int:
    value = (
        await conn.execute(
            select(func.count()).where(
                places.c.event_id == event_id, places.c.status == PlaceStatus.WAITING, places.c.position.is_not(None)
            )
        )
    ).scalar_one()
    return int(value)


async def admitted_between(conn: AsyncConnection, event_id: str, after: datetime, until: datetime) -> tuple[int, int]:
    """(admitted, of those without a hold) among buyers admitted in ``(after, until]``."""
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(case((places.c.converted.is_(False), 1), else_=0)), 0)).where(
                places.c.event_id == event_id, places.c.admitted_at > after, places.c.admitted_at <= until
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def record_rate_change(
    conn: AsyncConnection, *, event_id: str, at: datetime, from_rate: float, to_rate: float, reason: str,
    signals: Signals,
) -> None:
    await conn.execute(
        insert(rate_changes).values(
            event_id=event_id, at=at, from_rate=from_rate, to_rate=to_rate, reason=reason[:200],
            holds=signals.holds, slow_holds=signals.slow_holds, due=signals.due, stalled=signals.stalled,
            waiting=signals.waiting, unheld=signals.unheld,
        )
    )


@dataclass(frozen=True, slots=True)
class RateChangeRow:
    seq: int
    at: datetime
    from_rate: float
    to_rate: float
    reason: str


async def rate_record(conn: AsyncConnection, event_id: str) -> list[RateChangeRow]:
    rows = await conn.execute(
        select(rate_changes).where(rate_changes.c.event_id == event_id).order_by(rate_changes.c.seq)
    )
    return [RateChangeRow(r.seq, r.at, r.from_rate, r.to_rate, r.reason) for r in rows]


async def room_and_place(conn: AsyncConnection, event_id: str, user_id: str) -> tuple[Room | None, Place | None]:
    """The room and this account's place in one read (the status poll's only query)."""
    joined = rooms.outerjoin(places, and_(places.c.event_id == rooms.c.event_id, places.c.user_id == user_id))
    room_cols = [c.label(f"r_{c.name}") for c in rooms.c]
    place_cols = [c.label(f"p_{c.name}") for c in places.c]
    stmt = select(*room_cols, *place_cols).select_from(joined).where(rooms.c.event_id == event_id)
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None, None
    mapping = row._mapping
    found_room = _room(_Prefixed(mapping, "r_"))
    found_place = _place(_Prefixed(mapping, "p_")) if mapping["p_user_id"] is not None else None
    return found_room, found_place


class _Prefixed:
    """Attribute access to one table's columns of a joined row (``row.r_name`` as ``.name``)."""

    def __init__(self, mapping: Any, prefix: str) -> None:
        self._mapping, self._prefix = mapping, prefix

    def __getattr__(self, name: str) -> Any:
        return self._mapping[self._prefix + name]


@dataclass(frozen=True, slots=True)
class LineCounts:
    waiting: int
    admitted: int
    abandoned: int
    admitted_last_minute: int


async def line_counts(conn: AsyncConnection, event_id: str, now: datetime, minute_ago: datetime) -> LineCounts:
    by_status = dict(
        (r.status, r.n)
        for r in await conn.execute(
            select(places.c.status, func.count().label("n"))
            .where(places.c.event_id == event_id)
            .group_by(places.c.status)
        )
    )
    abandoned = (
        await conn.execute(
            select(func.count()).where(
                places.c.event_id == event_id,
                places.c.converted.is_(False),
                and_(
                    places.c.reason.in_([CloseReason.ABANDONED, CloseReason.ADMISSION_EXPIRED]),
                    places.c.status == PlaceStatus.CLOSED,
                ),
            )
        )
    ).scalar_one()
    recent = (
        await conn.execute(
            select(func.count()).where(
                admissions.c.event_id == event_id, admissions.c.outcome == "admitted", admissions.c.at > minute_ago
            )
        )
    ).scalar_one()
    return LineCounts(
        waiting=int(by_status.get(PlaceStatus.WAITING, 0)),
        admitted=int(by_status.get(PlaceStatus.ADMITTED, 0)),
        abandoned=int(abandoned),
        admitted_last_minute=int(recent),
    )
