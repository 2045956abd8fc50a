"""Catalog's tables and the queries on them.

Events keep ``price_from`` and ``capacity`` next to their sections so a listing is one indexed query.
Train seats belong to the train, not to a run: a seat id is the same on every run of the train, and
booking keys train inventory by ``(run_id, seat_id)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.catalog.timetable import Coach, FareRule, Stop, TrainClass, TrainLayout
from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import UtcDateTime

metadata = MetaData()

venues = Table(
    "venues",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("city", String(100), nullable=False),
    UniqueConstraint("name", "city", name="uq_venues_name_city"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(20), nullable=False),
    Column("venue_id", String(36), ForeignKey("venues.id"), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("seating", String(10), nullable=False),
    Column("price_from", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_events_starts_at_id", "starts_at", "id"),
    Index("ix_events_category_starts_at", "category", "starts_at"),
)

sections = Table(
    "sections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), ForeignKey("events.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("price", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Index("ix_sections_event_id", "event_id"),
)

seats = Table(
    "seats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), ForeignKey("events.id"), nullable=False),
    Column("section_id", String(36), ForeignKey("sections.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("row", String(10), nullable=False),
    Column("number", Integer, nullable=False),
    Column("label", String(30), nullable=False),
    Column("price", Integer, nullable=False),
    Index("ix_seats_event_id", "event_id"),
)

stations = Table(
    "stations",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("city", String(100), nullable=False),
)

trains = Table(
    "trains",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("departure_minute", Integer, nullable=False),  # UTC minute of the day the first stop is left
    Column("created_at", UtcDateTime, nullable=False),
)

train_stops = Table(
    "train_stops",
    metadata,
    Column("train_id", String(36), ForeignKey("trains.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("station", String(8), ForeignKey("stations.code"), nullable=False),
    Column("arrival_minutes", Integer, nullable=True),
    Column("departure_minutes", Integer, nullable=True),
    Column("distance_km", Integer, nullable=False),
    Index("ix_train_stops_station", "station"),
)

train_classes = Table(
    "train_classes",
    metadata,
    Column("train_id", String(36), ForeignKey("trains.id"), primary_key=True),
    Column("code", String(10), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("base_fare", Integer, nullable=False),
    Column("per_km_fare", Integer, nullable=False),
)

coaches = Table(
    "coaches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("train_id", String(36), ForeignKey("trains.id"), nullable=False),
    Column("class_code", String(10), nullable=False),
    Column("position", Integer, nullable=False),
    Column("label", String(10), nullable=False),
    UniqueConstraint("train_id", "label", name="uq_coaches_train_label"),
)

coach_seats = Table(
    "coach_seats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("train_id", String(36), ForeignKey("trains.id"), nullable=False),
    Column("coach_id", String(36), ForeignKey("coaches.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("label", String(20), nullable=False),
    Index("ix_coach_seats_train_id", "train_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("train_id", String(36), ForeignKey("trains.id"), nullable=False),
    Column("run_date", Date, nullable=False),
    Column("departs_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("train_id", "run_date", name="uq_runs_train_date"),
    Index("ix_runs_run_date", "run_date"),
)

outbox, inbox = add_messaging_tables(metadata)


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany per table: seeding thousands of seats stays one round trip per table."""
    if rows:
        await conn.execute(insert(table), list(rows))


# Events.
async def count_events(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def ensure_venue(conn: AsyncConnection, new_id: str, name: str, city: str) -> str:
    """The id of the venue (name, city), made if it is new; two writers naming it at once get one venue."""
    upsert = postgresql.insert(venues) if conn.dialect.name == "postgresql" else sqlite.insert(venues)
    await conn.execute(upsert.values(id=new_id, name=name, city=city).on_conflict_do_nothing())
    query = select(venues.c.id).where(and_(venues.c.name == name, venues.c.city == city))
    found: str = (await conn.execute(query)).scalar_one()
    return found


_EVENT_COLUMNS = (*events.c, venues.c.name.label("venue"), venues.c.city.label("city"))


async def event_by_id(conn: AsyncConnection, event_id: str) -> Any:
    query = select(*_EVENT_COLUMNS).join(venues, venues.c.id == events.c.venue_id).where(events.c.id == event_id)
    return (await conn.execute(query)).first()


async def list_events(
    conn: AsyncConnection,
    *,
    category: str | None,
    q: str | None,
    starts_after: datetime,
    starts_before: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
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
            or_(*(column.ilike(pattern, escape="\\") for column in (events.c.name, venues.c.name, venues.c.city)))
        )
    if after is not None:
        at, last_id = after
        conditions.append(or_(events.c.starts_at > at, and_(events.c.starts_at == at, events.c.id > last_id)))
    query = query.where(and_(*conditions)).order_by(events.c.starts_at, events.c.id).limit(limit)
    return list(await conn.execute(query))


async def sections_of(conn: AsyncConnection, event_id: str) -> list[Any]:
    query = select(sections).where(sections.c.event_id == event_id).order_by(sections.c.position)
    return list(await conn.execute(query))


async def seats_of(conn: AsyncConnection, event_id: str) -> list[Any]:
    return list(await conn.execute(select(seats).where(seats.c.event_id == event_id).order_by(seats.c.position)))


# Stations and trains.
async def all_stations(conn: AsyncConnection) -> list[Any]:
    return list(await conn.execute(select(stations).order_by(stations.c.code)))


async def station_codes(conn: AsyncConnection, codes: Sequence[str]) -> set[str]:
    rows = await conn.execute(select(stations.c.code).where(stations.c.code.in_(list(codes))))
    return {code for (code,) in rows}


async def train_id_by_number(conn: AsyncConnection, number: str) -> str | None:
    found: str | None = (await conn.execute(select(trains.c.id).where(trains.c.number == number))).scalar_one_or_none()
    return found


async def count_trains(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(trains))).scalar_one())


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


async def run_by_id(conn: AsyncConnection, run_id: str) -> Any:
    return (await conn.execute(select(runs).where(runs.c.id == run_id))).first()


async def runs_between(conn: AsyncConnection, train_ids: Sequence[str], first: date, last: date) -> list[Any]:
    query = (
        select(runs)
        .where(and_(runs.c.train_id.in_(list(train_ids)), runs.c.run_date >= first, runs.c.run_date <= last))
        .order_by(runs.c.departs_at, runs.c.id)
    )
    return list(await conn.execute(query))


async def run_dates_of(conn: AsyncConnection, train_id: str, dates: Sequence[date]) -> set[date]:
    query = select(runs.c.run_date).where(and_(runs.c.train_id == train_id, runs.c.run_date.in_(list(dates))))
    return {d for (d,) in await conn.execute(query)}
