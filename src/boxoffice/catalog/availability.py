"""Availability comes from booking, which owns inventory; catalog only asks (docs/contracts.md).

Booking lists only what is not fully available: a seat it does not name is available, a section or class
it does not name has its whole capacity. When booking cannot answer (down, slow, not deployed yet),
catalog still answers, marked stale: with the last counts booking gave for that event (kept in memory),
or capacity-based ones, and logs a warning (at most once a minute). A listing that says "available" is a
hint; the hold is where booking enforces the truth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from boxoffice.platform.clients import ServiceClient

log = structlog.get_logger("boxoffice.catalog")

STATUSES = frozenset({"available", "held", "sold"})


@dataclass(frozen=True, slots=True)
class Counts:
    """Booking's answer for one event or run; ``available`` is None when booking gave no total."""

    available: int | None = None
    parts: Mapping[str, int] = field(default_factory=dict)  # section id or class code -> available
    seats: Mapping[str, str] = field(default_factory=dict)  # seat id -> "held" | "sold"
    stale: bool = False  # booking did not answer: the last counts it gave, or none

    def part(self, key: str, capacity: int) -> int:
        return max(0, min(capacity, self.parts.get(key, capacity)))

    def seat(self, seat_id: str) -> str:
        status = self.seats.get(seat_id, "available")
        return status if status in STATUSES else "held"


FULL = Counts()


class BookingAvailability:
    def __init__(self, client: Callable[[], ServiceClient], *, timeout: float = 2.0, warn_every: float = 60.0):
        self._client = client
        self.timeout = timeout
        self.warn_every = warn_every
        self._warned_at = float("-inf")
        self._last: dict[str, Counts] = {}
        self.remember = 10_000

    async def events(self, ids: Sequence[str]) -> dict[str, Counts]:
        if not ids:
            return {}
        body = await self._ask("/internal/availability/events", {"ids": ",".join(ids)})
        if body is None:
            return {i: replace(self._last.get(i, FULL), stale=True) for i in ids}
        answers = _mapping(body, "events")
        counts = {k: _counts(v, "sections") for k, v in answers.items() if isinstance(v, Mapping)}
        if len(self._last) + len(counts) > self.remember:
            self._last.clear()
        self._last.update(counts)
        return counts

    async def runs(self, ids: Sequence[str], *, origin: str, destination: str) -> dict[str, Counts]:
        params = {"ids": ",".join(ids), "origin": origin, "destination": destination}
        body = await self._ask("/internal/availability/runs", params) if ids else None
        answers = _mapping(body, "runs")
        return {k: _counts(v, "classes") for k, v in answers.items() if isinstance(v, Mapping)}

    async def _ask(self, path: str, params: dict[str, str]) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client().get(path, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"booking answered {response.status_code}")
            return response.json()
        except Exception as exc:  # any failure degrades to capacity, never to an error page
            self._warn(path, exc)
            return None

    def _warn(self, path: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= self.warn_every:
            self._warned_at = now
            log.warning("booking availability unavailable; answering with capacity", path=path, error=repr(exc))


def _mapping(body: Any, key: str) -> Mapping[str, Any]:
    inner = body.get(key) if isinstance(body, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def _counts(answer: Mapping[str, Any], parts_key: str) -> Counts:
    available = answer.get("available")
    parts = answer.get(parts_key)
    seats = answer.get("seats")
    return Counts(
        available=available if isinstance(available, int) else None,
        parts={str(k): v for k, v in parts.items() if isinstance(v, int)} if isinstance(parts, Mapping) else {},
        seats={str(k): str(v) for k, v in seats.items()} if isinstance(seats, Mapping) else {},
    )
