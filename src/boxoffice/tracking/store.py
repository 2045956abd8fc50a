"""Tracking's tables and queries.

``tracking_events`` holds one row per event. On PostgreSQL it is partitioned by day of ``ts``
(declarative range partitioning, ``tracking_events_pYYYYMMDD``): the processor creates the partitions ahead
of the events and drops those past the retention, which costs nothing compared with deleting rows. Its
primary key is ``(ts, event_id)`` on both databases (a key of a partitioned table must hold the partition key);
an event's ``ts`` is set once by the tracker and travels with every retry and redelivery, so the key still
stores an event once. The key is also the keyset order of ``GET /api/tracking/events`` and the index of a
query by time alone, and every other filter has an index ending in ``(ts, event_id)``.

On SQLite the table is one ``WITHOUT ROWID`` table clustered on that key: events arrive in about the order of
their ``ts``, so a batch appends to the end of the table and of the time index instead of landing on random
pages of an index of random UUIDs (which cost more, the larger the table grew: 16 µs an event at 20,000 rows,
30 at 200,000), and one B-tree fewer is written per event (the table is the time index): five in all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import (
    Boolean,
    Column,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from boxoffice.platform.bus.tables import BigId, add_messaging_tables
from boxoffice.platform.db import UtcDateTime
from boxoffice.platform.jsonutil import loads
from boxoffice.platform.sqlite_inline import InlineConnection
from boxoffice.tracking.domain import Cursor, EventFilter, Interval, PageCount, StatsBucket, StoredEvent

metadata = MetaData()

events = Table(
    "tracking_events",
    metadata,
    Column("event_id", String(36), nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("type", String(16), nullable=False),
    Column("name", String(200), nullable=True),
    Column("anonymous_id", String(64), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("url", Text, nullable=False),
    Column("path", String(2048), nullable=False),
    Column("referrer", Text, nullable=True),
    Column("title", String(300), nullable=True),
    Column("element", Text, nullable=True),  # JSON object {tag, text, track}
    Column("props", Text, nullable=True),  # JSON object
    Column("browser", String(64), nullable=False),
    Column("os", String(64), nullable=False),
    Column("device", String(16), nullable=False),
    Column("is_bot", Boolean, nullable=False),
    Column("subject_type", String(16), nullable=True),  # event | run: what the page is about
    Column("subject_id", String(64), nullable=True),
    PrimaryKeyConstraint("ts", "event_id", name="tracking_events_pkey"),
    Index("ix_tracking_events_user", "user_id", "ts", "event_id"),
    Index("ix_tracking_events_session", "session_id", "ts", "event_id"),
    Index("ix_tracking_events_anonymous", "anonymous_id", "ts", "event_id"),
    Index("ix_tracking_events_type", "type", "ts", "event_id"),
    sqlite_with_rowid=False,
)

failed_events = Table(
    "tracking_failed_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("failed_at", UtcDateTime, nullable=False),
    Index("ix_tracking_failed_events_failed_at", "failed_at"),
)

outbox, inbox = add_messaging_tables(metadata)

COLUMNS = [column.name for column in events.columns]
PARTITION_PREFIX = "tracking_events_p"
_SQLITE_INSERT = (
    f"INSERT INTO tracking_events ({', '.join(COLUMNS)}) "  # noqa: S608 - column names are ours
    f"VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT DO NOTHING"
)


StoredTime = datetime | str
"""A time as ``insert_events`` takes it: a UTC datetime, or on SQLite the text ``sqlite_time`` makes of one."""

EventRow = tuple[
    str, StoredTime, StoredTime, str, str | None, str, str, str | None, str, str, str | None, str | None,
    str | None, str | None, str, str, str, bool, str | None, str | None,
]
"""One row of ``tracking_events`` in the order of ``COLUMNS``; the times as ``time_encoder`` gives them, element
and props JSON."""


TimeEncoder = Callable[[str, datetime], StoredTime]
"""Gives a time in the form ``insert_events`` stores: from the RFC 3339 text it was read from and its datetime."""


def time_encoder(dialect: str) -> TimeEncoder:
    """How ``insert_events`` wants the rows' times on this dialect: SQLite's text, or the UTC datetime itself.

    The rows go to the driver as they are (no per-row work on the way), so they are built in the stored form.
    """
    return _sqlite_text if dialect == "sqlite" else _as_is


def _as_is(_text: str, moment: datetime) -> datetime:
    return moment


def _sqlite_text(text: str, moment: datetime) -> str:
    """``sqlite_time(moment)``, cut from the text itself when it is UTC with 6 or 3 decimals (a fifth of the cost).

    ``text`` is what ``moment`` was read from (``domain.parse_time``). The two shapes are what the tracker's
    ``Date.toISOString()`` and Python's ``isoformat()`` write; a text of that length and zone can have no other
    layout under ``domain.Timestamp``'s pattern.
    """
    if len(text) == 32 and text.endswith("+00:00"):  # 2026-11-28T17:06:29.123456+00:00
        return f"{text[:10]} {text[11:26]}"
    if len(text) == 24 and text[23] == "Z":  # 2026-11-28T17:06:29.123Z
        return f"{text[:10]} {text[11:23]}000"
    return sqlite_time(moment)


def sqlite_time(moment: datetime) -> str:
    """As ``UtcDateTime`` stores it on SQLite: naive UTC, microseconds always written."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]  # without its "+00:00"


