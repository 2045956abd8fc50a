"""Tracking's use cases: collect a batch, store what the bus delivered, keep the partitions, answer queries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog

from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.problems import ServiceUnavailable
from boxoffice.tracking import domain, store
from boxoffice.tracking.deps import TrackingDeps
from boxoffice.tracking.domain import (
    COLLECTED,
    EVENT_TYPE,
    TOPIC,
    ClientFlooding,
    CollectedEvent,
    CollectResult,
    Cursor,
    EventFilter,
    EventPage,
    Interval,
    Limits,
    PageCount,
    StatsBucket,
    StoredEvent,
    UnsupportedBody,
)
from boxoffice.tracking.enrich import parse_agent

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
    appends to the bus directly (through the group publisher), and only then answers 202.
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
    received_at = now.astimezone(UTC).isoformat()
    envelopes = [
        new_event(
            EVENT_TYPE,
            source="tracking",
            key=event.session_id,
            data=domain.collected(event, sent, received_at=received_at, user_agent=cmd.user_agent),
            topic=TOPIC,
        )
        for event, sent in parsed.accepted
    ]
    try:
        await deps.publisher.publish(envelopes)
    except Exception as exc:
        log.warning("could not publish a batch", error=repr(exc), events=len(envelopes))
        raise ServiceUnavailable("The events could not be stored just now; send them again.") from exc
    return CollectResult(len(envelopes), parsed.rejected)


def _charge(deps: TrackingDeps, client: str, events: int) -> None:
    wait = deps.buckets.take(client, max(1, events), time.monotonic())
    if wait > 0:
        retry = domain.retry_after(wait)
        raise ClientFlooding(f"Too many events from this client; retry in {retry} s.", retry_after=retry)


def enrich(deps: TrackingDeps, event: CollectedEvent) -> StoredEvent:
    """The stored form of one collected event: its agent read, its bot flag and its page's subject."""
    agent = parse_agent(event.user_agent)
    too_fast = deps.rates.observe(event.session_id, event.ts)
    path = domain.url_path(event.url)
    subject = domain.path_subject(path)
    element = event.element
    return StoredEvent(
        event_id=event.event_id,
        type=event.type,
        name=event.name,
        ts=domain.as_utc(event.ts),
        received_at=domain.as_utc(event.received_at),
        user_id=event.user_id,
        session_id=event.session_id,
        anonymous_id=event.anonymous_id,
        url=event.url,
        path=path[:2048],
        referrer=event.referrer,
        title=event.title,
        element={"tag": element.tag, "text": element.text, "track": element.track} if element else None,
        props=event.props,
        browser=agent.browser,
        os=agent.os,
        device=agent.device,
        is_bot=agent.is_bot or too_fast,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
    )


async def store_batch(deps: TrackingDeps, envelopes: Sequence[Envelope]) -> int:
    """The processor's step: validate, enrich and store a batch in one transaction; returns how many were new.

    An event already stored (a redelivery, or a batch the browser sent twice) is skipped by its key; one
    that fails validation or is too old for its partition goes to the failed-events table with its payload.
    """
    good: list[StoredEvent] = []
    bad: list[tuple[str | None, str, str]] = []
    oldest = domain.day_of(deps.now()) - timedelta(days=deps.config.retention_days)
    checked = COLLECTED.validate_python([e.data if e.type == EVENT_TYPE else None for e in envelopes])
    for envelope, item in zip(envelopes, checked, strict=True):
        if not isinstance(item, CollectedEvent):
            event_id = envelope.data.get("event_id") if isinstance(envelope.data, dict) else None
            reason = item.reason if envelope.type == EVENT_TYPE else f"unexpected record type {envelope.type!r}"
            bad.append((str(event_id)[:64] if event_id else None, reason, envelope.to_json().decode()))
            continue
        event = enrich(deps, item)
        if event.ts < oldest:
            bad.append((event.event_id, "ts: older than the retention period", envelope.to_json().decode()))
            continue
        good.append(event)
    if deps.db.dialect == "postgresql":
        await ensure_partitions(deps, {domain.day_of(e.ts).date() for e in good})
    async with deps.db.uow() as uow:
        stored = await store.insert_events(uow.conn, good)
        await store.insert_failed(uow.conn, bad, deps.now())
        await uow.commit()
    if bad:
        log.warning("tracking events failed validation", failed=len(bad), first_reason=bad[0][1])
    return stored


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
