"""Analytics' tables and queries: window state, read positions, published results, corrections, dead letters.

The aggregator's state (``windows``, ``tallies``, ``counted_bookings``) and its read positions
(``positions``) change in one transaction per batch, with the results it publishes (``emissions`` and the
outbox). ``positions`` is updated by compare-and-set on the offset the worker loaded: a second member that
read the same records (a rebalance, a lease taken over) fails its commit instead of counting them twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.analytics.domain import (
    Booking,
    Correction,
    EventTally,
    PartitionState,
    Window,
    WindowResult,
)
from boxoffice.platform.bus.tables import BigId, add_messaging_tables
from boxoffice.platform.db import UtcDateTime

metadata = MetaData()
add_messaging_tables(metadata)

windows = Table(
    "windows",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("window_start", UtcDateTime, primary_key=True),
    Column("window_end", UtcDateTime, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_tickets", Integer, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("revenue_minor", BigInteger, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("emitted_at", UtcDateTime, nullable=True),
    Index("ix_windows_pending", "revision", "partition"),
)

positions = Table(
    "positions",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("max_event_time", UtcDateTime, nullable=True),
)

emissions = Table(
    "emissions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("total_tickets", Integer, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("revenue_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("emitted_at", UtcDateTime, nullable=False),
    Index("ix_emissions_event", "event_id", "seq"),
)

tallies = Table(
    "tallies",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("sold", Integer, nullable=False),
    Column("revenue_minor", BigInteger, nullable=False),
    Column("first_sale_at", UtcDateTime, nullable=True),
    Column("last_sale_at", UtcDateTime, nullable=True),
    Column("sold_out_at", UtcDateTime, nullable=True),
)

counted_bookings = Table(
    "counted_bookings",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("cancelled", Boolean, primary_key=True),
)

corrections = Table(
    "corrections",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("order_id", String(64), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("ticket_delta", Integer, nullable=False),
    Column("revenue_delta", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("event_time", UtcDateTime, nullable=False),
    Column("watermark", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("payload", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

catalog_items = Table(
    "catalog_items",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(300), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("starts_at", UtcDateTime, nullable=True),
)


def _upsert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


# Positions ---------------------------------------------------------------------------------------------------


async def load_positions(conn: AsyncConnection, partitions: Sequence[tuple[str, int]]) -> list[PartitionState]:
    """The stored positions of these partitions; a partition never seen gets a row at offset 0."""
    if not partitions:
        return []
    await conn.execute(
        _upsert(conn, positions).on_conflict_do_nothing(),
        [{"topic": t, "partition": p, "next_offset": 0, "max_event_time": None} for t, p in partitions],
    )
    rows = await conn.execute(
        select(positions).where(tuple_(positions.c.topic, positions.c.partition).in_(list(partitions)))
    )
    return [
        PartitionState(r.topic, r.partition, r.next_offset, r.max_event_time, stored_offset=r.next_offset)
        for r in rows
    ]


async def save_positions(conn: AsyncConnection, states: Iterable[PartitionState]) -> bool:
    """Move the positions on, if nobody else did since they were loaded; False if someone did."""
    for state in states:
        result = await conn.execute(
            update(positions)
            .where(
                and_(
                    positions.c.topic == state.topic,
                    positions.c.partition == state.partition,
                    positions.c.next_offset == state.stored_offset,
                )
            )
            .values(next_offset=state.next_offset, max_event_time=state.max_event_time)
        )
        if result.rowcount != 1:
            return False
    return True


# Window state ------------------------------------------------------------------------------------------------


def _window(r: Row[Any]) -> Window:
    return Window(
        event_id=r.event_id,
        kind=r.kind,
        start=r.window_start,
        end=r.window_end,
        partition=r.partition,
        currency=r.currency,
        total_tickets=r.total_tickets,
        orders=r.orders,
        revenue_minor=r.revenue_minor,
        revision=r.revision,
    )


async def load_windows(
    conn: AsyncConnection, keys: Iterable[tuple[str, datetime]], *, pending_in: Iterable[int] = ()
) -> dict[tuple[str, datetime], Window]:
    """The windows of these keys, plus every window not yet emitted in the partitions ``pending_in``."""
    found: dict[tuple[str, datetime], Window] = {}
    wanted = list(keys)
    for chunk in range(0, len(wanted), 500):
        rows = await conn.execute(
            select(windows).where(
                tuple_(windows.c.event_id, windows.c.window_start).in_(wanted[chunk : chunk + 500])
            )
        )
        found.update({(w.event_id, w.start): w for w in map(_window, rows)})
    parts = list(pending_in)
    if parts:
        rows = await conn.execute(select(windows).where(and_(windows.c.revision == 0, windows.c.partition.in_(parts))))
        found.update({(w.event_id, w.start): w for w in map(_window, rows)})
    return found


async def save_windows(conn: AsyncConnection, changed: Iterable[Window], now: datetime) -> None:
    rows = [
        {
            "event_id": w.event_id,
            "window_start": w.start,
            "window_end": w.end,
            "kind": w.kind,
            "partition": w.partition,
            "currency": w.currency,
            "total_tickets": w.total_tickets,
            "orders": w.orders,
            "revenue_minor": w.revenue_minor,
            "revision": w.revision,
            "emitted_at": now if w.revision else None,
        }
        for w in changed
    ]
    if not rows:
        return
    stmt = _upsert(conn, windows)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["event_id", "window_start"],
            set_={
                name: stmt.excluded[name]
                for name in ("total_tickets", "orders", "revenue_minor", "revision", "emitted_at")
            },
        ),
        rows,
    )


async def claim_first_emission(conn: AsyncConnection, result: WindowResult, now: datetime) -> bool:
    """Mark a window published (revision 1) if it is still unpublished with exactly these totals: of two
    members that both closed it by the clock (a rebalance), one publishes it."""
    claimed = await conn.execute(
        update(windows)
        .where(
            and_(
                windows.c.event_id == result.event_id,
                windows.c.window_start == result.window_start,
                windows.c.revision == 0,
                windows.c.total_tickets == result.total_tickets,
                windows.c.orders == result.orders,
                windows.c.revenue_minor == result.revenue_minor,
            )
        )
        .values(revision=1, emitted_at=now)
    )
    return bool(claimed.rowcount == 1)


async def record_emissions(conn: AsyncConnection, results: Sequence[WindowResult], now: datetime) -> None:
    if results:
        await conn.execute(
            insert(emissions),
            [
                {
                    "event_id": r.event_id,
                    "kind": r.kind,
                    "window_start": r.window_start,
                    "window_end": r.window_end,
                    "total_tickets": r.total_tickets,
                    "orders": r.orders,
                    "revenue_minor": r.revenue_minor,
                    "currency": r.currency,
                    "revision": r.revision,
                    "emitted_at": now,
                }
                for r in results
            ],
        )


async def load_tallies(conn: AsyncConnection, event_ids: Iterable[str]) -> dict[str, EventTally]:
    ids = list(event_ids)
    if not ids:
        return {}
    rows = await conn.execute(select(tallies).where(tallies.c.event_id.in_(ids)))
    return {
        r.event_id: EventTally(
            r.event_id, r.kind, r.currency, r.sold, r.revenue_minor, r.first_sale_at, r.last_sale_at, r.sold_out_at
        )
        for r in rows
    }


async def save_tallies(conn: AsyncConnection, changed: Iterable[EventTally]) -> None:
    rows = [
        {
            "event_id": t.event_id,
            "kind": t.kind,
            "currency": t.currency,
            "sold": t.sold,
            "revenue_minor": t.revenue_minor,
            "first_sale_at": t.first_sale_at,
            "last_sale_at": t.last_sale_at,
            "sold_out_at": t.sold_out_at,
        }
        for t in changed
    ]
    if not rows:
        return
    stmt = _upsert(conn, tallies)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["event_id"],
            set_={
                name: stmt.excluded[name]
                for name in ("sold", "revenue_minor", "first_sale_at", "last_sale_at", "sold_out_at")
            },
        ),
        rows,
    )


async def already_counted(conn: AsyncConnection, bookings: Sequence[Booking]) -> set[tuple[str, bool]]:
    """Which of these (order, confirmed|cancelled) were counted before: a booking the relay published twice."""
    orders = sorted({b.order_id for b in bookings})
    seen: set[tuple[str, bool]] = set()
    for chunk in range(0, len(orders), 1000):
        rows = await conn.execute(
            select(counted_bookings.c.order_id, counted_bookings.c.cancelled).where(
                counted_bookings.c.order_id.in_(orders[chunk : chunk + 1000])
            )
        )
        seen.update((order_id, bool(cancelled)) for order_id, cancelled in rows)
    return seen


async def mark_counted(conn: AsyncConnection, keys: Iterable[tuple[str, bool]]) -> None:
    """One row per counted booking, written with the driver's executemany: this runs for every booking, and
    building a SQLAlchemy parameter set per row would cost more than the insert."""
    rows = list(keys)
    if rows:
        sql = _MARK_COUNTED_PG if conn.dialect.name == "postgresql" else _MARK_COUNTED
        await conn.exec_driver_sql(sql, rows)


_MARK_COUNTED = "INSERT INTO counted_bookings (order_id, cancelled) VALUES (?, ?)"
_MARK_COUNTED_PG = "INSERT INTO counted_bookings (order_id, cancelled) VALUES ($1, $2)"


async def record_corrections(conn: AsyncConnection, found: Sequence[Correction], now: datetime) -> None:
    if found:
        await conn.execute(
            insert(corrections),
            [
                {
                    "event_id": c.booking.event_id,
                    "order_id": c.booking.order_id,
                    "window_start": c.window_start,
                    "ticket_delta": c.booking.sign * c.booking.ticket_count,
                    "revenue_delta": c.booking.sign * c.booking.amount_minor,
                    "currency": c.booking.currency,
                    "event_time": c.booking.at,
                    "watermark": c.watermark,
                    "recorded_at": now,
                }
                for c in found
            ],
        )


async def record_dead_letters(
    conn: AsyncConnection, letters: Sequence[tuple[str, int, int, str, str]], now: datetime
) -> None:
    """(topic, partition, offset, reason, payload) of records that could not be counted."""
    if letters:
        await conn.execute(
            insert(dead_letters),
            [
                {"topic": t, "partition": p, "offset": o, "reason": why[:500], "payload": raw, "recorded_at": now}
                for t, p, o, why, raw in letters
            ],
        )


# Catalog -----------------------------------------------------------------------------------------------------


async def upsert_catalog_item(
    conn: AsyncConnection, *, event_id: str, kind: str, name: str, capacity: int, currency: str,
    starts_at: datetime | None,
) -> None:
    stmt = _upsert(conn, catalog_items).values(
        event_id=event_id, kind=kind, name=name, capacity=capacity, currency=currency, starts_at=starts_at
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["event_id"],
            set_={"name": name, "capacity": capacity, "currency": currency, "starts_at": starts_at},
        )
    )


async def capacities(conn: AsyncConnection, event_ids: Iterable[str]) -> dict[str, int]:
    ids = list(event_ids)
    if not ids:
        return {}
    rows = await conn.execute(
        select(catalog_items.c.event_id, catalog_items.c.capacity).where(catalog_items.c.event_id.in_(ids))
    )
    return {event_id: capacity for event_id, capacity in rows}


# Reads for the API ----------------------------------------------------------------------------------------------


async def emitted_windows(
    conn: AsyncConnection, event_id: str, *, after: datetime | None, start: datetime | None,
    end: datetime | None, limit: int,
) -> list[WindowResult]:
    query = select(windows).where(and_(windows.c.event_id == event_id, windows.c.revision > 0))
    if after is not None:
        query = query.where(windows.c.window_start > after)
    if start is not None:
        query = query.where(windows.c.window_end > start)
    if end is not None:
        query = query.where(windows.c.window_start < end)
    rows = await conn.execute(query.order_by(windows.c.window_start).limit(limit))
    return [_window(r).result() for r in rows]


async def peak_window_tickets(conn: AsyncConnection, event_id: str) -> int | None:
    return (  # type: ignore[no-any-return]
        await conn.execute(
            select(func.max(windows.c.total_tickets)).where(
                and_(windows.c.event_id == event_id, windows.c.revision > 0)
            )
        )
    ).scalar_one()


async def tally(conn: AsyncConnection, event_id: str) -> EventTally | None:
    return (await load_tallies(conn, [event_id])).get(event_id)


async def catalog_item(conn: AsyncConnection, event_id: str) -> tuple[str, str, int, str, datetime | None] | None:
    row = (await conn.execute(select(catalog_items).where(catalog_items.c.event_id == event_id))).first()
    return None if row is None else (row.kind, row.name, row.capacity, row.currency, row.starts_at)


async def catalog_list(conn: AsyncConnection, limit: int) -> list[tuple[str, str, str, int, datetime | None, int]]:
    """(event_id, kind, name, capacity, starts_at, sold) of what the catalog announced, most sold first."""
    rows = await conn.execute(
        select(
            catalog_items.c.event_id,
            catalog_items.c.kind,
            catalog_items.c.name,
            catalog_items.c.capacity,
            catalog_items.c.starts_at,
            func.coalesce(tallies.c.sold, 0),
        )
        .select_from(catalog_items.outerjoin(tallies, tallies.c.event_id == catalog_items.c.event_id))
        .order_by(func.coalesce(tallies.c.sold, 0).desc(), catalog_items.c.starts_at, catalog_items.c.event_id)
        .limit(limit)
    )
    return [tuple(r) for r in rows]


async def emissions_after(conn: AsyncConnection, seq: int, *, event_id: str | None, limit: int = 500) -> list[
    tuple[int, WindowResult]
]:
    query = select(emissions).where(emissions.c.seq > seq)
    if event_id is not None:
        query = query.where(emissions.c.event_id == event_id)
    rows = await conn.execute(query.order_by(emissions.c.seq).limit(limit))
    return [
        (
            r.seq,
            WindowResult(
                r.event_id, r.kind, r.window_start, r.window_end, r.total_tickets, r.orders, r.revenue_minor,
                r.currency, r.revision,
            ),
        )
        for r in rows
    ]


async def last_emission(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(emissions.c.seq), 0)))).scalar_one())


async def count_rows(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
