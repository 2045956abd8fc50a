"""Catalog's use cases: publish events, stations, trains and runs; list, search and show them.

Writes check outside the transaction what needs no data (seat maps, routes), write rows and the
``catalog.*`` event in one unit of work (the outbox), and empty the read cache after commit. Reads go
through the read cache for what catalog owns and ask booking for availability on every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from boxoffice.catalog import domain, store, timetable
from boxoffice.catalog.availability import FULL, Counts
from boxoffice.catalog.domain import EventDraft, EventPlan
from boxoffice.catalog.timetable import TrainLayout
from boxoffice.catalog.views import (
    EventOut,
    EventPageOut,
    EventSummaryOut,
    RunOut,
    RunPageOut,
    RunSummaryOut,
    StationOut,
    StationPageOut,
    TrainOptionOut,
    TrainOptionPageOut,
    TrainOut,
    event_view,
    run_view,
    summary_view,
    train_option,
    train_view,
)
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork

if TYPE_CHECKING:
    from boxoffice.catalog.service import CatalogService

EVENTS_TOPIC = "catalog.events"
RUNS_TOPIC = "catalog.runs"
EVENT_PUBLISHED = "catalog.event-published"
RUN_PUBLISHED = "catalog.run-published"


# Writes, usable inside a caller's unit of work (the demo seed writes everything in one).
async def add_event(uow: UnitOfWork, plan: EventPlan, *, now: datetime) -> None:
    d = plan.draft
    venue_id = await store.ensure_venue(uow.conn, uuid7(), d.venue, d.city)
    await store.insert_rows(
        uow.conn,
        store.events,
        [
            dict(id=plan.id, name=d.name, category=d.category, venue_id=venue_id, starts_at=d.starts_at,
                 currency=d.currency, seating=d.seating, price_from=plan.price_from, capacity=plan.capacity,
                 created_at=now)
        ],
    )
    await store.insert_rows(
        uow.conn,
        store.sections,
        [dict(id=s.id, event_id=plan.id, position=i, name=s.name, price=s.price, capacity=s.capacity)
         for i, s in enumerate(plan.sections)],
    )
    await store.insert_rows(
        uow.conn,
        store.seats,
        [dict(id=t.id, event_id=plan.id, section_id=s.id, position=i, row=t.row, number=t.number, label=t.label,
              price=t.price)
         for i, (s, t) in enumerate((s, t) for s in plan.sections for t in s.seats)],
    )
    uow.publish(EVENTS_TOPIC, EVENT_PUBLISHED, key=plan.id, data=domain.event_published(plan))


async def add_train(uow: UnitOfWork, layout: TrainLayout, *, now: datetime) -> None:
    conn = uow.conn
    await store.insert_rows(conn, store.trains, [dict(
        id=layout.id, number=layout.number, name=layout.name, currency=layout.currency,
        departure_minute=layout.departure_minute, created_at=now)])
    await store.insert_rows(conn, store.train_stops, [dict(
        train_id=layout.id, position=i, station=s.station, arrival_minutes=s.arrival_minutes,
        departure_minutes=s.departure_minutes, distance_km=s.distance_km) for i, s in enumerate(layout.stops)])
    await store.insert_rows(conn, store.train_classes, [dict(
        train_id=layout.id, code=c.code, position=i, name=c.name, base_fare=c.rule.base, per_km_fare=c.rule.per_km)
        for i, c in enumerate(layout.classes)])
    coaches = [(c.code, coach) for c in layout.classes for coach in c.coaches]
    await store.insert_rows(conn, store.coaches, [dict(
        id=coach.id, train_id=layout.id, class_code=code, position=i, label=coach.label)
        for i, (code, coach) in enumerate(coaches)])
    await store.insert_rows(conn, store.coach_seats, [dict(
        id=seat_id, train_id=layout.id, coach_id=coach.id, number=n, label=label)
        for _, coach in coaches for n, (seat_id, label) in enumerate(coach.seats, start=1)])


async def add_runs(uow: UnitOfWork, layout: TrainLayout, dates: Sequence[date], *, now: datetime) -> int:
    """Runs of ``layout`` on ``dates`` (the caller leaves out dates that have one), each announced."""
    planned = [(uuid7(), d) for d in dates]
    await store.insert_rows(uow.conn, store.runs, [dict(
        id=run_id, train_id=layout.id, run_date=d, departs_at=timetable.run_departure(d, layout.departure_minute),
        created_at=now) for run_id, d in planned])
    for run_id, d in planned:
        uow.publish(RUNS_TOPIC, RUN_PUBLISHED, key=run_id, data=timetable.run_published(layout, run_id, d))
    return len(planned)


# Events.
async def create_event(svc: CatalogService, draft: EventDraft) -> EventOut:
    domain.check_event_draft(draft, now=svc.now())
    plan = domain.plan_event(draft, uuid7)
    async with svc.db.uow() as uow:
        await add_event(uow, plan, now=svc.now())
        await uow.commit()
    svc.cache.invalidate()
    return await get_event(svc, plan.id)


async def get_event(svc: CatalogService, event_id: str) -> EventOut:
    async def load() -> EventOut:
        async with svc.db.read() as conn:
            row = await store.event_by_id(conn, event_id)
            if row is None:
                raise domain.EventNotFound(f"There is no event {event_id}.")
            return event_view(row, await store.sections_of(conn, event_id), await store.seats_of(conn, event_id))

    view = await svc.cache.get(("event", event_id), load)
    counts = (await svc.availability.events([event_id])).get(event_id, FULL)
    return _event_with(view, counts)


async def list_events(
    svc: CatalogService,
    *,
    category: str | None = None,
    q: str | None = None,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> EventPageOut:
    """Upcoming events by start time; ``starts_after`` defaults to now (to the minute, so pages cache)."""
    after = domain.decode_cursor(cursor) if cursor else None
    since = starts_after or svc.now().replace(second=0, microsecond=0)
    key = ("events", category, q, since, starts_before, after, limit)

    async def load() -> EventPageOut:
        async with svc.db.read() as conn:
            rows = await store.list_events(conn, category=category, q=q, starts_after=since,
                                           starts_before=starts_before, after=after, limit=limit + 1)
        items = [summary_view(row) for row in rows[:limit]]
        more = len(rows) > limit
        return EventPageOut(items=items, next_cursor=domain.encode_cursor(items[-1].starts_at, items[-1].id)
                            if more else None)

    page = await svc.cache.get(key, load)
    counts = await svc.availability.events([item.id for item in page.items])
    items = [_summary_with(item, counts.get(item.id, FULL)) for item in page.items]
    return page.model_copy(update={"items": items})


def _summary_with(item: EventSummaryOut, counts: Counts) -> EventSummaryOut:
    if counts.available is None:
        return item.model_copy(update={"availability_stale": True}) if counts.stale else item
    return item.model_copy(update={"available": max(0, counts.available), "availability_stale": counts.stale})


def _event_with(view: EventOut, counts: Counts) -> EventOut:
    if counts is FULL:
        return view
    sections = [s.model_copy(update={"available": counts.part(s.id, s.capacity)}) for s in view.sections]
    seats = [t.model_copy(update={"status": counts.seat(t.id)}) if t.id in counts.seats else t for t in view.seats]
    available = counts.available if counts.available is not None else sum(s.available for s in sections)
    return view.model_copy(update={"sections": sections, "seats": seats, "available": max(0, available),
                                   "availability_stale": counts.stale})


# Stations.
async def create_station(svc: CatalogService, *, code: str, name: str, city: str) -> StationOut:
    try:
        async with svc.db.uow() as uow:
            if await store.station_codes(uow.conn, [code]):
                raise domain.StationExists(f"Station {code} already exists.")
            await store.insert_rows(uow.conn, store.stations, [dict(code=code, name=name, city=city)])
            await uow.commit()
    except IntegrityError:
        raise domain.StationExists(f"Station {code} already exists.") from None
    svc.cache.invalidate()
    return StationOut(code=code, name=name, city=city)


async def list_stations(svc: CatalogService) -> StationPageOut:
    stations = await _stations(svc)
    return StationPageOut(items=list(stations.values()))


async def _stations(svc: CatalogService) -> dict[str, StationOut]:
    async def load() -> dict[str, StationOut]:
        async with svc.db.read() as conn:
            rows = await store.all_stations(conn)
        return {r.code: StationOut(code=r.code, name=r.name, city=r.city) for r in rows}

    return await svc.cache.get("stations", load)


# Trains and runs.
async def create_train(svc: CatalogService, layout: TrainLayout) -> TrainOut:
    timetable.check_layout(layout)
    try:
        async with svc.db.uow() as uow:
            unknown = set(layout.stations) - await store.station_codes(uow.conn, layout.stations)
            if unknown:
                raise domain.InvalidRoute(f"Unknown stations on the route: {', '.join(sorted(unknown))}.")
            if await store.train_id_by_number(uow.conn, layout.number) is not None:
                raise domain.TrainExists(f"Train {layout.number} already exists.")
            await add_train(uow, layout, now=svc.now())
            await uow.commit()
    except IntegrityError:
        raise domain.TrainExists(f"Train {layout.number} already exists.") from None
    svc.cache.invalidate()
    return train_view(layout)


async def publish_runs(svc: CatalogService, train_id: str, first: date, last: date) -> RunPageOut:
    """Runs of a train on each date from ``first`` to ``last``; dates that already have one keep it."""
    dates = timetable.run_dates(first, last, today=svc.now().date())
    try:
        async with svc.db.uow() as uow:
            layout = await store.train_layout(uow.conn, train_id)
            if layout is None:
                raise domain.TrainNotFound(f"There is no train {train_id}.")
            existing = await store.run_dates_of(uow.conn, train_id, dates)
            await add_runs(uow, layout, [d for d in dates if d not in existing], now=svc.now())
            await uow.commit()
    except IntegrityError:
        raise domain.RunsBusy("Runs of this train are being published at this moment; try again.") from None
    svc.cache.invalidate()
    async with svc.db.read() as conn:
        rows = await store.runs_between(conn, [train_id], first, last)
    arrives_after = timedelta(minutes=layout.stops[-1].arrival_minutes or 0)
    items = [RunSummaryOut(run_id=r.id, date=r.run_date, departs_at=r.departs_at,
                           arrives_at=r.departs_at + arrives_after) for r in rows]
    return RunPageOut(items=items)


async def _layout(svc: CatalogService, train_id: str) -> TrainLayout | None:
    async def load() -> TrainLayout | None:
        async with svc.db.read() as conn:
            return await store.train_layout(conn, train_id)

    return await svc.cache.get(("train", train_id), load)


async def get_train(svc: CatalogService, train_id: str) -> TrainOut:
    layout = await _layout(svc, train_id)
    if layout is None:
        raise domain.TrainNotFound(f"There is no train {train_id}.")
    return train_view(layout)


async def search_trains(svc: CatalogService, *, origin: str, destination: str, day: date) -> TrainOptionPageOut:
    """Runs that leave ``origin`` on ``day`` (UTC) and reach ``destination`` later on the same run."""
    stations = await _stations(svc)
    for code in (origin, destination):
        if code not in stations:
            raise domain.UnknownStation(f"There is no station {code}.")
    if origin == destination:
        raise domain.InvalidSegment("Origin and destination must differ.")

    async def load() -> list[TrainOptionOut]:
        async with svc.db.read() as conn:
            stopping = await store.trains_stopping_at(conn, [origin, destination])
        # Only trains that stop at both, origin first: a train going the other way carries nobody there.
        train_ids = [t for t, at in stopping.items() if len(at) == 2 and at[origin] < at[destination]]
        layouts = {t: layout for t in train_ids if (layout := await _layout(svc, t)) is not None}
        if not layouts:
            return []
        back = max(timetable.max_days_to_reach(layout) for layout in layouts.values())
        async with svc.db.read() as conn:
            runs = await store.runs_between(conn, list(layouts), day - timedelta(days=back), day)
        options = [train_option(layouts[r.train_id], r, origin, destination) for r in runs]
        return sorted((o for o in options if o.departs_at.date() == day), key=lambda o: (o.departs_at, o.run_id))

    options = await svc.cache.get(("search", origin, destination, day), load)
    counts = await svc.availability.runs([o.run_id for o in options], origin=origin, destination=destination)
    items = []
    for option in options:
        found = counts.get(option.run_id, FULL)
        classes = [c.model_copy(update={"available": found.part(c.code, c.available)}) for c in option.classes]
        items.append(option.model_copy(update={"classes": classes}))
    return TrainOptionPageOut(items=items)


async def get_run(svc: CatalogService, run_id: str, *, origin: str | None, destination: str | None) -> RunOut:
    async def load() -> RunOut:
        async with svc.db.read() as conn:
            run = await store.run_by_id(conn, run_id)
        layout = await _layout(svc, run.train_id) if run is not None else None
        if run is None or layout is None:
            raise domain.RunNotFound(f"There is no train run {run_id}.")
        stations = layout.stations
        start, end = timetable.segment(stations, origin or stations[0], destination or stations[-1])
        return run_view(layout, run, start, end)

    view = await svc.cache.get(("run", run_id, origin, destination), load)
    answer = await svc.availability.runs([run_id], origin=view.origin, destination=view.destination)
    counts = answer.get(run_id, FULL)
    if counts is FULL:
        return view
    classes = []
    for c in view.classes:
        coaches = [coach.model_copy(update={"seats": [
            s.model_copy(update={"status": counts.seat(s.id)}) if s.id in counts.seats else s for s in coach.seats
        ]}) for coach in c.coaches]
        classes.append(c.model_copy(update={"available": counts.part(c.code, c.available), "coaches": coaches}))
    return view.model_copy(update={"classes": classes})
