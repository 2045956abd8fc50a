"""Catalog's use cases: publish events, stations, trains and runs; list, search and show them.

Writes check outside the transaction what needs no data (seat maps, routes), write rows and the
``catalog.*`` event in one unit of work (the outbox), and empty the read cache after commit. Reads go
through the read cache for what catalog owns and ask booking for availability on every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from boxoffice.catalog import domain, store, timetable
from boxoffice.catalog.availability import FULL, Counts
from boxoffice.catalog.deps import CatalogDeps
from boxoffice.catalog.domain import EventDraft, EventPlan, EventQuery, QueueDraft, Station
from boxoffice.catalog.timetable import Run, TrainLayout
from boxoffice.catalog.views import (
    EventOut,
    EventPageOut,
    EventSummaryOut,
    RunDepartureOut,
    RunDeparturePageOut,
    RunOut,
    RunPageOut,
    RunSummaryOut,
    StationOut,
    StationPageOut,
    TrainOptionOut,
    TrainOptionPageOut,
    TrainOut,
    event_view,
    run_departure,
    run_view,
    station_view,
    summary_view,
    train_option,
    train_view,
)
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork

EVENTS_TOPIC = "catalog.events"
RUNS_TOPIC = "catalog.runs"
EVENT_PUBLISHED = "catalog.event-published"
RUN_PUBLISHED = "catalog.run-published"


# Writes, usable inside a caller's unit of work (the demo seed writes everything in one).
async def add_event(uow: UnitOfWork, plan: EventPlan, *, now: datetime) -> None:
    d = plan.draft
    venue = await store.ensure_venue(uow.conn, uuid7(), d.venue, d.city, timezone=d.timezone, address=d.address)
    plan = replace(plan, draft=replace(d, timezone=venue.timezone, address=venue.address))
    await store.insert_event(uow.conn, plan, venue_id=venue.id, now=now)
    uow.publish(EVENTS_TOPIC, EVENT_PUBLISHED, key=plan.id, data=domain.event_published(plan))


async def add_train(uow: UnitOfWork, layout: TrainLayout, *, now: datetime) -> None:
    await store.insert_train(uow.conn, layout, now=now)


async def add_runs(uow: UnitOfWork, layout: TrainLayout, dates: Sequence[date], *, now: datetime) -> int:
    """Runs of ``layout`` on ``dates`` (the caller leaves out dates that have one), each announced."""
    planned = [Run(uuid7(), layout.id, d, timetable.run_departure(d, layout.departure_minute)) for d in dates]
    await store.insert_runs(uow.conn, planned, now=now)
    stations = await store.stations_by_code(uow.conn, layout.stations) if planned else {}
    for run in planned:
        data = timetable.run_published(layout, run.id, run.run_date, stations)
        uow.publish(RUNS_TOPIC, RUN_PUBLISHED, key=run.id, data=data)
    return len(planned)


# Events.
async def create_event(deps: CatalogDeps, draft: EventDraft) -> EventOut:
    domain.check_event_draft(draft, now=deps.now())
    plan = domain.plan_event(draft, uuid7)
    async with deps.db.uow() as uow:
        await add_event(uow, plan, now=deps.now())
        await uow.commit()
    deps.cache.invalidate()
    return await get_event(deps, plan.id)


async def get_event(deps: CatalogDeps, event_id: str) -> EventOut:
    async def load() -> EventOut:
        async with deps.db.read() as conn:
            row = await store.event_by_id(conn, event_id)
            if row is None:
                raise domain.EventNotFound(f"There is no event {event_id}.")
            return event_view(row, await store.sections_of(conn, event_id), await store.seats_of(conn, event_id))

    view = await deps.cache.get(("event", event_id), load)
    counts = (await deps.availability.events([event_id])).get(event_id, FULL)
    return _event_with(view, counts)


async def list_events(deps: CatalogDeps, query: EventQuery) -> EventPageOut:
    """Upcoming events by start time; ``starts_after`` defaults to now (to the minute, so pages cache)."""
    category, q, starts_before, limit = query.category, query.q, query.starts_before, query.limit
    after = domain.decode_cursor(query.cursor) if query.cursor else None
    since = query.starts_after or deps.now().replace(second=0, microsecond=0)
    key = ("events", category, q, since, starts_before, after, limit)

    async def load() -> EventPageOut:
        async with deps.db.read() as conn:
            rows = await store.list_events(conn, category=category, q=q, starts_after=since,
                                           starts_before=starts_before, after=after, limit=limit + 1)
        items = [summary_view(row) for row in rows[:limit]]
        more = len(rows) > limit
        return EventPageOut(items=items, next_cursor=domain.encode_cursor(items[-1].starts_at, items[-1].id)
                            if more else None)

    page = await deps.cache.get(key, load)
    counts = await deps.availability.events([item.id for item in page.items])
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
async def create_station(deps: CatalogDeps, station: Station) -> StationOut:
    code = station.code
    domain.check_timezone(station.timezone)
    try:
        async with deps.db.uow() as uow:
            if await store.station_codes(uow.conn, [code]):
                raise domain.StationExists(f"Station {code} already exists.")
            await store.insert_stations(uow.conn, [station])
            await uow.commit()
    except IntegrityError:
        raise domain.StationExists(f"Station {code} already exists.") from None
    deps.cache.invalidate()
    return station_view(station)


async def list_stations(deps: CatalogDeps) -> StationPageOut:
    stations = await _stations(deps)
    return StationPageOut(items=list(stations.values()))


async def _stations(deps: CatalogDeps) -> dict[str, StationOut]:
    async def load() -> dict[str, StationOut]:
        async with deps.db.read() as conn:
            rows = await store.all_stations(conn)
        return {r.code: station_view(r) for r in rows}

    return await deps.cache.get("stations", load)


# Trains and runs.
async def create_train(deps: CatalogDeps, layout: TrainLayout) -> TrainOut:
    timetable.check_layout(layout)
    try:
        async with deps.db.uow() as uow:
            unknown = set(layout.stations) - await store.station_codes(uow.conn, layout.stations)
            if unknown:
                raise domain.InvalidRoute(f"Unknown stations on the route: {', '.join(sorted(unknown))}.")
            if await store.train_id_by_number(uow.conn, layout.number) is not None:
                raise domain.TrainExists(f"Train {layout.number} already exists.")
            await add_train(uow, layout, now=deps.now())
            await uow.commit()
    except IntegrityError:
        raise domain.TrainExists(f"Train {layout.number} already exists.") from None
    deps.cache.invalidate()
    return train_view(layout)


async def publish_runs(deps: CatalogDeps, train_id: str, first: date, last: date) -> RunPageOut:
    """Runs of a train on each date from ``first`` to ``last``; dates that already have one keep it."""
    dates = timetable.run_dates(first, last, today=deps.now().date())
    try:
        async with deps.db.uow() as uow:
            layout = await store.train_layout(uow.conn, train_id)
            if layout is None:
                raise domain.TrainNotFound(f"There is no train {train_id}.")
            existing = await store.run_dates_of(uow.conn, train_id, dates)
            await add_runs(uow, layout, [d for d in dates if d not in existing], now=deps.now())
            await uow.commit()
    except IntegrityError:
        raise domain.RunsBusy("Runs of this train are being published at this moment; try again.") from None
    deps.cache.invalidate()
    async with deps.db.read() as conn:
        rows = await store.runs_between(conn, [train_id], first, last)
    arrives_after = timedelta(minutes=layout.stops[-1].arrival_minutes or 0)
    items = [RunSummaryOut(run_id=r.id, date=r.run_date, departs_at=r.departs_at,
                           arrives_at=r.departs_at + arrives_after) for r in rows]
    return RunPageOut(items=items)


async def _layout(deps: CatalogDeps, train_id: str) -> TrainLayout | None:
    async def load() -> TrainLayout | None:
        async with deps.db.read() as conn:
            return await store.train_layout(conn, train_id)

    return await deps.cache.get(("train", train_id), load)


async def get_train(deps: CatalogDeps, train_id: str) -> TrainOut:
    layout = await _layout(deps, train_id)
    if layout is None:
        raise domain.TrainNotFound(f"There is no train {train_id}.")
    return train_view(layout)


async def search_trains(deps: CatalogDeps, *, origin: str, destination: str, day: date) -> TrainOptionPageOut:
    """Runs that leave ``origin`` on ``day`` (UTC) and reach ``destination`` later on the same run."""
    stations = await _stations(deps)
    for code in (origin, destination):
        if code not in stations:
            raise domain.UnknownStation(f"There is no station {code}.")
    if origin == destination:
        raise domain.InvalidSegment("Origin and destination must differ.")

    async def load() -> list[TrainOptionOut]:
        async with deps.db.read() as conn:
            stopping = await store.trains_stopping_at(conn, [origin, destination])
        # Only trains that stop at both, origin first: a train going the other way carries nobody there.
        train_ids = [t for t, at in stopping.items() if len(at) == 2 and at[origin] < at[destination]]
        layouts = {t: layout for t in train_ids if (layout := await _layout(deps, t)) is not None}
        if not layouts:
            return []
        back = max(timetable.max_days_to_reach(layout) for layout in layouts.values())
        async with deps.db.read() as conn:
            runs = await store.runs_between(conn, list(layouts), day - timedelta(days=back), day)
        options = [train_option(layouts[r.train_id], r, origin, destination, stations) for r in runs]
        return sorted((o for o in options if o.departs_at.date() == day), key=lambda o: (o.departs_at, o.run_id))

    options = await deps.cache.get(("search", origin, destination, day), load)
    counts = await deps.availability.runs([o.run_id for o in options], origin=origin, destination=destination)
    items = []
    for option in options:
        found = counts.get(option.run_id, FULL)
        classes = [c.model_copy(update={"available": found.part(c.code, c.available)}) for c in option.classes]
        items.append(option.model_copy(update={"classes": classes}))
    return TrainOptionPageOut(items=items)


async def runs_departing(deps: CatalogDeps, day: date) -> RunDeparturePageOut:
    """Every run that leaves its first station on ``day`` (UTC), first station to last, by departure."""

    async def load() -> list[RunDepartureOut]:
        async with deps.db.read() as conn:
            # A run's date is its departure's date where it starts: a day either side covers every zone.
            runs = await store.runs_dated(conn, day - timedelta(days=1), day + timedelta(days=1))
        stations = await _stations(deps)
        found = []
        for run in runs:
            layout = await _layout(deps, run.train_id)
            if layout is not None and run.departs_at.date() == day:
                found.append(run_departure(layout, run, stations))
        return found

    return RunDeparturePageOut(items=await deps.cache.get(("departures", day), load))


async def queue_run(deps: CatalogDeps, run_id: str, queue: QueueDraft) -> RunOut:
    """Queue a run's booking day: the waiting room opens a line at ``on_sale_at`` and booking then sells the
    run only to buyers it admitted. The run is published again, with its ``queue``."""
    async with deps.db.uow() as uow:
        run = await store.run_by_id(uow.conn, run_id)
        layout = await store.train_layout(uow.conn, run.train_id) if run is not None else None
        if run is None or layout is None:
            raise domain.RunNotFound(f"There is no train run {run_id}.")
        timetable.check_queue(run, queue.on_sale_at, now=deps.now())
        await store.queue_run(uow.conn, run_id, queue.on_sale_at, queue.admit_per_minute)
        stations = await store.stations_by_code(uow.conn, layout.stations)
        data = timetable.run_published(
            layout, run.id, run.run_date, stations, on_sale_at=queue.on_sale_at,
            admit_per_minute=queue.admit_per_minute,
        )
        uow.publish(RUNS_TOPIC, RUN_PUBLISHED, key=run.id, data=data)
        await uow.commit()
    deps.cache.invalidate()
    return await get_run(deps, run_id, origin=None, destination=None)


async def get_run(deps: CatalogDeps, run_id: str, *, origin: str | None, destination: str | None) -> RunOut:
    async def load() -> RunOut:
        async with deps.db.read() as conn:
            run = await store.run_by_id(conn, run_id)
        layout = await _layout(deps, run.train_id) if run is not None else None
        if run is None or layout is None:
            raise domain.RunNotFound(f"There is no train run {run_id}.")
        codes = layout.stations
        start, end = timetable.segment(codes, origin or codes[0], destination or codes[-1])
        return run_view(layout, run, start, end, await _stations(deps))

    view = await deps.cache.get(("run", run_id, origin, destination), load)
    answer = await deps.availability.runs([run_id], origin=view.origin, destination=view.destination)
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
