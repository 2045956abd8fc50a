"""Analytics' use cases: aggregate a batch of bookings, close idle windows, learn capacities, answer reads.

``aggregate_bookings`` is the heart: one transaction per batch holds the window state, the event tallies,
the corrections, the dead letters, the published results (outbox) and the read positions, so a worker
killed at any moment resumes from its last commit with no window lost and none counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from boxoffice.analytics import domain, store
from boxoffice.analytics.deps import AnalyticsDeps
from boxoffice.analytics.domain import Batch, Booking, MalformedBooking, WindowResult
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.positioned import Partition, Positions, RawRecord
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.jsonutil import loads
from boxoffice.platform.metrics import counter
from boxoffice.platform.problems import Conflict, NotFound

log = structlog.get_logger("boxoffice.analytics")

BOOKINGS_TOPIC = "ticket-bookings"
RESULTS_TOPIC = "analytics-results"
RESULT_TYPE = "analytics.window-result"
BOOKING_TYPES = frozenset({"booking.order-confirmed", "booking.order-cancelled"})
GROUP = "analytics"
CATALOG_GROUP = "analytics.catalog"

COUNTED = counter("boxoffice_analytics_bookings_total", "Bookings counted in windows, by outcome", ("outcome",))
EMITTED = counter("boxoffice_analytics_results_total", "Window results published, first or revised", ("revision",))


class Fenced(Conflict):
    """Another member of the group moved the positions since this one loaded them."""

    slug = "fenced"


@dataclass(frozen=True, slots=True)
class BatchReport:
    records: int
    counted: int
    published: list[WindowResult]


async def load_positions(deps: AnalyticsDeps, partitions: Sequence[Partition]) -> Positions:
    """The positions the worker stored (the positioned consumer's ``load_positions``)."""
    async with deps.db.uow() as uow:
        states = await store.load_positions(uow.conn, partitions)
        await uow.commit()
    return {(s.topic, s.partition): s.next_offset for s in states}


def _parse(record: RawRecord) -> tuple[Booking | None, str | None]:
    """(the booking, None), (None, None) for an event analytics does not count, or (None, the reason).

    Only the envelope's ``type`` and ``data`` matter here, so the rest of it is not parsed (it runs for every
    booking)."""
    try:
        body = loads(record.payload)
        kind, data = body["type"], body["data"]
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"not an event envelope: {type(exc).__name__}: {exc}"
    if kind not in BOOKING_TYPES:
        return None, None
    try:
        return domain.parse_booking(data), None
    except MalformedBooking as exc:
        return None, str(exc)


async def aggregate_bookings(deps: AnalyticsDeps, records: Sequence[RawRecord], *, caught_up: bool) -> BatchReport:
    """Count one batch of ``ticket-bookings`` records and publish the windows it closes or revises.

    ``caught_up``: the batch ended at the head of the log, so the wall clock may close quiet windows too
    (never while catching up on a backlog: its windows close by their own watermark)."""
    config = deps.windowing
    parsed = [(record, *_parse(record)) for record in records]
    bookings = [b for _, b, _ in parsed if b is not None]
    now = deps.now()

    async def work(uow: UnitOfWork) -> BatchReport:
        conn = uow.conn
        partitions = sorted({(r.topic, r.partition) for r in records})
        states = {s.partition: s for s in await store.load_positions(conn, partitions)}
        for record, *_ in parsed:
            if states[record.partition].next_offset > record.offset:
                raise Fenced("these records were counted already; reading from the stored positions again")
        seen = await store.already_counted(conn, bookings)
        counted: set[tuple[str, bool]] = set()
        keys = {(b.event_id, domain.window_start(b.at, config.window)) for b in bookings}
        batch = Batch(
            config=config,
            windows=await store.load_windows(conn, keys, pending_in=states),
            tallies=await store.load_tallies(conn, {b.event_id for b in bookings}),
            capacities=await store.capacities(conn, {b.event_id for b in bookings}),
            partitions=states,
        )
        before = {key: (w.total_tickets, w.orders, w.revenue_minor, w.revision) for key, w in batch.windows.items()}
        letters: list[tuple[str, int, int, str, str]] = []
        for record, booking, reason in parsed:
            if reason is not None:
                payload = record.payload if isinstance(record.payload, str) else record.payload.decode(errors="replace")
                letters.append((record.topic, record.partition, record.offset, reason, payload))
            if booking is not None and ((key := (booking.order_id, booking.cancelled)) in seen or key in counted):
                booking = None  # published twice by a relay that crashed before deleting its outbox row
            if booking is not None:
                counted.add((booking.order_id, booking.cancelled))
            batch.apply(record.partition, record.offset, booking)
        if caught_up:
            batch.close_idle(now)
        published = batch.published
        changed = [w for key, w in batch.windows.items() if before.get(key) != _totals(w)]
        await store.save_windows(conn, changed, now)
        await store.save_tallies(conn, batch.tallies.values())
        await store.mark_counted(conn, counted)
        await store.record_corrections(conn, batch.corrections, now)
        await store.record_dead_letters(conn, letters, now)
        _publish(uow, published)
        await store.record_emissions(conn, published, now)
        if not await store.save_positions(conn, states.values()):
            raise Fenced("another member of the group moved the positions; reading from them again")
        COUNTED.labels("counted").inc(len(counted) - len(batch.corrections))
        COUNTED.labels("correction").inc(len(batch.corrections))
        COUNTED.labels("duplicate").inc(len(bookings) - len(counted))
        COUNTED.labels("dead-letter").inc(len(letters))
        for letter in letters:
            log.warning("dead letter", topic=letter[0], partition=letter[1], offset=letter[2], reason=letter[3])
        return BatchReport(len(records), len(counted), published)

    report = await deps.db.transact(work)
    _announce(deps, report.published)
    return report


def _totals(window: domain.Window) -> tuple[int, int, int, int]:
    return (window.total_tickets, window.orders, window.revenue_minor, window.revision)


def _publish(uow: UnitOfWork, results: Sequence[WindowResult]) -> None:
    for result in results:
        uow.publish(RESULTS_TOPIC, RESULT_TYPE, key=result.event_id, data=result.data())


def _announce(deps: AnalyticsDeps, results: Sequence[WindowResult]) -> None:
    for result in results:
        EMITTED.labels("first" if result.revision == 1 else "revised").inc()
    if results:
        deps.published.fire()


async def close_idle_windows(deps: AnalyticsDeps, owned: frozenset[Partition]) -> list[WindowResult]:
    """Publish the windows of a quiet stream that the wall clock closed (its end plus the watermark's bound)."""
    if not owned:
        return []
    config, now = deps.windowing, deps.now()
    cutoff = now - config.max_out_of_order
    async with deps.db.read() as conn:
        due = await store.load_windows(conn, (), pending_in=sorted({p for _, p in owned}))
    if not any(w.end <= cutoff for w in due.values()):
        return []

    async def work(uow: UnitOfWork) -> list[WindowResult]:
        pending = await store.load_windows(uow.conn, (), pending_in=sorted({p for _, p in owned}))
        published = [
            result
            for result in Batch(config, pending, {}, {}, partitions={}).close_idle(now)
            if await store.claim_first_emission(uow.conn, result, now)
        ]
        _publish(uow, published)
        await store.record_emissions(uow.conn, published, now)
        return published

    published = await deps.db.transact(work)
    _announce(deps, published)
    return published


# The catalog feed: capacities and names -------------------------------------------------------------------------


def _capacity_of_event(data: Mapping[str, object]) -> int:
    sections = data.get("sections")
    if not isinstance(sections, list):
        raise MalformedBooking("'sections' must be a list")
    return sum(int(s.get("capacity", 0)) for s in sections if isinstance(s, dict))


def _capacity_of_run(data: Mapping[str, object]) -> int:
    classes = data.get("classes")
    if not isinstance(classes, list):
        raise MalformedBooking("'classes' must be a list")
    return sum(
        len(coach.get("seats") or ())
        for c in classes
        if isinstance(c, dict)
        for coach in c.get("coaches") or ()
        if isinstance(coach, dict)
    )


async def apply_catalog_event(deps: AnalyticsDeps, envelope: Envelope) -> None:
    """``catalog.event-published`` / ``catalog.run-published``: what an event or run can sell, once each.

    For a run the capacity is its seats; a seat sold on two separate segments counts twice in ``sold``."""
    if envelope.type not in ("catalog.event-published", "catalog.run-published"):
        return
    data = envelope.data
    try:
        if envelope.type == "catalog.event-published":
            item = ("event", str(data["event_id"]), str(data["name"]), _capacity_of_event(data))
            starts = domain.parse_time(str(data["starts_at"])) if data.get("starts_at") else None
        else:
            item = ("train", str(data["run_id"]), f"{data['train_number']} {data['name']}", _capacity_of_run(data))
            starts = _run_departure(data)
        currency = str(data["currency"])
    except (KeyError, ValueError, TypeError, MalformedBooking) as exc:
        log.warning("catalog event not understood; skipped", event_id=envelope.id, error=repr(exc))
        return
    kind, event_id, name, capacity = item
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, CATALOG_GROUP, envelope.id):
            return
        await store.upsert_catalog_item(
            uow.conn, event_id=event_id, kind=kind, name=name, capacity=capacity, currency=currency, starts_at=starts
        )
        current = await store.tally(uow.conn, event_id)
        if current is not None:  # sold before the capacity was known (or it changed): settle sold-out again
            current.settle(capacity)
            await store.save_tallies(uow.conn, [current])
        await uow.commit()