def _sqlite(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under ``conn`` in the one-process mode (``platform.sqlite_inline``), else None."""
    driver = conn.sync_connection.connection.driver_connection if conn.sync_connection is not None else None
    return driver.raw if isinstance(driver, InlineConnection) else None


def runs_on_the_loop(conn: AsyncConnection) -> bool:
    """True when this connection's statements run on the event loop's thread (embedded SQLite)."""
    return _sqlite(conn) is not None


async def insert_events(conn: AsyncConnection, rows: Sequence[EventRow], *, statements: Counter) -> int:
    """Store the events that are not stored yet; returns how many were new.

    ``statements`` counts the statement when it goes straight to sqlite3 (SQLAlchemy's event counts it
    otherwise). On the one-process mode's SQLite the rows go to sqlite3's ``executemany`` on the connection
    itself, as they are: through SQLAlchemy's async layer the call costs a few hundred µs more, which
    the processor's small slices (``handlers.store_batch``) would pay each.
    """
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return await _copy_events(conn, rows)
    raw = _sqlite(conn)
    if raw is None:  # SQLite shared between processes: aiosqlite's thread
        result = await conn.exec_driver_sql(_SQLITE_INSERT, list(rows))
        return int(result.rowcount or 0)
    try:
        cursor = raw.executemany(_SQLITE_INSERT, rows)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(_SQLITE_INSERT, None, exc, sqlite3.Error) from exc
    finally:
        statements.inc()
    return cursor.rowcount


async def _copy_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> int:
    """COPY into a temporary staging table, then move the new rows over: COPY cannot skip duplicates."""
    await conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS tracking_events_stage "
        "(LIKE tracking_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table("tracking_events_stage", records=rows, columns=COLUMNS)
    result = await conn.exec_driver_sql(
        f"INSERT INTO tracking_events ({', '.join(COLUMNS)}) "  # noqa: S608 - column names are ours
        f"SELECT {', '.join(COLUMNS)} FROM tracking_events_stage ON CONFLICT DO NOTHING"
    )
    await conn.exec_driver_sql("TRUNCATE tracking_events_stage")
    return int(result.rowcount or 0)


async def insert_failed(conn: AsyncConnection, rows: Sequence[tuple[str | None, str, str]], at: datetime) -> None:
    """Failed events: (event_id or None, reason, raw payload)."""
    if rows:
        await conn.execute(
            insert(failed_events),
            [{"event_id": e, "reason": r, "payload": p, "failed_at": at} for e, r, p in rows],
        )


def partition_name(day: date) -> str:
    return f"{PARTITION_PREFIX}{day:%Y%m%d}"


async def partitions(conn: AsyncConnection) -> list[date]:
    """The days that have a partition (PostgreSQL)."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracking_events'"
        )
    )
    days = []
    for (name,) in rows:
        if name.startswith(PARTITION_PREFIX):
            days.append(datetime.strptime(name[len(PARTITION_PREFIX) :], "%Y%m%d").replace(tzinfo=UTC).date())
    return sorted(days)


async def create_partition(conn: AsyncConnection, day: date) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    await conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF tracking_events "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


