"""Inventory built from the catalog's events (``catalog.event-published``, ``catalog.run-published``).

Booking never reads catalog's tables: it keeps its own copy of what it sells, written from events, each
applied once (inbox) in one transaction. A republished event updates names and prices and adds sections or
seats; what is held or sold is never reset. The events' data (docs/contracts.md) is parsed into domain
types first; an event that does not parse fails like any other error of the consumer.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking import catalog_copy
from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import Event, Run, Seat, Section, Stop
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.tables import claim_inbox

GROUP = "booking.catalog"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _SeatIn(_Wire):
    seat_id: str
    label: str
    price: int = 0  # train seats are priced by fare, per journey


class _SectionIn(_Wire):
    section_id: str
    name: str
    price: int
    capacity: int
    seats: list[_SeatIn] | None = None  # empty (or absent) for general admission


class _QueueIn(_Wire):
    on_sale_at: datetime


class EventPublished(_Wire):
    event_id: str
    name: str
    venue: str
    city: str
    starts_at: datetime
    currency: str
    seating: str
    sections: list[_SectionIn]
    queue: _QueueIn | None = None  # a queued sale
    timezone: str = "UTC"  # the venue's IANA zone (events from before zones have none)
    address: str | None = None


class _StopIn(_Wire):
    station: str
    index: int
    arrives_at: str | None = None
    departs_at: str | None = None
    name: str | None = None
    timezone: str = "UTC"


class _CoachIn(_Wire):
    seats: list[_SeatIn]


class _ClassIn(_Wire):
    code: str
    name: str
    fares: dict[str, int]
    coaches: list[_CoachIn]


class RunPublished(_Wire):
    run_id: str
    train_number: str
    name: str
    currency: str
    stops: list[_StopIn]
    classes: list[_ClassIn]
    queue: _QueueIn | None = None  # a queued booking day


async def apply_catalog_event(deps: BookingDeps, envelope: Envelope) -> None:
    if envelope.type not in ("catalog.event-published", "catalog.run-published"):
        return
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, GROUP, envelope.id):
            return
        if envelope.type == "catalog.event-published":
            await _apply_event(uow.conn, EventPublished.model_validate(envelope.data))
        else:
            await _apply_run(uow.conn, RunPublished.model_validate(envelope.data))
        await uow.commit()


async def _apply_event(conn: AsyncConnection, data: EventPublished) -> None:
    on_sale_at = data.queue.on_sale_at if data.queue else None
    event = Event(
        data.event_id, data.name, data.venue, data.city, data.starts_at, data.currency, data.seating, on_sale_at,
        timezone=data.timezone, address=data.address,
    )
    await catalog_copy.upsert_event(conn, event)
    for s in data.sections:
        await catalog_copy.upsert_section(conn, Section(s.section_id, event.event_id, s.name, s.price, s.capacity))
    seats = [Seat(seat.seat_id, seat.label, s.section_id, seat.price) for s in data.sections for seat in s.seats or ()]
    await catalog_copy.insert_missing_seats(conn, event.event_id, seats)


async def _apply_run(conn: AsyncConnection, data: RunPublished) -> None:
    run = Run(
        run_id=data.run_id,
        train_number=data.train_number,
        name=data.name,
        currency=data.currency,
        stops=tuple(Stop(s.station, s.index, s.arrives_at, s.departs_at, s.name, s.timezone) for s in data.stops),
        fares={c.code: c.fares for c in data.classes},
        class_names={c.code: c.name for c in data.classes},
        on_sale_at=data.queue.on_sale_at if data.queue else None,
    )
    await catalog_copy.upsert_run(conn, run)
    seats = [
        (c.code, Seat(seat.seat_id, seat.label)) for c in data.classes for coach in c.coaches for seat in coach.seats
    ]
    await catalog_copy.insert_missing_train_seats(conn, run.run_id, seats)
