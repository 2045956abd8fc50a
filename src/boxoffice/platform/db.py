"""Databases and the unit of work.

Each service owns one database: a SQLite file under the data dir (embedded default) or PostgreSQL by URL.
Writes go through a ``UnitOfWork``: one transaction that rolls back unless ``commit()`` is called, and that
writes the service's outbox rows in that same transaction, so a state change and the events announcing it
commit or vanish together.

SQLite specifics, and why:

- WAL, ``synchronous=NORMAL`` and a busy timeout: readers never block the writer, a commit costs no fsync
  of the main file, and a second process (a CLI command, a migration) waits instead of failing.
- Write transactions start with ``BEGIN IMMEDIATE`` on a pool of ONE connection: SQLite has one writer
  anyway, so writers queue in-process on the pool instead of spinning on ``SQLITE_BUSY``, and a read-then-
  write transaction can never fail to upgrade its lock. Reads use a separate pool, statement by statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from boxoffice.platform import hotsql
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.bus.tables import outbox_insert
from boxoffice.platform.metrics import DB_STATEMENTS
from boxoffice.platform.sqlite_inline import InlineConnection, inline_creator
from boxoffice.platform.tracing import instrument_engines

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _count_statements(engine: AsyncEngine, database: str) -> None:
    """``boxoffice_db_statements_total{database}``: every statement sent, BEGIN and COMMIT included
    (``loadtest/compare.py`` divides it by the flows of a run)."""
    statements = DB_STATEMENTS.labels(database)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _on_execute(*_: Any) -> None:
        statements.inc()

    @event.listens_for(engine.sync_engine, "commit")
    def _on_commit(_conn: Any) -> None:
        statements.inc()


def _configure_sqlite(engine: AsyncEngine, *, writer: bool, name: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit begins are wrong for us).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    begins = DB_STATEMENTS.labels(name)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers issue no BEGIN: each SELECT then reads its own snapshot, which is all a read needs, and a
        # read costs one statement instead of three.
        if not writer:
            return
        driver = conn.connection.driver_connection
        if isinstance(driver, InlineConnection):  # straight to sqlite3: no SQLAlchemy statement machinery
            if driver.raw.in_transaction:  # the unit of work began it already (``UnitOfWork.__aenter__``)
                return
            driver.execute_now("BEGIN IMMEDIATE")
            begins.inc()
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engines of one service's database, built in the lifespan, disposed at shutdown."""

    def __init__(self, url: str, *, name: str, pool_size: int = 10, sqlite_inline: bool = False) -> None:
        self.url = url
        self.name = name
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.statements = DB_STATEMENTS.labels(name)
        self.outbox_signal = asyncio.Event()
        if self.is_sqlite:
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            inline: dict[str, Any] = {}
            if sqlite_inline and database and database != ":memory:":
                inline = {"async_creator": inline_creator(database)}
            self.engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, **inline)
            # Readers run in autocommit (no BEGIN, see ``_on_begin``): nothing to roll back when one is returned.
            self.read_engine = create_async_engine(
                url, pool_size=4, max_overflow=4, pool_reset_on_return=None, **inline
            )
            _configure_sqlite(self.engine, writer=True, name=name)
            _configure_sqlite(self.read_engine, writer=False, name=name)
        else:
            self.engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=30
            )
            self.read_engine = self.engine
        for engine in dict.fromkeys((self.engine, self.read_engine)):
            _count_statements(engine, name)
            hotsql.count_on(engine.sync_engine, DB_STATEMENTS.labels(name))
        instrument_engines(self.engine, self.read_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries only; its transaction is rolled back at the end."""
        async with self.read_engine.connect() as conn:
            yield conn

    async def transact(self, work: Callable[[UnitOfWork], Awaitable[T]], *, attempts: int = 3) -> T:
        """Run ``work`` in a unit of work and commit; run it again if the database chose it as the victim
        of a deadlock or a serialization failure (PostgreSQL), which rolled back everything it did."""
        for attempt in range(attempts):
            try:
                async with self.uow() as uow:
                    result = await work(uow)
                    await uow.commit()
                    return result
            except DBAPIError as exc:
                if attempt + 1 >= attempts or not _is_transient(exc):
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in {"40001", "40P01"} or "deadlock detected" in str(exc.orig)


class UnitOfWork:
    """One write transaction. Rolls back unless ``commit()`` is called; collects outbox rows.

    Usage::

        async with db.uow() as uow:
            await uow.conn.execute(...)
            uow.publish("ticket-bookings", "booking.order-confirmed", key=str(event_id), data={...})
            await uow.commit()
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._events: list[Envelope] = []
        self._committed = False
        self._raw: sqlite3.Connection | None = None  # embedded SQLite: the transaction is begun and ended on it

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = conn = await self.db.engine.connect()
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection is not None else None
        if isinstance(driver, InlineConnection):
            # Embedded SQLite: BEGIN and COMMIT straight on sqlite3, two trips through SQLAlchemy's async layer
            # fewer per transaction. Statements run through SQLAlchemy find the transaction open (``_on_begin``).
            try:
                driver.execute_now("BEGIN IMMEDIATE")
            except BaseException:
                self._conn = None
                await conn.close()
                raise
            self.db.statements.inc()
            self._raw = driver.raw
        else:
            await conn.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        raw, self._raw = self._raw, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
            elif raw is not None and raw.in_transaction:
                raw.rollback()
        finally:
            await conn.close()
        if self._committed and self._events:
            self.db.outbox_signal.set()

    def publish(self, topic: str, type_: str, *, key: str, data: dict[str, Any], source: str | None = None) -> Envelope:
        """Record an event to be written to the outbox with this transaction."""
        envelope = new_event(type_, source=source or self.db.name, key=key, data=data, topic=topic)
        self._events.append(envelope)
        return envelope

    @property
    def events(self) -> Sequence[Envelope]:
        return tuple(self._events)

    async def commit(self) -> None:
        if self._events:
            await hotsql.run(self.conn, outbox_insert(), [e.outbox_row() for e in self._events])
        if self._raw is not None and not self.conn.in_transaction():
            try:
                self._raw.commit()
            except sqlite3.Error as exc:
                raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
            self.db.statements.inc()
        else:
            await self.conn.commit()
        self._committed = True


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores them naive; we give them back in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
