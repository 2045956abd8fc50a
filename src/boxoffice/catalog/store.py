"""Catalog's queries (the tables are in ``tables``): each reads or writes domain types, never rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Row,
    Table,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.catalog.domain import EventDetails, EventPlan, EventRecord, SeatRecord, SectionRecord, Station, Venue
from boxoffice.catalog.tables import (
    coach_seats,
    coaches,
    events,
    runs,
    seats,
    sections,
    stations,
    train_classes,
    train_stops,
    trains,
    venues,
)
from boxoffice.catalog.timetable import Coach, FareRule, Run, Stop, TrainClass, TrainLayout


async def _insert(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """One executemany per table: seeding thousands of seats stays one round trip per table."""
    if rows:
        await conn.execute(insert(table), list(rows))


async def take_seed_lock(conn: AsyncConnection, key: int) -> None:
    """Serialize seeders: on PostgreSQL an advisory lock to the end of the transaction; SQLite's
    ``BEGIN IMMEDIATE`` already holds the database's write lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


# Events.
async def count_events(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def ensure_venue(
    conn: AsyncConnection, new_id: str, name: str, city: str, *, timezone: str | None, address: str | None
) -> Venue:
    """The venue (name, city), made if it is new; two writers naming it at once get one venue. A zone or an
    address given (not None) replaces the venue's: the latest event published there knows best."""
    upsert = postgresql.insert(venues) if conn.dialect.name == "postgresql" else sqlite.insert(venues)
    values = {"id": new_id, "name": name, "city": city, "timezone": timezone or "UTC", "address": address}
    await conn.execute(upsert.values(values).on_conflict_do_nothing())
    where = and_(venues.c.name == name, venues.c.city == city)
    changes = {k: v for k, v in (("timezone", timezone), ("address", address)) if v is not None}
    if changes:
        await conn.execute(update(venues).where(where).values(changes))
    row = (await conn.execute(select(venues.c.id, venues.c.timezone, venues.c.address).where(where))).one()
    return Venue(row.id, row.timezone, row.address)


async def insert_event(conn: AsyncConnection, plan: EventPlan, *, venue_id: str, now: datetime) -> None:
    d = plan.draft
    await _insert(conn, events, [dict(
        id=plan.id, name=d.name, category=d.category, venue_id=venue_id, starts_at=d.starts_at, currency=d.currency,
        seating=d.seating, price_from=plan.price_from, capacity=plan.capacity, created_at=now,
        on_sale_at=d.queue.on_sale_at if d.queue else None,
        admit_per_minute=d.queue.admit_per_minute if d.queue else None,
        description=d.details.description, image_url=d.details.image_url, doors_at=d.details.doors_at,
        venue_address=d.details.venue_address)])
    await _insert(conn, sections, [
        dict(id=s.id, event_id=plan.id, position=i, name=s.name, price=s.price, capacity=s.capacity)
        for i, s in enumerate(plan.sections)])
    await _insert(conn, seats, [
        dict(id=t.id, event_id=plan.id, section_id=s.id, position=i, row=t.row, number=t.number, label=t.label,
             price=t.price)
        for i, (s, t) in enumerate((s, t) for s in plan.sections for t in s.seats)])


_EVENT_COLUMNS = (
    *events.c,
    venues.c.name.label("venue"),
    venues.c.city.label("city"),
    venues.c.timezone.label("timezone"),
    venues.c.address.label("address"),
)
# What ``q`` searches: the name (often the artist's), the venue, its city and address, and the description
# (line-ups and artists are named there).
SEARCHED = (
    events.c.name, venues.c.name, venues.c.city, events.c.venue_address, venues.c.address, events.c.description
)


def _event(row: Row[Any]) -> EventRecord:
    return EventRecord(
        id=row.id, name=row.name, category=row.category, venue=row.venue, city=row.city, starts_at=row.starts_at,
        seating=row.seating, currency=row.currency, price_from=row.price_from, capacity=row.capacity,
        on_sale_at=row.on_sale_at, admit_per_minute=row.admit_per_minute, timezone=row.timezone,
        address=row.address,
        details=EventDetails(description=row.description, image_url=row.image_url, doors_at=row.doors_at,
                             venue_address=row.venue_address),
    )


async def event_by_id(conn: AsyncConnection, event_id: str) -> EventRecord | None:
    query = select(*_EVENT_COLUMNS).join(venues, venues.c.id == events.c.venue_id).where(events.c.id == event_id)
    row = (await conn.execute(query)).first()
    return _event(row) if row is not None else None


async def list_events(
    conn: AsyncConnection,
    *,
    category: str | None,
    q: str | None,
    starts_after: datetime,
    starts_before: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[EventRecord]:
    """Events by (starts_at, id), after the cursor position ``after``."""
    query = select(*_EVENT_COLUMNS).join(venues, venues.c.id == events.c.venue_id)
    conditions = [events.c.starts_at >= starts_after]
    if category:
        conditions.append(events.c.category == category)
    if starts_before is not None:
        conditions.append(events.c.starts_at < starts_before)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(*(column.ilike(pattern, escape="\\") for column in SEARCHED))
        )
    if after is not None:
        at, last_id = after
        conditions.append(or_(events.c.starts_at > at, and_(events.c.starts_at == at, events.c.id > last_id)))
    query = query.where(and_(*conditions)).order_by(events.c.starts_at, events.c.id).limit(limit)
    return [_event(row) for row in await conn.execute(query)]


async def sections_of(conn: AsyncConnection, event_id: str) -> list[SectionRecord]:
    query = select(sections).where(sections.c.event_id == event_id).order_by(sections.c.position)
    return [SectionRecord(id=s.id, name=s.name, price=s.price, capacity=s.capacity) for s in await conn.execute(query)]


async def seats_of(conn: AsyncConnection, event_id: str) -> list[SeatRecord]:
    query = select(seats).where(seats.c.event_id == event_id).order_by(seats.c.position)
    return [
        SeatRecord(id=t.id, section_id=t.section_id, row=t.row, number=t.number, label=t.label, price=t.price)
        for t in await conn.execute(query)
    ]


# Stations and trains.
async def insert_stations(conn: AsyncConnection, new: Sequence[Station]) -> None:
    await _insert(conn, stations, [dict(code=s.code, name=s.name, city=s.city, timezone=s.timezone) for s in new])


async def all_stations(conn: AsyncConnection) -> list[Station]:
    query = select(stations).order_by(stations.c.code)
    return [Station(code=r.code, name=r.name, city=r.city, timezone=r.timezone) for r in await conn.execute(query)]


async def stations_by_code(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, Station]:
    query = select(stations).where(stations.c.code.in_(list(codes)))
    return {r.code: Station(r.code, r.name, r.city, r.timezone) for r in await conn.execute(query)}


async def station_codes(conn: AsyncConnection, codes: Sequence[str]) -> set[str]:
    rows = await conn.execute(select(stations.c.code).where(stations.c.code.in_(list(codes))))
    return {code for (code,) in rows}


async def train_id_by_number(conn: AsyncConnection, number: str) -> str | None:
    found: str | None = (await conn.execute(select(trains.c.id).where(trains.c.number == number))).scalar_one_or_none()
    return found


async def count_trains(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(trains))).scalar_one())


