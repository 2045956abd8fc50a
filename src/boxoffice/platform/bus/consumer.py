"""Running a consumer group: each event handed to a handler, positions committed after its effect.

A handler makes its effect and ``claim_inbox`` in one transaction, so the effect happens at most once; the
position is committed only after the handler returns, so every event is handled at least once. A handler
that raises keeps its partition where it is (order per key is kept) while the other partitions of the
batch go on, and the event is tried again after a back-off that doubles each time. After ``max_attempts``
failed attempts at one event, the group writes it to its dead letters (``deadletters``), counts it in
``boxoffice_bus_dead_letters_total`` and moves past it, so one bad event cannot stop its partition for
good. (The attempts are counted by this process: a restart gives an event its attempts again.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from boxoffice.platform.bus.deadletters import DeadLetters, describe
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Consumer, Record
from boxoffice.platform.metrics import BUS_CONSUMED, BUS_DEAD_LETTERS, BUS_POLLS, BUS_RETRIES
from boxoffice.platform.shutdown import cooperate, pause, stopped
from boxoffice.platform.tracing import consuming

log = structlog.get_logger("boxoffice.consumer")

Handler = Callable[[Envelope], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Batched:
    """A handler that also takes the events of one poll together (``many``: one transaction for all of
    them, all or nothing, in their order). If ``many`` fails, those events are handled one by one with
    ``one``, so that a bad event fails (is retried, then dead-lettered) alone and the others go on. Under
    load a group then spends one transaction, and a handful of statements, per poll instead of per event."""

    one: Handler
    many: Callable[[Sequence[Envelope]], Awaitable[None]]

    async def __call__(self, envelope: Envelope) -> None:
        await self.one(envelope)


class HandlerFailed(Exception):
    """A handler raised; its partition waits for the next attempt."""


@dataclass
class Attempts:
    """What a group does with a failing event: how often it tries, and where it puts it then."""

    max_attempts: int = 5
    dead_letters: DeadLetters | None = None
    """None: try for ever (a group of a service without a database)."""
    failures: dict[tuple[str, int, int], int] = field(default_factory=dict)
    """Failed attempts so far, by (topic, partition, offset) of the event."""


async def handle_batch(
    consumer: Consumer, records: list[Record], handler: Handler, attempts: Attempts | None = None
) -> int:
    """Handle records in order and commit each one's position once its effect is done; how many it committed.

    A failure stops its own partition (the later records of that partition in this batch are left for the
    next poll) and raises ``HandlerFailed`` once the rest of the batch is done.
    """
    attempts = attempts if attempts is not None else Attempts(max_attempts=0)
    if isinstance(handler, Batched) and len(records) > 1 and await _together(consumer, records, handler, attempts):
        await consumer.commit(records)
        return len(records)
    done: list[Record] = []
    stopped: set[tuple[str, int]] = set()
    first_error: Exception | None = None
    try:
        for record in records:
            if (record.topic, record.partition) in stopped:
                continue
            envelope = record.envelope
            try:
                with consuming(consumer.group, record.topic, envelope.type, envelope.traceparent):
                    await handler(envelope)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not await _give_up(consumer.group, record, exc, attempts):
                    stopped.add((record.topic, record.partition))
                    first_error = first_error or exc
                    continue
            else:
                attempts.failures.pop((record.topic, record.partition, record.offset), None)
                BUS_CONSUMED.labels(consumer.group, record.topic).inc()
            done.append(record)
    finally:
        await consumer.commit(done)
    if first_error is not None:
        raise HandlerFailed(f"{len(stopped)} partition(s) wait for another attempt") from first_error
    return len(done)


async def _together(consumer: Consumer, records: list[Record], handler: Batched, attempts: Attempts) -> bool:
    """Handle the records in one call of ``handler.many``; False (nothing done) when it failed."""
    try:
        with contextlib.ExitStack() as spans:  # a span per event, each in the trace that published it
            for record in records:
                envelope = record.envelope
                spans.enter_context(consuming(consumer.group, record.topic, envelope.type, envelope.traceparent))
            await handler.many([record.envelope for record in records])
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.info("batch failed; its events are handled one by one", group=consumer.group, error=repr(exc))
        return False
    for record in records:
        attempts.failures.pop((record.topic, record.partition, record.offset), None)
        BUS_CONSUMED.labels(consumer.group, record.topic).inc()
    return True


async def _give_up(group: str, record: Record, exc: Exception, attempts: Attempts) -> bool:
    """Count a failed attempt; True once the event went to the dead letters (its partition moves on)."""
    where = (record.topic, record.partition, record.offset)
    count = attempts.failures.get(where, 0) + 1
    attempts.failures[where] = count
    event = {"group": group, "topic": record.topic, "partition": record.partition, "offset": record.offset}
    if attempts.dead_letters is None or count < attempts.max_attempts:
        log.warning("event failed; will try again", **event, attempt=count, error=repr(exc))
        BUS_RETRIES.labels(group, record.topic).inc()
        return False
    # If this write fails, the event stays where it is and the next attempt tries to dead-letter it again.
    await attempts.dead_letters.add(group, record, error=describe(exc), attempts=count)
    del attempts.failures[where]
    BUS_DEAD_LETTERS.labels(group, record.topic).inc()
    log.error(
        "event dead-lettered after failed attempts",
        **event,
        event_id=record.envelope.id,
        event_type=record.envelope.type,
        attempts=count,
        exc_info=exc,
    )
    return True


async def run_consumer(
    consumer: Consumer,
    handler: Handler,
    *,
    max_attempts: int = 5,
    dead_letters: DeadLetters | None = None,
    backoff: float = 0.1,
    max_backoff: float = 30.0,
) -> None:
    """Consume until cancelled, or until the runtime asks to stop (``platform.shutdown``): then the batch in
    hand is finished and committed, no new one is polled, and the group is left. After a failure wait
    ``backoff`` seconds, twice as long each time in a row."""
    stop = cooperate()
    await consumer.start()
    attempts = Attempts(max_attempts=max_attempts, dead_letters=dead_letters)
    delay = backoff
    polled = committed = 0
    polls = BUS_POLLS.labels(consumer.group)
    try:
        while not stopped(stop):
            try:
                records = await consumer.poll(max_records=200, timeout=1.0)
                polled += len(records)
                if records:
                    polls.inc()
                    committed += await handle_batch(consumer, records, handler, attempts)
                delay = backoff
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, HandlerFailed):
                    log.warning("consumer failed; will retry", group=consumer.group, error=repr(exc))
                await pause(delay, stop)
                delay = min(delay * 2, max_backoff)
        # Every record polled was handled and committed, unless a handler failed (left for the next member).
        log.info("consumer drained", group=consumer.group, polled=polled, committed=committed)
    finally:
        await consumer.stop()
