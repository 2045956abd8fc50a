"""What is left: read-only answers for catalog's pages (``/internal/availability/...``).

Computed from the same rows the claims write, with expired holds counted as free whether or not the
sweeper has run (invariant 3). Only seats that are NOT available are listed, to keep answers small.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking import domain
from boxoffice.booking.catalog_copy import run_from
from boxoffice.booking.domain import EventAvailability, HoldKind, HoldStatus, RunAvailability
from boxoffice.booking.tables import events, holds, runs, seats, sections, train_claims, train_seats


async def for_events(conn: AsyncConnection, event_ids: list[str], now: datetime) -> dict[str, EventAvailability]:
    section_rows = list(
        await conn.execute(
            select(sections.c.section_id, sections.c.event_id, sections.c.capacity, sections.c.sold).where(
                sections.c.event_id.in_(event_ids)
            )
        )
    )
    live_general = dict(
        (
            await conn.execute(
                select(holds.c.section_id, func.sum(holds.c.quantity))
                .where(
                    holds.c.event_id.in_(event_ids),
                    holds.c.kind == HoldKind.GENERAL,
                    holds.c.status == HoldStatus.ACTIVE,
                    holds.c.expires_at > now,
                )
                .group_by(holds.c.section_id)
            )
        ).all()
    )
    taken_seats = await conn.execute(
        select(seats.c.seat_id, seats.c.event_id, seats.c.section_id, seats.c.status, seats.c.expires_at).where(
            seats.c.event_id.in_(event_ids), seats.c.status != "available"
        )
    )
    seats_of: dict[str, dict[str, str]] = {e: {} for e in event_ids}
    sections_of: dict[str, dict[str, int]] = {e: {} for e in event_ids}
    taken_per_section: dict[str, int] = defaultdict(int)
    for seat in taken_seats:
        if seat.status == "held" and seat.expires_at <= now:
            continue
        seats_of[seat.event_id][seat.seat_id] = seat.status
        taken_per_section[seat.section_id] += 1
    seating = await conn.execute(select(events.c.event_id, events.c.seating).where(events.c.event_id.in_(event_ids)))
    reserved = {row.event_id for row in seating if row.seating == "reserved"}
    for row in section_rows:
        if row.event_id in reserved:
            left = row.capacity - taken_per_section[row.section_id]
        else:
            left = row.capacity - row.sold - int(live_general.get(row.section_id) or 0)
        sections_of[row.event_id][row.section_id] = max(0, left)
    return {e: EventAvailability(sum(parts.values()), parts, seats_of[e]) for e, parts in sections_of.items() if parts}


async def for_runs(
    conn: AsyncConnection, run_ids: list[str], origin: str | None, destination: str | None, now: datetime
) -> dict[str, RunAvailability]:
    result: dict[str, RunAvailability] = {}
    for row in await conn.execute(select(runs).where(runs.c.run_id.in_(run_ids))):
        run = run_from(row)
        if origin and destination:
            try:
                segment = domain.segment_of(run.stops, origin, destination)
            except domain.InvalidSegment:
                continue
            span = (segment.from_index, segment.to_index)
        else:
            span = (0, max(stop.index for stop in run.stops))
        per_class: dict[str, int] = dict(
            (
                await conn.execute(
                    select(train_seats.c.class_code, func.count())
                    .where(train_seats.c.run_id == run.run_id)
                    .group_by(train_seats.c.class_code)
                )
            ).all()
        )
        claims = await conn.execute(
            select(train_claims.c.seat_id, train_claims.c.status, train_seats.c.class_code)
            .join(
                train_seats,
                (train_seats.c.run_id == train_claims.c.run_id) & (train_seats.c.seat_id == train_claims.c.seat_id),
            )
            .where(
                train_claims.c.run_id == run.run_id,
                train_claims.c.from_index < span[1],
                train_claims.c.to_index > span[0],
                (train_claims.c.status == "sold") | (train_claims.c.expires_at > now),
            )
        )
        taken: dict[str, str] = {}
        taken_per_class: dict[str, set[str]] = defaultdict(set)
        for claim in claims:
            if taken.get(claim.seat_id) != "sold":
                taken[claim.seat_id] = claim.status
            taken_per_class[claim.class_code].add(claim.seat_id)
        result[run.run_id] = RunAvailability(
            classes={code: total - len(taken_per_class[code]) for code, total in per_class.items()}, seats=taken
        )
    return result
