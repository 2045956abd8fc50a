"""What is left to sell, for catalog's listings (``/internal/availability/...``, docs/contracts.md)."""

from __future__ import annotations

from boxoffice.booking import availability
from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import EventAvailability, RunAvailability


async def count_event_availability(deps: BookingDeps, event_ids: list[str]) -> dict[str, EventAvailability]:
    async with deps.db.read() as conn:
        return await availability.for_events(conn, event_ids, deps.now())


async def count_run_availability(
    deps: BookingDeps, run_ids: list[str], *, origin: str | None, destination: str | None
) -> dict[str, RunAvailability]:
    async with deps.db.read() as conn:
        return await availability.for_runs(conn, run_ids, origin, destination, deps.now())
