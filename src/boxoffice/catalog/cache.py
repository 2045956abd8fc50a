"""An in-process read cache for catalog reads (events, stations, trains, runs), never for availability.

Correctness within a process: every write that changes the catalog calls ``invalidate()`` after its commit.
Invalidation bumps a generation; a read that started loading before an invalidation does not store its
(possibly stale) result, so a reader can never put back what a writer just made obsolete.

Across processes: a second catalog process does not see this process's invalidations. Its entries live
at most ``ttl`` seconds (10 by default), so it serves a change at most that long late. Catalog data changes
rarely (an admin publishes an event), and nothing that must be exact is cached here: availability always
comes from booking, and booking checks prices and capacity from its own inventory when a hold is placed.
(If seconds of staleness ever matter, each process can consume ``catalog.events``/``catalog.runs`` and
invalidate on them.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class ReadCache:
    def __init__(self, *, ttl: float = 10.0, max_entries: int = 2_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._generation = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key)
            value: T = entry[1]
            return value
        generation = self._generation
        value = await load()
        if generation == self._generation and self.ttl > 0:
            self._entries[key] = (now + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
