"""Group commit for the collector: concurrent requests' events go to the bus in one append.

Each request waits until the append that carries its events returned, so a 202 still means "the bus has
them durably", but a hundred requests arriving together cost one transaction (sql bus) or one round of
produce requests (kafka) instead of a hundred. While one append is in flight the next requests queue up and
go together in the following one.
``boxoffice_tracking_appended_requests_total / boxoffice_tracking_appends_total`` is how many requests an append
carried (about 60 under ``loadtest/clickstream.py``'s load).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.metrics import counter

APPENDS = counter("boxoffice_tracking_appends_total", "Bus appends of the collector (each of one or more requests)")
APPENDED = counter("boxoffice_tracking_appended_requests_total", "Collector requests appended to the bus")


class GroupPublisher:
    def __init__(self, bus: Bus, *, max_events: int = 5_000) -> None:
        self.bus = bus
        self.max_events = max_events
        self._pending: list[tuple[Sequence[Envelope], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return once the bus has ``envelopes`` durably; raise what the bus raised otherwise."""
        if not envelopes:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # a request that went away must not leave an unread exception
        self._pending.append((envelopes, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="tracking:publish")
        await asyncio.shield(done)

    async def stop(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        for _, done in self._pending:
            if not done.done():
                done.set_exception(ConnectionError("the collector is stopping"))
        self._pending.clear()

    async def _flush(self) -> None:
        while self._pending:
            group: list[tuple[Sequence[Envelope], asyncio.Future[None]]] = []
            size = 0
            while self._pending and (not group or size + len(self._pending[0][0]) <= self.max_events):
                item = self._pending.pop(0)
                group.append(item)
                size += len(item[0])
            APPENDS.inc()
            APPENDED.inc(len(group))
            try:
                await self.bus.publish([e for envelopes, _ in group for e in envelopes])
            except Exception as exc:
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
