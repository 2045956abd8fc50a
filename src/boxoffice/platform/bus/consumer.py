"""Running a consumer group: each event handed to a handler, positions committed after its effect.

A handler makes its effect and ``claim_inbox`` in one transaction, so the effect happens at most once; the
position is committed only after the handler returns, so every event is handled at least once. A handler
that raises keeps its partition where it is and is retried with backoff (order per key is kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Consumer, Record
from boxoffice.platform.metrics import BUS_CONSUMED
from boxoffice.platform.tracing import consuming

log = structlog.get_logger("boxoffice.consumer")

Handler = Callable[[Envelope], Awaitable[None]]


async def handle_batch(consumer: Consumer, records: list[Record], handler: Handler) -> None:
    """Handle records in order and commit each one's position once its effect is done."""
    done: list[Record] = []
    try:
        for record in records:
            envelope = record.envelope
            with consuming(consumer.group, record.topic, envelope.type, envelope.traceparent):
                await handler(envelope)
            done.append(record)
            BUS_CONSUMED.labels(consumer.group, record.topic).inc()
    finally:
        await consumer.commit(done)


async def run_consumer(consumer: Consumer, handler: Handler, *, max_backoff: float = 30.0) -> None:
    """Consume until cancelled."""
    await consumer.start()
    backoff = 0.1
    try:
        while True:
            try:
                records = await consumer.poll(max_records=200, timeout=1.0)
                if records:
                    await handle_batch(consumer, records, handler)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer failed; will retry", group=consumer.group, error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)
    finally:
        await consumer.stop()