def _run_departure(data: Mapping[str, object]) -> datetime | None:
    stops = data.get("stops")
    if isinstance(stops, list) and stops and isinstance(stops[0], dict) and stops[0].get("departs_at"):
        return domain.parse_time(str(stops[0]["departs_at"]))
    return None


# Reads ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SalesPage:
    items: list[WindowResult]
    next_cursor: datetime | None


async def list_sales(
    deps: AnalyticsDeps, event_id: str, *, start: datetime | None, end: datetime | None,
    after: datetime | None, limit: int,
) -> SalesPage:
    domain.check_range(start, end)
    async with deps.db.read() as conn:
        items = await store.emitted_windows(conn, event_id, after=after, start=start, end=end, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return SalesPage(items, items[-1].window_start if more and items else None)


@dataclass(frozen=True, slots=True)
class Summary:
    event_id: str
    capacity: int | None
    sold: int
    sell_through: float | None
    revenue_minor: int
    currency: str | None
    first_sale_at: datetime | None
    sold_out_at: datetime | None
    peak_tickets_per_minute: float


async def event_summary(deps: AnalyticsDeps, event_id: str) -> Summary:
    async with deps.db.read() as conn:
        tally = await store.tally(conn, event_id)
        item = await store.catalog_item(conn, event_id)
        peak = await store.peak_window_tickets(conn, event_id)
    if tally is None and item is None:
        raise NotFound("Analytics knows no event or run with this id.")
    capacity = item[2] if item is not None else None
    sold = tally.sold if tally else 0
    per_minute = (peak or 0) * timedelta(minutes=1) / deps.windowing.window
    return Summary(
        event_id=event_id,
        capacity=capacity,
        sold=sold,
        sell_through=round(sold / capacity, 4) if capacity else None,
        revenue_minor=tally.revenue_minor if tally else 0,
        currency=tally.currency if tally else (item[3] if item else None),
        first_sale_at=tally.first_sale_at if tally else None,
        sold_out_at=tally.sold_out_at if tally else None,
        peak_tickets_per_minute=round(per_minute, 2),
    )


@dataclass(frozen=True, slots=True)
class Tracked:
    event_id: str
    kind: str
    name: str
    capacity: int
    starts_at: datetime | None
    sold: int


async def list_tracked(deps: AnalyticsDeps, *, limit: int) -> list[Tracked]:
    async with deps.db.read() as conn:
        return [Tracked(*row) for row in await store.catalog_list(conn, limit)]


async def results_after(deps: AnalyticsDeps, seq: int, *, event_id: str | None) -> list[tuple[int, WindowResult]]:
    async with deps.db.read() as conn:
        return await store.emissions_after(conn, seq, event_id=event_id)


async def last_result(deps: AnalyticsDeps) -> int:
    async with deps.db.read() as conn:
        return await store.last_emission(conn)