async def insert_train(conn: AsyncConnection, layout: TrainLayout, *, now: datetime) -> None:
    await _insert(conn, trains, [dict(
        id=layout.id, number=layout.number, name=layout.name, currency=layout.currency,
        departure_minute=layout.departure_minute, created_at=now)])
    await _insert(conn, train_stops, [dict(
        train_id=layout.id, position=i, station=s.station, arrival_minutes=s.arrival_minutes,
        departure_minutes=s.departure_minutes, distance_km=s.distance_km) for i, s in enumerate(layout.stops)])
    await _insert(conn, train_classes, [dict(
        train_id=layout.id, code=c.code, position=i, name=c.name, base_fare=c.rule.base, per_km_fare=c.rule.per_km)
        for i, c in enumerate(layout.classes)])
    placed = [(c.code, coach) for c in layout.classes for coach in c.coaches]
    await _insert(conn, coaches, [dict(
        id=coach.id, train_id=layout.id, class_code=code, position=i, label=coach.label)
        for i, (code, coach) in enumerate(placed)])
    await _insert(conn, coach_seats, [dict(
        id=seat_id, train_id=layout.id, coach_id=coach.id, number=n, label=label)
        for _, coach in placed for n, (seat_id, label) in enumerate(coach.seats, start=1)])


