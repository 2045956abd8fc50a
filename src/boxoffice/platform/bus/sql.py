"""The embedded bus backend: a durable, partitioned log in a SQL database (SQLite in the data dir by default).

The model is Kafka's: a topic has ``partitions`` logs; an event goes to the partition of its key; each log
is numbered by offsets without gaps; a consumer group keeps one position per (topic, partition).

Appends to one partition are serialised by the row of ``bus_heads`` that hands out its offsets, so offsets
are in commit order and a reader never skips an event that commits late (the trap of reading a plain
auto-increment column on PostgreSQL). One member of a group holds the group's lease and reads every
partition; another member takes over when the lease lapses. (Spreading partitions over members is what the
kafka backend is for.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex

from boxoffice.platform import hotsql
from boxoffice.platform.aio import wait_event
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Record
from boxoffice.platform.db import CommitWatch, Database
from boxoffice.platform.metrics import BUS_CONSUMER_LAG
from boxoffice.platform.periodic import repeat

log = structlog.get_logger("boxoffice.bus")

TRIM_INTERVAL = 3600.0
"""Seconds between two retention trims of the log."""
metadata = MetaData()

bus_log = Table(
    "bus_log",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("appended_at", Float, nullable=False),
    # The retention trim deletes by age: without this it reads the whole log every time.
    Index("ix_bus_log_appended_at", "appended_at"),
)
bus_heads = Table(
    "bus_heads",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)
bus_positions = Table(
    "bus_positions",
    metadata,
    Column("consumer_group", String(200), primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("position", BigInteger, nullable=False),
)
bus_leases = Table(
    "bus_leases",
    metadata,
    Column("consumer_group", String(200), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("expires_at", Float, nullable=False),
)


def _create_schema(conn: Connection) -> None:
    metadata.create_all(conn)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))  # one statement: safe when processes race


def _upsert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


class SqlBus:
    name = "sql"

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 8,
        poll_interval: float = 0.2,
        sqlite_inline: bool = False,
        sqlite_shared: bool = False,
        retention_seconds: float = 7 * 24 * 3600,
    ) -> None:
        self.db = Database(url, name="bus", sqlite_inline=sqlite_inline, sqlite_shared=sqlite_shared)
        path = make_url(url).database if self.db.is_sqlite else None
        self._watch = CommitWatch(path) if path and path != ":memory:" else None
        """On a SQLite file: tells an idle consumer whether anything was committed since it last read."""
        self.partitions = partitions
        self.poll_interval = poll_interval
        self.retention_seconds = retention_seconds
        self._waiters: dict[asyncio.Event, frozenset[str]] = {}  # in-process consumers and their topics
        self._trimmer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the bus's tables and indexes where missing (the bus database is the bus's alone: its
        schema is this metadata, and an index added later is created in a log that exists already)."""
        async with self.db.engine.begin() as conn:
            await conn.run_sync(_create_schema)
        if self.retention_seconds > 0:
            self._trimmer = asyncio.create_task(self._trim_forever(), name="bus:trim")

    async def stop(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        if self._watch is not None:
            self._watch.close()
        await self.db.dispose()

    async def trim(self, *, now: float | None = None) -> int:
        """Delete events older than the retention, as Kafka's retention.ms does; returns how many.

        Offsets are never reused (the heads keep counting), so consumers' positions stay valid; a group that
        lags behind by more than the retention misses what was deleted, as it would on Kafka.
        """
        cutoff = (now if now is not None else time.time()) - self.retention_seconds
        async with self.db.begin() as conn:
            result = await conn.execute(delete(bus_log).where(bus_log.c.appended_at < cutoff))
        return int(result.rowcount or 0)

    async def _trim_forever(self, every: float = TRIM_INTERVAL) -> None:
        """The ``bus.retention-trim`` loop (``platform.periodic``): a trim at start and then every ``every``
        seconds; a failed trim is logged, counted and tried again after a jittered back-off."""

        async def step() -> None:
            await self.trim()

        await repeat("bus.retention-trim", step, interval=every, max_backoff=300.0)

    async def ping(self) -> None:
        await self.db.ping()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        by_partition: dict[tuple[str, int], list[Envelope]] = defaultdict(list)
        for envelope in envelopes:
            by_partition[(envelope.topic, envelope.partition(self.partitions))].append(envelope)
        now = time.time()
        async with self.db.begin() as conn:
            for (topic, partition), items in sorted(by_partition.items()):
                if conn.dialect.name == "sqlite":
                    await _append_sqlite(conn, topic, partition, items, now)
                    continue
                await conn.execute(
                    _upsert(conn, bus_heads)
                    .values(topic=topic, partition=partition, next_offset=0)
                    .on_conflict_do_nothing()
                )
                head = (
                    await conn.execute(
                        update(bus_heads)
                        .where(and_(bus_heads.c.topic == topic, bus_heads.c.partition == partition))
                        .values(next_offset=bus_heads.c.next_offset + len(items))
                        .returning(bus_heads.c.next_offset)
                    )
                ).scalar_one()
                first = head - len(items)
                await conn.execute(
                    insert(bus_log),
                    [
                        {
                            "topic": topic,
                            "partition": partition,
                            "offset": first + i,
                            "key": e.key,
                            "payload": e.to_json().decode(),
                            "appended_at": now,
                        }
                        for i, e in enumerate(items)
                    ],
                )
        topics = {envelope.topic for envelope in envelopes}
        for waiter, wanted in self._waiters.items():
            if wanted & topics:  # wake only the consumers of these topics
                waiter.set()

    def consumer(self, group: str, topics: Sequence[str]) -> SqlConsumer:
        return SqlConsumer(self, group, topics)


_SQLITE_HEAD = 'INSERT INTO bus_heads (topic, "partition", next_offset) VALUES (?, ?, 0) ON CONFLICT DO NOTHING'
_SQLITE_ADVANCE = (
    'UPDATE bus_heads SET next_offset = next_offset + ? WHERE topic = ? AND "partition" = ? RETURNING next_offset'
)
_SQLITE_APPEND = (
    'INSERT INTO bus_log (topic, "partition", "offset", key, payload, appended_at) VALUES (?, ?, ?, ?, ?, ?)'
)


async def _append_sqlite(
    conn: AsyncConnection, topic: str, partition: int, items: Sequence[Envelope], now: float
) -> None:
    """``publish``'s three statements for one partition, as SQL text straight to the driver on SQLite.

    The same statements as the Core constructs beside it, without building and compiling those on every
    call: that cost about 1.7 ms of CPU per partition appended to (an append of one small event took
    more CPU than the slowest of its statements), and the clickstream collector appends on every request.
    """
    await hotsql.run_text(conn, _SQLITE_HEAD, (topic, partition))
    head = (await hotsql.run_text(conn, _SQLITE_ADVANCE, (len(items), topic, partition))).one()[0]
    first = head - len(items)
    await hotsql.run_text(
        conn,
        _SQLITE_APPEND,
        [(topic, partition, first + i, e.key, e.to_json().decode(), now) for i, e in enumerate(items)],
        many=True,
    )


# The consumer's statements on SQLite as SQL text (the Core constructs beside them, built and looked up in
# SQLAlchemy's cache on every poll, cost more CPU than the statements; a processor polls several times a second).
_SQLITE_HEADS = 'SELECT topic, "partition", next_offset FROM bus_heads WHERE topic IN ({})'
_SQLITE_READ = (
    'SELECT "offset", payload FROM bus_log WHERE topic = ? AND "partition" = ? AND "offset" >= ? '
    'ORDER BY "offset" LIMIT ?'
)
_SQLITE_POSITION = (
    'INSERT INTO bus_positions (consumer_group, topic, "partition", position) VALUES (?, ?, ?, ?) '
    'ON CONFLICT (consumer_group, topic, "partition") DO UPDATE SET position = excluded.position'
)


async def read_heads(conn: AsyncConnection, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """Where the log of each partition of ``topics`` ends: (topic, partition) -> the next offset."""
    if conn.dialect.name == "sqlite":  # SQL text straight to the driver, as ``_append_sqlite``
        marks = ", ".join("?" for _ in topics)
        found: Iterable[Any] = await hotsql.run_text(conn, _SQLITE_HEADS.format(marks), topics)
    else:
        found = await conn.execute(
            select(bus_heads.c.topic, bus_heads.c.partition, bus_heads.c.next_offset).where(
                bus_heads.c.topic.in_(topics)
            )
        )
    return {(t, p): head for t, p, head in found}


async def read_log(conn: AsyncConnection, topic: str, partition: int, start: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` records of one partition from offset ``start`` on: (offset, payload), in order."""
    if conn.dialect.name == "sqlite":
        found: Iterable[Any] = await hotsql.run_text(conn, _SQLITE_READ, (topic, partition, start, limit))
    else:
        found = await conn.execute(
            select(bus_log.c.offset, bus_log.c.payload)
            .where(and_(bus_log.c.topic == topic, bus_log.c.partition == partition, bus_log.c.offset >= start))
            .order_by(bus_log.c.offset)
            .limit(limit)
        )
    return [(offset, payload) for offset, payload in found]


class SqlConsumer:
    lease_seconds = 10.0

    def __init__(self, bus: SqlBus, group: str, topics: Sequence[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wakeup = asyncio.Event()
        self._idle_at: int | None = None  # the bus file's data_version at this consumer's last empty read
        self._positions: dict[tuple[str, int], int] | None = None
        self._heads: dict[tuple[str, int], int] = {}  # the log ends as last read, for the lag gauge
        self._lease_until = 0.0

    async def start(self) -> None:
        self.bus._waiters[self._wakeup] = frozenset(self.topics)

    async def stop(self) -> None:
        self.bus._waiters.pop(self._wakeup, None)
        self._forget_lag()
        if self._lease_until > time.time():
            async with self.bus.db.begin() as conn:
                await conn.execute(
                    update(bus_leases)
                    .where(and_(bus_leases.c.consumer_group == self.group, bus_leases.c.owner == self.owner))
                    .values(expires_at=0.0)
                )
            self._lease_until = 0.0

    async def _hold_lease(self) -> bool:
        now = time.time()
        if self._lease_until - now > self.lease_seconds / 2:
            return True
        async with self.bus.db.begin() as conn:
            await conn.execute(
                _upsert(conn, bus_leases)
                .values(consumer_group=self.group, owner=self.owner, expires_at=0.0)
                .on_conflict_do_nothing()
            )
            taken = await conn.execute(
                update(bus_leases)
                .where(
                    and_(
                        bus_leases.c.consumer_group == self.group,
                        (bus_leases.c.owner == self.owner) | (bus_leases.c.expires_at < now),
                    )
                )
                .values(owner=self.owner, expires_at=now + self.lease_seconds)
            )
        if taken.rowcount != 1:
            self._lease_until, self._positions = 0.0, None
            self._forget_lag()  # another member reads (and reports) the group now
            return False
        if self._lease_until < now:  # newly (re)acquired: another member may have moved the positions
            self._positions = None
        self._lease_until = now + self.lease_seconds
        return True

    async def _load_positions(self, conn: AsyncConnection) -> dict[tuple[str, int], int]:
        rows = await conn.execute(
            select(bus_positions.c.topic, bus_positions.c.partition, bus_positions.c.position).where(
                and_(bus_positions.c.consumer_group == self.group, bus_positions.c.topic.in_(self.topics))
            )
        )
        return {(t, p): pos for t, p, pos in rows}

    async def _fetch(self, max_records: int) -> list[Record]:
        async with self.bus.db.read() as conn:
            if self._positions is None:
                self._positions = await self._load_positions(conn)
            self._heads = await read_heads(conn, self.topics)
            self._report_lag()
            behind = [(t, p) for (t, p), head in self._heads.items() if head > self._positions.get((t, p), 0)]
            records: list[Record] = []
            for topic, partition in behind:
                if len(records) >= max_records:
                    break
                position, limit = self._positions.get((topic, partition), 0), max_records - len(records)
                rows = await read_log(conn, topic, partition, position, limit)
                records.extend(
                    Record(topic, partition, offset, Envelope.from_json(payload, topic=topic))
                    for offset, payload in rows
                )
            return records

    async def poll(self, *, max_records: int = 200, timeout: float = 1.0) -> list[Record]:
        """The next records after the group's positions, waiting up to ``timeout`` for some.

        An idle consumer wakes every ``poll_interval`` for appends made by other processes. On a SQLite
        file it reads the log only when something was committed to the file since its last empty read
        (``PRAGMA data_version``, a few µs) or a publish in this process woke it: the read it saves (a
        pooled connection, the heads, the lag) cost about half a millisecond, and ``boxoffice run`` has
        some twenty groups, most of them idle, each waking five times a second."""
        deadline = time.monotonic() + timeout
        while True:
            woken = self._wakeup.is_set()
            self._wakeup.clear()
            if await self._hold_lease():
                version = self.bus._watch.version() if self.bus._watch is not None else None
                if woken or version is None or version != self._idle_at or self._positions is None:
                    records = await self._fetch(max_records)
                    if records:
                        self._idle_at = None  # not committed yet: read again next time, whatever the file says
                        return records
                    self._idle_at = version
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await wait_event(self._wakeup, min(remaining, self.bus.poll_interval))

    async def commit(self, records: Sequence[Record]) -> None:
        if not records:
            return
        newest: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            newest[key] = max(newest.get(key, -1), record.offset + 1)
        async with self.bus.db.begin() as conn:
            if conn.dialect.name == "sqlite":
                await hotsql.run_text(
                    conn,
                    _SQLITE_POSITION,
                    [(self.group, t, p, position) for (t, p), position in newest.items()],
                    many=True,
                )
            else:
                for (topic, partition), position in newest.items():
                    stmt = _upsert(conn, bus_positions).values(
                        consumer_group=self.group, topic=topic, partition=partition, position=position
                    )
                    await conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["consumer_group", "topic", "partition"],
                            set_={"position": position},
                        )
                    )
        if self._positions is not None:
            self._positions.update(newest)
            self._report_lag()

    def _report_lag(self) -> None:
        positions = self._positions or {}
        for (topic, partition), head in self._heads.items():
            # Trimmed events below the head were never handled either; a position past the head cannot be.
            lag = max(0, head - positions.get((topic, partition), 0))
            BUS_CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)

    def _forget_lag(self) -> None:
        for topic, partition in self._heads:
            with contextlib.suppress(KeyError):
                BUS_CONSUMER_LAG.remove(self.group, topic, str(partition))
        self._heads = {}
