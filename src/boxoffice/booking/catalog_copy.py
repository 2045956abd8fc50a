"""Booking's copy of what catalog sells (events, sections, seats, runs, train seats): written from catalog's
events by handlers/catalog_feed.py, read when a hold is placed. What is held or sold lives in store.py and
inventory.py; a republished event never resets it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking.domain import (
    Details,
    Event,
    EventDetails,
    Hold,
    HoldKind,
    Run,
    Seat,
    Section,
    Stop,
    StopDetails,
    TrainDetails,
)
from boxoffice.booking.tables import events, runs, seats, sections, train_seats, upsert_into
from boxoffice.platform import hotsql


# Inventory built from catalog events.
async def upsert_event(conn: AsyncConnection, event: Event) -> None:
    values = {
        "event_id": event.event_id,
        "name": event.name,
        "venue": event.venue,
        "city": event.city,
        "starts_at": event.starts_at,
        "currency": event.currency,
        "seating": event.seating,
        "on_sale_at": event.on_sale_at,
        "timezone": event.timezone,
        "address": event.address,
    }
    stmt = upsert_into(conn, events).values(values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["event_id"], set_=values))


async def upsert_section(conn: AsyncConnection, section: Section) -> None:
    """New sections start empty; a republished one keeps what is held and sold (capacity may change)."""
    values = {"name": section.name, "price": section.price, "capacity": section.capacity}
    stmt = upsert_into(conn, sections).values(
        section_id=section.section_id, event_id=section.event_id, held=0, sold=0, **values
    )
    await conn.execute(stmt.on_conflict_do_update(index_elements=["section_id"], set_=values))


async def insert_missing_seats(conn: AsyncConnection, event_id: str, new: list[Seat]) -> None:
    rows = [
        {
            "seat_id": seat.seat_id,
            "event_id": event_id,
            "section_id": seat.section_id,
            "label": seat.label,
            "price": seat.price,
            "status": "available",
        }
        for seat in new
    ]
    if rows:
        await conn.execute(upsert_into(conn, seats).on_conflict_do_nothing(), rows)


async def upsert_run(conn: AsyncConnection, run: Run) -> None:
    values = {
        "run_id": run.run_id,
        "train_number": run.train_number,
        "name": run.name,
        "currency": run.currency,
        "stops": [
            {
                "station": s.station,
                "index": s.index,
                "arrives_at": s.arrives_at,
                "departs_at": s.departs_at,
                "name": s.name,
                "timezone": s.timezone,
            }
            for s in run.stops
        ],
        "fares": {code: dict(fares) for code, fares in run.fares.items()},
        "class_names": dict(run.class_names),
        "on_sale_at": run.on_sale_at,
    }
    stmt = upsert_into(conn, runs).values(values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["run_id"], set_=values))


async def insert_missing_train_seats(conn: AsyncConnection, run_id: str, new: list[tuple[str, Seat]]) -> None:
    """``new``: (class code, seat) pairs."""
    rows = [{"run_id": run_id, "seat_id": s.seat_id, "class_code": code, "label": s.label} for code, s in new]
    if rows:
        await conn.execute(upsert_into(conn, train_seats).on_conflict_do_nothing(), rows)


_EVENT = select(events).where(events.c.event_id == bindparam("p_event_id"))  # built once: read by every hold
# A general-admission hold's event and section (if the section is the event's): one statement instead of two.
_EVENT_AND_SECTION = (
    select(events, *[column.label(f"s_{column.name}") for column in sections.c])
    .outerjoin(
        sections,
        and_(sections.c.section_id == bindparam("p_section_id"), sections.c.event_id == events.c.event_id),
    )
    .where(events.c.event_id == bindparam("p_event_id"))
)


def _event(row: Any) -> Event:
    return Event(
        row.event_id, row.name, row.venue, row.city, row.starts_at, row.currency, row.seating, row.on_sale_at,
        timezone=row.timezone, address=row.address,
    )


async def event_of(conn: AsyncConnection, event_id: str) -> Event | None:
    row = (await hotsql.run(conn, _EVENT, {"p_event_id": event_id})).first()
    return None if row is None else _event(row)


async def event_and_section(
    conn: AsyncConnection, event_id: str, section_id: str
) -> tuple[Event | None, Section | None]:
    """The event, and its section ``section_id`` (None when the event has no such section)."""
    row = (await hotsql.run(conn, _EVENT_AND_SECTION, {"p_event_id": event_id, "p_section_id": section_id})).first()
    if row is None:
        return None, None
    section = None
    if row.s_section_id is not None:
        section = Section(row.s_section_id, row.s_event_id, row.s_name, row.s_price, row.s_capacity)
    return _event(row), section


def run_from(row: Any) -> Run:
    stops = tuple(
        Stop(str(s["station"]), int(s["index"]), s.get("arrives_at"), s.get("departs_at"), s.get("name"),
             s.get("timezone") or "UTC")
        for s in row.stops
    )
    return Run(
        row.run_id, row.train_number, row.name, row.currency, stops, row.fares, row.class_names, row.on_sale_at
    )


async def run_of(conn: AsyncConnection, run_id: str) -> Run | None:
    row = (await conn.execute(select(runs).where(runs.c.run_id == run_id))).first()
    return None if row is None else run_from(row)


async def section_names(conn: AsyncConnection, event_id: str) -> dict[str, str]:
    rows = await conn.execute(select(sections.c.section_id, sections.c.name).where(sections.c.event_id == event_id))
    return {row.section_id: row.name for row in rows}


async def details_of(conn: AsyncConnection, hold: Hold) -> Details:
    """What the hold is for, from booking's copy of the catalog: the event, or the train journey."""
    if hold.kind == HoldKind.TRAIN:
        run = await run_of(conn, hold.event_id)
        assert run is not None and hold.segment is not None and hold.class_code is not None
        origin, destination = run.stop(hold.segment.origin), run.stop(hold.segment.destination)
        return Details(
            train=TrainDetails(
                run_id=run.run_id,
                train_number=run.train_number,
                name=run.name,
                class_code=hold.class_code,
                class_name=run.class_names.get(hold.class_code, hold.class_code),
                origin=StopDetails(origin.station, origin.name or origin.station, origin.timezone, origin.departs_at),
                destination=StopDetails(
                    destination.station, destination.name or destination.station, destination.timezone,
                    destination.arrives_at,
                ),
            )
        )
    event = await event_of(conn, hold.event_id)
    assert event is not None
    return Details(
        event=EventDetails(event.name, event.venue, event.city, event.address, event.starts_at, event.timezone)
    )