async def drop_partition(conn: AsyncConnection, day: date) -> None:
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {partition_name(day)}")


async def delete_before(conn: AsyncConnection, cutoff: datetime, *, limit: int = 10_000) -> int:
    """SQLite's retention: delete the oldest events, ``limit`` at a time (from the start of the table's key)."""
    oldest = select(events.c.ts, events.c.event_id).where(events.c.ts < cutoff).order_by(events.c.ts).limit(limit)
    result = await conn.execute(delete(events).where(tuple_(events.c.ts, events.c.event_id).in_(oldest)))
    return int(result.rowcount or 0)


async def delete_failed_before(conn: AsyncConnection, cutoff: datetime) -> int:
    result = await conn.execute(delete(failed_events).where(failed_events.c.failed_at < cutoff))
    return int(result.rowcount or 0)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        event_id=row.event_id,
        type=row.type,
        name=row.name,
        ts=row.ts,
        received_at=row.received_at,
        user_id=row.user_id,
        session_id=row.session_id,
        anonymous_id=row.anonymous_id,
        url=row.url,
        path=row.path,
        referrer=row.referrer,
        title=row.title,
        element=loads(row.element) if row.element else None,
        props=loads(row.props) if row.props else None,
        browser=row.browser,
        os=row.os,
        device=row.device,
        is_bot=bool(row.is_bot),
        subject_type=row.subject_type,
        subject_id=row.subject_id,
    )


def _where(where: EventFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for column in ("user_id", "session_id", "anonymous_id", "type"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(events.c[column] == value)
    if where.start is not None:
        clauses.append(events.c.ts >= where.start)
    if where.end is not None:
        clauses.append(events.c.ts < where.end)
    return clauses


async def find_events(
    conn: AsyncConnection, where: EventFilter, *, after: Cursor | None, limit: int
) -> list[StoredEvent]:
    """Newest first, by (ts, event_id); ``after``: the last item of the previous page."""
    clauses = _where(where)
    if after is not None:
        clauses.append(
            or_(events.c.ts < after.ts, and_(events.c.ts == after.ts, events.c.event_id < after.event_id))
        )
    stmt = select(events).where(*clauses).order_by(events.c.ts.desc(), events.c.event_id.desc()).limit(limit)
    return [_stored(row) for row in await conn.execute(stmt)]


def _bucket(conn: AsyncConnection, interval: Interval) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.date_trunc(interval, literal_column("tracking_events.ts AT TIME ZONE 'UTC'"))
    pattern = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}[interval]
    return func.strftime(pattern, events.c.ts)


def _as_utc(value: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def stats(
    conn: AsyncConnection, *, start: datetime, end: datetime, interval: Interval, type_: str | None
) -> list[StatsBucket]:
    bucket = _bucket(conn, interval).label("bucket")
    clauses = _where(EventFilter(type=type_, start=start, end=end))
    stmt = (
        select(
            bucket,
            events.c.type,
            func.count().label("events"),
            func.count(events.c.session_id.distinct()).label("sessions"),
            func.count(events.c.user_id.distinct()).label("users"),
        )
        .where(*clauses)
        .group_by(bucket, events.c.type)
        .order_by(bucket, events.c.type)
    )
    return [
        StatsBucket(_as_utc(row.bucket), row.type, row.events, row.sessions, row.users)
        for row in await conn.execute(stmt)
    ]


async def top_pages(conn: AsyncConnection, *, start: datetime, end: datetime, limit: int) -> list[PageCount]:
    views = func.count().label("views")
    stmt = (
        select(events.c.path, views, func.count(events.c.session_id.distinct()).label("sessions"))
        .where(*_where(EventFilter(type="page_view", start=start, end=end)))
        .group_by(events.c.path)
        .order_by(views.desc(), events.c.path)
        .limit(limit)
    )
    return [PageCount(row.path, row.views, row.sessions) for row in await conn.execute(stmt)]


async def count_events(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def failed(conn: AsyncConnection, *, limit: int = 100) -> list[tuple[str | None, str, str]]:
    rows = await conn.execute(
        select(failed_events.c.event_id, failed_events.c.reason, failed_events.c.payload)
        .order_by(failed_events.c.id.desc())
        .limit(limit)
    )
    return [(r.event_id, r.reason, r.payload) for r in rows]

