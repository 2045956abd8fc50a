"""Tracking's use cases: collect a batch, store what the bus delivered, keep the partitions, answer queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from pydantic import ValidationError

from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.jsonutil import dumps
from boxoffice.platform.problems import ServiceUnavailable
from boxoffice.tracking import domain, store
from boxoffice.tracking.deps import TrackingDeps
from boxoffice.tracking.domain import (
    BATCH_TYPE,
    EVENT_TYPE,
    EVENTS,
    RECORD_META,
    TOPIC,
    ClientFlooding,
    CollectedBatch,
    CollectResult,
    Cursor,
    EventFilter,
    EventPage,
    Interval,
    Limits,
    PageCount,
    StatsBucket,
    TrackedEvent,
    UnsupportedBody,
)
from boxoffice.tracking.enrich import Agent, parse_agent

log = structlog.get_logger("boxoffice.tracking")

ACCEPTED_MEDIA = frozenset({"application/json", "text/plain", ""})  # text/plain: what sendBeacon sends


@dataclass(frozen=True, slots=True)
class CollectCommand:
    body: bytes
    content_type: str
    client: str
    user_agent: str


def limits(deps: TrackingDeps) -> Limits:
    config = deps.config
    return Limits(config.max_batch_events, config.max_batch_bytes, timedelta(days=config.retention_days))


async def collect_events(deps: TrackingDeps, cmd: CollectCommand) -> CollectResult:
    """Validate a batch and hand the accepted events to the bus; returns once the bus has them durably.

    The collector changes no state of its own, so there is no transaction for an outbox row to share: it
    appends to the bus directly (through the group publisher), and only then answers 202. The accepted events
    of one request travel as ONE record (``BATCH_TYPE``): one envelope, one log row or Kafka record, one
    decode in the processor, instead of one per event. Enrichment is the processor's, after the answer.
    """
    if cmd.content_type.split(";", 1)[0].strip().lower() not in ACCEPTED_MEDIA:
        raise UnsupportedBody("Send the batch as application/json (or text/plain, as sendBeacon does).")
    now = deps.now()
    try:
        parsed = domain.parse_batch(cmd.body, limits=limits(deps), now=now)
    except Exception:
        _charge(deps, cmd.client, 1)
        raise
    _charge(deps, cmd.client, len(parsed.accepted) + len(parsed.rejected))
    if not parsed.accepted:
        return CollectResult(0, parsed.rejected)
    record: CollectedBatch = {
        "received_at": now.astimezone(UTC).isoformat(),
        "user_agent": cmd.user_agent[:1024],
        "events": list(parsed.accepted),
    }
    envelope = new_event(
        BATCH_TYPE, source="tracking", key=parsed.accepted[0]["session_id"], data=dict(record), topic=TOPIC
    )
    try:
        await deps.publisher.publish([envelope])
    except Exception as exc:
        log.warning("could not publish a batch", error=repr(exc), events=len(parsed.accepted))
        raise ServiceUnavailable("The events could not be stored just now; send them again.") from exc
    return CollectResult(len(parsed.accepted), parsed.rejected)


def _charge(deps: TrackingDeps, client: str, events: int) -> None:
    wait = deps.buckets.take(client, max(1, events), time.monotonic())
    if wait > 0:
        retry = domain.retry_after(wait)
        raise ClientFlooding(f"Too many events from this client; retry in {retry} s.", retry_after=retry)


@dataclass(frozen=True, slots=True)
class _Origin:
    """What the record an event came in says about it: when it was received and by which browser."""

    received_at: datetime
    stored_received_at: store.StoredTime
    agent: Agent


def _origin(envelope: Envelope, encode: store.TimeEncoder) -> _Origin | str:
    """The record's own fields, checked (the bus is a boundary); a reason when they are not valid."""
    try:
        meta = RECORD_META.validate_python(envelope.data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return domain.error_reason(first["loc"], first["type"], first["msg"])
    received_at = domain.parse_time(meta["received_at"])
    if received_at is None:
        return "received_at: not a valid date and time"
    return _Origin(received_at, encode(meta["received_at"], received_at), parse_agent(meta.get("user_agent") or ""))


def _check_events(events: list[object]) -> list[TrackedEvent | str]:
    """Every event of a slice in one validation pass; an invalid one becomes its reason, the others go on."""
    try:
        return list(EVENTS.validate_python(events))
    except ValidationError as exc:
        reasons: dict[int, str] = {}
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            loc = error["loc"]
            if loc and isinstance(loc[0], int):
                reasons.setdefault(loc[0], domain.error_reason(loc[1:], error["type"], error["msg"]))
    good = [index for index in range(len(events)) if index not in reasons]
    checked: list[TrackedEvent | str] = [reasons.get(index, "") for index in range(len(events))]
    for index, event in zip(good, EVENTS.validate_python([events[i] for i in good]), strict=True):
        checked[index] = event
    return checked


SLICE_EVENTS = 250
"""The processor validates, builds and inserts a poll's events this many at a time (about 5 ms of CPU), and lets
the event loop run between slices once it has held it for ``processor_hold_ms``: in one process (``boxoffice
run``) it shares the loop with the collector, whose answers would otherwise wait for a whole poll (about 2,000
events, some 60 ms of CPU, more on a busy machine). Each yield lets every waiting request run first, so yielding
after every slice would starve the processor while the collector is saturated. The transaction stays one per
poll."""


class _Pacer:
    """Yields to the event loop when the caller has held it ``hold`` seconds or more since the last yield."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.since = -hold  # the caller has just held the loop (reading the poll): the first call yields

    async def breathe(self, *, always: bool = False) -> None:
        if always or time.perf_counter() - self.since >= self.hold:
            # Twice: after the first, this task is first in the loop's queue again, ahead of the requests that
            # arrived while it ran (the loop queues those after it); after the second, it is behind them.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.since = time.perf_counter()


async def store_batch(deps: TrackingDeps, envelopes: Sequence[Envelope]) -> int:
    """The processor's step: validate, enrich and store a batch in one transaction; returns how many were new.

    An event already stored (a redelivery, or a batch the browser sent twice) is skipped by its key; one
    that fails validation or is too old for its partition goes to the failed-events table with its payload.
    """
    oldest = domain.day_of(deps.now()) - timedelta(days=deps.config.retention_days)
    encode = store.time_encoder(deps.db.dialect)
    bad: list[tuple[str | None, str, str]] = []
    events: list[object] = []
    origins: list[_Origin | str] = []
    for envelope in envelopes:
        data = envelope.data
        if envelope.type == BATCH_TYPE and isinstance(data.get("events"), list):
            batch: list[object] = data["events"]
        elif envelope.type == EVENT_TYPE:
            batch = [data]  # one event per record, with received_at and user_agent beside its fields
        else:
            why = f"unexpected record type {envelope.type!r}" if envelope.type != BATCH_TYPE else "events: missing"
            bad.append((_event_id(data), why, envelope.to_json().decode()))
            continue
        origin = _origin(envelope, encode)
        events.extend(batch)
        origins.extend([origin] * len(batch))
    rows: list[store.EventRow] = []
    days: set[date] = set()
    postgres = deps.db.dialect == "postgresql"
    pacer = _Pacer(deps.config.processor_hold_ms / 1000)
    for start in range(0, len(events), SLICE_EVENTS):
        await pacer.breathe()  # let requests run between slices
        end = start + SLICE_EVENTS
        _build_rows(deps, events[start:end], origins[start:end], oldest, encode, rows, bad, days if postgres else None)
    if postgres:
        await ensure_partitions(deps, days)
    stored = 0
    async with deps.db.uow() as uow:
        # Slices where the insert holds the loop; elsewhere (PostgreSQL's COPY, aiosqlite's thread) one call.
        size = SLICE_EVENTS if store.runs_on_the_loop(uow.conn) else max(1, len(rows))
        for start in range(0, len(rows), size):
            if start:
                await pacer.breathe()
            stored += await store.insert_events(uow.conn, rows[start : start + size], statements=deps.db.statements)
        await store.insert_failed(uow.conn, bad, deps.now())
        await pacer.breathe(always=True)  # the commit writes the pages (and now and then checkpoints the WAL)
        await uow.commit()
    if bad:
        log.warning("tracking events failed validation", failed=len(bad), first_reason=bad[0][1])
    return stored


def _build_rows(
    deps: TrackingDeps,
    events: list[object],
    origins: list[_Origin | str],
    oldest: datetime,
    encode: store.TimeEncoder,
    rows: list[store.EventRow],
    bad: list[tuple[str | None, str, str]],
    days: set[date] | None,
) -> None:
    """The stored form of each valid event (its agent read, its bot flag, its page's subject) into ``rows``;
    each invalid one, with its reason, into ``bad``; ``days``: the days the rows fall on, when asked."""
    observe = deps.rates.observe
    parse_time = domain.parse_time
    page_of = domain.page_of
    for raw, event, origin in zip(events, _check_events(events), origins, strict=True):
        if isinstance(event, str) or isinstance(origin, str):
            reason = event if isinstance(event, str) else origin if isinstance(origin, str) else ""
            bad.append((_event_id(raw), reason or "invalid", _payload(raw, origin)))
            continue
        text_ts = event["ts"]
        ts = parse_time(text_ts)
        if ts is None or ts < oldest:
            reason = "ts: not a valid date and time" if ts is None else "ts: older than the retention period"
            bad.append((_event_id(raw), reason, _payload(raw, origin)))
            continue
        if days is not None:
            days.add(ts.date())
        agent = origin.agent
        too_fast = observe(event["session_id"], ts)
        url = event["url"]
        path, subject_type, subject_id = page_of(url)
        element = event.get("element")
        props = event.get("props")
        rows.append(
            (
                event["event_id"],
                encode(text_ts, ts),
                origin.stored_received_at,
                event["type"],
                event.get("name"),
                event["anonymous_id"],
                event["session_id"],
                event.get("user_id"),
                url,
                path,
                event.get("referrer"),
                event.get("title"),
                _element_json(element) if element else None,
                dumps(props).decode() if props else None,
                agent.browser,
                agent.os,
                agent.device,
                agent.is_bot or too_fast,
                subject_type,
                subject_id,
            )
        )


def _element_json(element: domain.Element) -> str:
    if len(element) == 3:  # validated: the three keys, in this order
        return dumps(element).decode()
    return dumps(
        {"tag": element.get("tag", ""), "text": element.get("text", ""), "track": element.get("track", "")}
    ).decode()


def _event_id(raw: object) -> str | None:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return str(event_id)[:64] if event_id else None


def _payload(raw: object, origin: _Origin | str) -> str:
    """What a failed event is kept as: the event as it travelled, with what the collector saw of it."""
    if isinstance(raw, dict) and isinstance(origin, _Origin) and "received_at" not in raw:
        raw = {**raw, "received_at": origin.received_at.isoformat()}
    return dumps(raw).decode()


async def ensure_partitions(deps: TrackingDeps, days: set[date]) -> None:
    """Create the day partitions these events need (PostgreSQL), once per process and day."""
    missing = days - deps.partitions
    if not missing:
        return
    async with deps.db.uow() as uow:
        existing = set(await store.partitions(uow.conn))
        for day in sorted(missing - existing):
            await store.create_partition(uow.conn, day)
        await uow.commit()
    deps.partitions.update(days)


async def maintain_storage(deps: TrackingDeps) -> bool:
    """Partitions for the next days, and retention: drop whole days on PostgreSQL, delete rows on SQLite.

    Returns True while there is more to delete (SQLite deletes in slices, so writers are not held up).
    """
    today = domain.day_of(deps.now())
    cutoff = today - timedelta(days=deps.config.retention_days)
    if deps.db.dialect == "postgresql":
        ahead = {(today + timedelta(days=n)).date() for n in range(-1, deps.config.partitions_ahead_days + 1)}
        await ensure_partitions(deps, ahead)
        async with deps.db.uow() as uow:
            old = [day for day in await store.partitions(uow.conn) if day < cutoff.date()]
            for day in old:
                await store.drop_partition(uow.conn, day)
            await store.delete_failed_before(uow.conn, cutoff)
            await uow.commit()
        deps.partitions.difference_update(old)
        if old:
            log.info("dropped tracking partitions past the retention", days=[str(d) for d in old])
        return False
    async with deps.db.uow() as uow:
        deleted = await store.delete_before(uow.conn, cutoff)
        await store.delete_failed_before(uow.conn, cutoff)
        await uow.commit()
    return deleted >= 10_000


async def list_events(deps: TrackingDeps, where: EventFilter, *, cursor: str | None, limit: int) -> EventPage:
    after = Cursor.decode(cursor) if cursor else None
    async with deps.db.read() as conn:
        rows = await store.find_events(conn, where, after=after, limit=limit + 1)
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = Cursor(items[-1].ts, items[-1].event_id).encode() if more and items else None
    return EventPage(items, next_cursor)


def _window(deps: TrackingDeps, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or deps.now()
    return start or end - timedelta(days=1), end


async def event_stats(
    deps: TrackingDeps, *, start: datetime | None, end: datetime | None, interval: Interval, type_: str | None
) -> list[StatsBucket]:
    start, end = _window(deps, start, end)
    domain.check_range(start, end, interval)
    async with deps.db.read() as conn:
        return await store.stats(conn, start=start, end=end, interval=interval, type_=type_)


async def top_pages(
    deps: TrackingDeps, *, start: datetime | None, end: datetime | None, limit: int
) -> list[PageCount]:
    start, end = _window(deps, start, end)
    domain.check_range(start, end, "day")
    async with deps.db.read() as conn:
        return await store.top_pages(conn, start=start, end=end, limit=limit)
