"""Claims on inventory: the conditional writes behind holds, sales, releases and cancellations.

Each function runs inside the caller's transaction and either changes exactly what it says or raises a
domain error (which rolls the whole transaction back). See store.py for why these writes cannot oversell.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking.domain import Hold, HoldKind, InvalidSelection, Seat, SeatUnavailable, Segment, SoldOut
from boxoffice.booking.tables import is_postgres, seats, sections, train_claims, train_seats
from boxoffice.platform import hotsql

# General admission.
_QUANTITY = bindparam("p_quantity", type_=Integer)
# The hottest statements of a sale, built once (SQLAlchemy then skips building and keying them per call).
_CLAIM_GENERAL = (
    update(sections)
    .where(
        sections.c.section_id == bindparam("p_section_id"),
        sections.c.sold + sections.c.held + _QUANTITY <= sections.c.capacity,
    )
    .values(held=sections.c.held + _QUANTITY)
)
_SELL_GENERAL = (
    update(sections)
    .where(sections.c.section_id == bindparam("p_section_id"))
    .values(held=sections.c.held - _QUANTITY, sold=sections.c.sold + _QUANTITY)
)


async def claim_general(conn: AsyncConnection, section_id: str, quantity: int) -> None:
    result = await hotsql.run(conn, _CLAIM_GENERAL, {"p_section_id": section_id, "p_quantity": quantity})
    if result.rowcount != 1:
        raise SoldOut("Not enough tickets are left in this section.")


async def release_general(conn: AsyncConnection, section_id: str, quantity: int) -> None:
    await conn.execute(
        update(sections).where(sections.c.section_id == section_id).values(held=sections.c.held - quantity)
    )


async def sell_general(conn: AsyncConnection, section_id: str, quantity: int) -> None:
    await hotsql.run(conn, _SELL_GENERAL, {"p_section_id": section_id, "p_quantity": quantity})


async def unsell_general(conn: AsyncConnection, section_id: str, quantity: int) -> None:
    await conn.execute(
        update(sections).where(sections.c.section_id == section_id).values(sold=sections.c.sold - quantity)
    )


# Reserved seats of an event.
async def seats_for(conn: AsyncConnection, event_id: str, seat_ids: list[str]) -> list[Seat]:
    rows = list(
        await conn.execute(
            select(seats.c.seat_id, seats.c.label, seats.c.price, seats.c.section_id)
            .where(seats.c.event_id == event_id, seats.c.seat_id.in_(seat_ids))
            .order_by(seats.c.seat_id)
        )
    )
    if len(rows) != len(seat_ids):
        raise InvalidSelection("Some of these seats do not exist at this event.")
    return [Seat(r.seat_id, r.label, r.section_id, r.price) for r in rows]


async def claim_seats(
    conn: AsyncConnection, event_id: str, seat_ids: list[str], *, hold_id: str, expires_at: datetime, now: datetime
) -> None:
    """Hold every seat or none: a seat is free if available, or held by a hold that has expired."""
    free = or_(seats.c.status == "available", and_(seats.c.status == "held", seats.c.expires_at <= now))
    result = await conn.execute(
        update(seats)
        .where(seats.c.event_id == event_id, seats.c.seat_id.in_(sorted(seat_ids)), free)
        .values(status="held", hold_id=hold_id, expires_at=expires_at)
    )
    if result.rowcount != len(seat_ids):
        raise SeatUnavailable("One or more of these seats were taken meanwhile; pick others.")


async def release_seats(conn: AsyncConnection, hold_id: str) -> None:
    """Free the seats this hold still has (seats taken over after its expiry are not its any more)."""
    await conn.execute(
        update(seats)
        .where(seats.c.hold_id == hold_id, seats.c.status == "held")
        .values(status="available", hold_id=None, expires_at=None)
    )


async def sell_seats(conn: AsyncConnection, hold_id: str, count: int) -> bool:
    result = await conn.execute(
        update(seats).where(seats.c.hold_id == hold_id, seats.c.status == "held").values(status="sold", expires_at=None)
    )
    return bool(result.rowcount == count)


async def unsell_seats(conn: AsyncConnection, hold_id: str) -> None:
    await conn.execute(
        update(seats)
        .where(seats.c.hold_id == hold_id, seats.c.status == "sold")
        .values(status="available", hold_id=None, expires_at=None)
    )


# Train seats on a segment.
def _live_overlap(run_id: str, segment: Segment, now: datetime) -> Any:
    return and_(
        train_claims.c.run_id == run_id,
        train_claims.c.from_index < segment.to_index,
        train_claims.c.to_index > segment.from_index,
        or_(train_claims.c.status == "sold", train_claims.c.expires_at > now),
    )


async def lock_train_seats(conn: AsyncConnection, run_id: str, seat_ids: list[str]) -> None:
    """Serialise everyone who claims or sells these seats (SQLite's single writer already does)."""
    if is_postgres(conn) and seat_ids:
        await conn.execute(
            select(train_seats.c.seat_id)
            .where(train_seats.c.run_id == run_id, train_seats.c.seat_id.in_(sorted(seat_ids)))
            .order_by(train_seats.c.seat_id)
            .with_for_update()
        )


async def train_seats_of(conn: AsyncConnection, run_id: str, class_code: str, seat_ids: list[str]) -> list[Seat]:
    rows = list(
        await conn.execute(
            select(train_seats.c.seat_id, train_seats.c.label).where(
                train_seats.c.run_id == run_id,
                train_seats.c.class_code == class_code,
                train_seats.c.seat_id.in_(seat_ids),
            )
        )
    )
    if len(rows) != len(set(seat_ids)):
        raise InvalidSelection("Some of these seats are not in this class of this train.")
    return [Seat(r.seat_id, r.label) for r in rows]


async def free_train_seats(
    conn: AsyncConnection, run_id: str, class_code: str, segment: Segment, now: datetime, limit: int
) -> list[Seat]:
    taken = select(train_claims.c.seat_id).where(_live_overlap(run_id, segment, now))
    rows = await conn.execute(
        select(train_seats.c.seat_id, train_seats.c.label)
        .where(
            train_seats.c.run_id == run_id,
            train_seats.c.class_code == class_code,
            train_seats.c.seat_id.not_in(taken),
        )
        .order_by(train_seats.c.seat_id)
        .limit(limit)
    )
    return [Seat(r.seat_id, r.label) for r in rows]


async def claim_train_seats(
    conn: AsyncConnection,
    run_id: str,
    seat_ids: list[str],
    segment: Segment,
    *,
    hold_id: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Claim the seats for the segment; the caller holds their locks (``lock_train_seats``)."""
    clash = await conn.execute(
        select(func.count())
        .select_from(train_claims)
        .where(_live_overlap(run_id, segment, now), train_claims.c.seat_id.in_(seat_ids))
    )
    if clash.scalar_one():
        raise SeatUnavailable("One or more of these seats are taken on this journey; pick others.")
    await conn.execute(
        train_claims.insert(),
        [
            {
                "run_id": run_id,
                "seat_id": seat_id,
                "from_index": segment.from_index,
                "to_index": segment.to_index,
                "hold_id": hold_id,
                "status": "held",
                "expires_at": expires_at,
            }
            for seat_id in seat_ids
        ],
    )


async def claimed_seat_ids(conn: AsyncConnection, hold_id: str) -> list[str]:
    rows = await conn.execute(select(train_claims.c.seat_id).where(train_claims.c.hold_id == hold_id))
    return sorted(row.seat_id for row in rows)


async def release_train_seats(conn: AsyncConnection, hold_id: str) -> None:
    await conn.execute(delete(train_claims).where(train_claims.c.hold_id == hold_id))


async def sell_train_seats(conn: AsyncConnection, hold: Hold, seat_ids: list[str], now: datetime) -> bool:
    """Sell the hold's claims unless someone claimed these seats after the hold ran out (locks held)."""
    segment = hold.segment
    assert segment is not None, "a train hold has a segment"
    rivals = await conn.execute(
        select(func.count())
        .select_from(train_claims)
        .where(
            _live_overlap(hold.event_id, segment, now),
            train_claims.c.seat_id.in_(seat_ids),
            train_claims.c.hold_id != hold.id,
        )
    )
    if rivals.scalar_one():
        return False
    hold_id, count = hold.id, hold.quantity
    result = await conn.execute(
        update(train_claims)
        .where(train_claims.c.hold_id == hold_id, train_claims.c.status == "held")
        .values(status="sold", expires_at=None)
    )
    return bool(result.rowcount == count)


# Whichever the kind.
def _section(hold: Hold) -> str:
    assert hold.section_id is not None, "a general admission hold has a section"
    return hold.section_id


async def release(conn: AsyncConnection, hold: Hold) -> None:
    if hold.kind == HoldKind.GENERAL:
        await release_general(conn, _section(hold), hold.quantity)
    elif hold.kind == HoldKind.SEATS:
        await release_seats(conn, hold.id)
    else:
        await release_train_seats(conn, hold.id)


async def sell(conn: AsyncConnection, hold: Hold, now: datetime) -> bool:
    """Turn the hold's claims into sales; False if any claim was lost (then the caller rolls back)."""
    if hold.kind == HoldKind.GENERAL:
        await sell_general(conn, _section(hold), hold.quantity)
        return True
    if hold.kind == HoldKind.SEATS:
        return await sell_seats(conn, hold.id, hold.quantity)
    seat_ids = await claimed_seat_ids(conn, hold.id)
    await lock_train_seats(conn, hold.event_id, seat_ids)
    return await sell_train_seats(conn, hold, seat_ids, now)


async def unsell(conn: AsyncConnection, hold: Hold) -> None:
    if hold.kind == HoldKind.GENERAL:
        await unsell_general(conn, _section(hold), hold.quantity)
    elif hold.kind == HoldKind.SEATS:
        await unsell_seats(conn, hold.id)
    else:
        await release_train_seats(conn, hold.id)