async def train_layout(conn: AsyncConnection, train_id: str) -> TrainLayout | None:
    """A train with its route, classes, coaches and seats, in their order."""
    train = (await conn.execute(select(trains).where(trains.c.id == train_id))).first()
    if train is None:
        return None
    stop_rows = await conn.execute(
        select(train_stops).where(train_stops.c.train_id == train_id).order_by(train_stops.c.position)
    )
    class_rows = await conn.execute(
        select(train_classes).where(train_classes.c.train_id == train_id).order_by(train_classes.c.position)
    )
    coach_rows = list(
        await conn.execute(select(coaches).where(coaches.c.train_id == train_id).order_by(coaches.c.position))
    )
    seats_by_coach: dict[str, list[tuple[str, str]]] = {c.id: [] for c in coach_rows}
    seat_rows = await conn.execute(
        select(coach_seats.c.coach_id, coach_seats.c.id, coach_seats.c.label)
        .where(coach_seats.c.train_id == train_id)
        .order_by(coach_seats.c.coach_id, coach_seats.c.number)
    )
    for coach_id, seat_id, label in seat_rows:
        seats_by_coach[coach_id].append((seat_id, label))
    classes = [
        TrainClass(
            c.code,
            c.name,
            FareRule(c.base_fare, c.per_km_fare),
            tuple(Coach(k.id, k.label, tuple(seats_by_coach[k.id])) for k in coach_rows if k.class_code == c.code),
        )
        for c in class_rows
    ]
    stops = [Stop(s.station, s.arrival_minutes, s.departure_minutes, s.distance_km) for s in stop_rows]
    return TrainLayout(
        train.id, train.number, train.name, train.currency, train.departure_minute, tuple(stops), tuple(classes)
    )


async def trains_stopping_at(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{train_id: {station: position}}`` for the trains that stop at any of ``codes``."""
    query = select(train_stops.c.train_id, train_stops.c.station, train_stops.c.position).where(
        train_stops.c.station.in_(list(codes))
    )
    found: dict[str, dict[str, int]] = {}
    for train_id, station, position in await conn.execute(query):
        found.setdefault(train_id, {})[station] = position
    return found


async def insert_runs(conn: AsyncConnection, new: Sequence[Run], *, now: datetime) -> None:
    await _insert(conn, runs, [
        dict(id=r.id, train_id=r.train_id, run_date=r.run_date, departs_at=r.departs_at, created_at=now) for r in new])


def _run(row: Row[Any]) -> Run:
    return Run(id=row.id, train_id=row.train_id, run_date=row.run_date, departs_at=row.departs_at,
               on_sale_at=row.on_sale_at, admit_per_minute=row.admit_per_minute)


async def queue_run(conn: AsyncConnection, run_id: str, on_sale_at: datetime, admit_per_minute: int | None) -> None:
    await conn.execute(
        update(runs).where(runs.c.id == run_id).values(on_sale_at=on_sale_at, admit_per_minute=admit_per_minute)
    )


async def run_by_id(conn: AsyncConnection, run_id: str) -> Run | None:
    row = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
    return _run(row) if row is not None else None


async def runs_between(conn: AsyncConnection, train_ids: Sequence[str], first: date, last: date) -> list[Run]:
    query = (
        select(runs)
        .where(and_(runs.c.train_id.in_(list(train_ids)), runs.c.run_date >= first, runs.c.run_date <= last))
        .order_by(runs.c.departs_at, runs.c.id)
    )
    return [_run(row) for row in await conn.execute(query)]


async def runs_dated(conn: AsyncConnection, first: date, last: date) -> list[Run]:
    """Every train's runs dated ``first`` to ``last``, by departure."""
    query = select(runs).where(and_(runs.c.run_date >= first, runs.c.run_date <= last))
    return [_run(row) for row in await conn.execute(query.order_by(runs.c.departs_at, runs.c.id))]


async def run_dates_of(conn: AsyncConnection, train_id: str, dates: Sequence[date]) -> set[date]:
    query = select(runs.c.run_date).where(and_(runs.c.train_id == train_id, runs.c.run_date.in_(list(dates))))
    return {d for (d,) in await conn.execute(query)}
