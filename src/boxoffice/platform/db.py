"""Databases and the unit of work.

Each service owns one database: a SQLite file under the data dir (embedded default) or PostgreSQL by URL.
Writes go through a ``UnitOfWork``: one transaction that rolls back unless ``commit()`` is called, and that
writes the service's outbox rows in that same transaction, so a state change and the events announcing it
commit or vanish together.

SQLite specifics, and why:

- WAL, ``synchronous=NORMAL`` and a busy timeout: readers never block the writer, a commit costs no fsync
  of the main file, and a second process (a CLI command, a migration) waits instead of failing.
- The WAL is written back into the file by a ``Checkpointer`` thread (every ``CHECKPOINT_SECONDS``), not by
  the commit that crosses SQLite's 1,000-page mark: that commit ran the checkpoint (page copies and an
  fsync, tens of milliseconds after a large batch) on the event loop, and every request waited for it.
- Write transactions start with ``BEGIN IMMEDIATE`` on ONE connection: SQLite has one writer anyway, so
  writers queue in-process (on a lock, or on a pool of one) instead of spinning on ``SQLITE_BUSY``, and a
  read-then-write transaction can never fail to upgrade its lock. Reads use a separate pool, statement by
  statement. Embedded, the write connection and idle read connections stay checked out between uses.
- Several processes on the same files (``boxoffice run --api-processes N``, ``sqlite_shared``): a unit of
  work whose ``BEGIN IMMEDIATE`` finds another process writing waits for it on the event loop (short async
  sleeps), not in SQLite's busy handler, which would stop every other request of the process meanwhile;
  and ``wait_for_outbox`` also wakes when another process commits to the file (``PRAGMA data_version``),
  so a relay in a worker process publishes what the API processes committed within milliseconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from boxoffice.platform import hotsql
from boxoffice.platform.aio import wait_event
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.bus.tables import outbox_insert
from boxoffice.platform.metrics import DB_STATEMENTS, counter
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


def _drop_closed_connections(engine: AsyncEngine) -> None:
    """A pooled PostgreSQL connection the server has closed (a restart, a terminated backend, an idle
    timeout) is replaced when it is checked out, as ``pool_pre_ping`` would, but without its round trips:
    asyncpg reads the server's goodbye and the socket's end while the connection sits in the pool, so
    ``is_closed()`` already knows. (SQLAlchemy's ping on asyncpg is three round trips, BEGIN, ``;`` and
    ROLLBACK, before every unit of work and every read.) A connection that dies while in use fails its
    statement, and SQLAlchemy then drops every connection the pool had opened before."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the server closed this connection")  # the pool connects anew, and retries


LOCK_WAITS = counter(
    "boxoffice_db_lock_wait_seconds_total",
    "Time units of work spent waiting for another process's write lock on a shared SQLite file",
    ("database",),
)
BUSY_TIMEOUT_SECONDS = 15.0
"""How long a writer waits for another process's write transaction before it fails (SQLite's busy timeout)."""


def _configure_sqlite(
    engine: AsyncEngine, *, writer: bool, name: str, shared: bool, checkpointed: bool = False
) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit begins are wrong for us).
        dbapi_connection.isolation_level = None
        # A shared file's inline writer waits for the lock itself (``_lock_waits``), without blocking the loop.
        inline_writer = writer and shared and isinstance(record.driver_connection, InlineConnection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={0 if inline_writer else int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if writer and checkpointed:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the ``Checkpointer`` thread does it
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
            if not _try_begin(driver):  # only a shared file's writer is ever told "busy" (timeout 0)
                for delay in _lock_waits():
                    time.sleep(delay)  # a synchronous hook cannot yield: it waits as SQLite's own handler would
                    if _try_begin(driver):
                        break
                else:
                    driver.execute_now("BEGIN IMMEDIATE")
            begins.inc()
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engines of one service's database, built in the lifespan, disposed at shutdown."""

    def __init__(
        self, url: str, *, name: str, pool_size: int = 20, sqlite_inline: bool = False, sqlite_shared: bool = False
    ) -> None:
        self.url = url
        self.name = name
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.statements = DB_STATEMENTS.labels(name)
        self.outbox_signal = asyncio.Event()
        self._watch: CommitWatch | None = None
        self._checkpointer: Checkpointer | None = None
        self._inline = False
        """Embedded SQLite: statements run on sqlite3 in the event loop's thread (``platform.sqlite_inline``)."""
        self._writer: AsyncConnection | None = None
        self._writer_turn = asyncio.Lock()
        self._readers: list[AsyncConnection] = []
        """Embedded SQLite: the write connection and idle read connections, kept checked out between units of
        work and reads (``_writer_turn`` says whose turn the writer is). SQLAlchemy's async connect and close
        cost 25 to 30 µs of CPU a time (greenlet switches, the pool's events), about as much as the statements
        of a small transaction on sqlite3, and a purchase opens about ten transactions and six reads."""
        self._writers: list[AsyncConnection] = []
        """PostgreSQL: idle write connections kept checked out (and ``_readers``: idle autocommit ones), up to
        ``KEPT`` each, out of the pool's ``pool_size``. A unit of work cost about 110 µs of CPU more than
        asyncpg's own BEGIN, statement and COMMIT, and a read 90 µs more than its SELECT: the pool's checkout
        and check-in, and a greenlet for each of connect, begin, commit and close."""
        self._kept_max = min(KEPT, pool_size // 4)
        self._connecting = 0
        """Tasks in ``engine.connect()``, any of which may be waiting for the pool: while there are some, a
        connection coming back goes to the pool, not to a list."""
        if self.is_sqlite:
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            inline: dict[str, Any] = {}
            if sqlite_inline and database and database != ":memory:":
                inline = {"async_creator": inline_creator(database)}
                self._inline = True
            # One writer at a time (SQLite has one anyway): embedded, units of work take turns on the kept
            # connection and the pool's second connection serves what uses the engine itself (schema set-up);
            # otherwise writers queue on the pool of one.
            self.engine = create_async_engine(
                url, pool_size=2 if inline else 1, max_overflow=0, pool_timeout=60, **inline
            )
            # Readers run in autocommit (no BEGIN, see ``_on_begin``): nothing to roll back when one is returned.
            self.read_engine = create_async_engine(
                url, pool_size=4, max_overflow=4, pool_reset_on_return=None, **inline
            )
            if inline:
                self._checkpointer = Checkpointer(str(database), name)
            _configure_sqlite(
                self.engine, writer=True, name=name, shared=sqlite_shared, checkpointed=self._checkpointer is not None
            )
            _configure_sqlite(self.read_engine, writer=False, name=name, shared=sqlite_shared)
            if sqlite_shared and database and database != ":memory:":
                self._watch = CommitWatch(database)
        else:
            # Every connection the pool opens, it keeps: "overflow" connections (beyond ``pool_size``) are closed
            # as soon as they are returned, and a service with more requests in flight than the pool's size
            # then opened one (a PostgreSQL backend forked, asyncpg's connect) every ~10 flash-sale purchases.
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=30)
            _drop_closed_connections(self.engine)
            # Reads run in autocommit, as on SQLite: no BEGIN and no ROLLBACK around them (each statement
            # reads its own snapshot, as it does under READ COMMITTED anyway). The same pool as the writes.
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # PostgreSQL's read engine is an option engine of the writes' one, and shares its events: listeners
        # registered on both would count each read twice.
        own_pools = (self.engine, self.read_engine) if self.is_sqlite else (self.engine,)
        for engine in own_pools:
            _count_statements(engine, name)
        for engine in (self.engine, self.read_engine):
            hotsql.count_on(engine.sync_engine, DB_STATEMENTS.labels(name))
        instrument_engines(*own_pools)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries only; its transaction is rolled back at the end."""
        if not self.is_sqlite:
            conn = await self._take_kept(self._readers, self.read_engine)
            try:
                yield conn
            except BaseException:
                await _close(conn)
                raise
            await self._keep(self._readers, conn)
            return
        if not self._inline:
            async with self.read_engine.connect() as conn:
                yield conn
            return
        # Embedded SQLite: closed by this task. SQLAlchemy's ``async with`` closes the connection in a task of
        # its own (so that a cancellation cannot cut the close short) and waits for that task: two turns of the
        # event loop, which during a flash sale are 100 to 200 ms, with the connection held all the while (the
        # relays' reads took that long, and the read pool ran dry). On sqlite3 here the close never suspends,
        # so there is nothing for a cancellation to cut short.
        conn = self._readers.pop() if self._readers else await self.read_engine.connect()
        try:
            yield conn
        finally:
            await self._put_reader(conn)

    async def _put_reader(self, conn: AsyncConnection) -> None:
        """Keep an embedded read connection for the next read, or close it (a broken one, or beyond the pool's
        size). Readers never BEGIN (``_on_begin``): ending SQLAlchemy's own transaction is all there is to end."""
        if conn.invalidated or conn.closed or len(self._readers) >= READERS_KEPT:
            await conn.close()
            return
        if conn.in_transaction():
            await conn.rollback()
        self._readers.append(conn)

    async def _take_kept(self, kept: list[AsyncConnection], engine: AsyncEngine) -> AsyncConnection:
        """PostgreSQL: the last kept connection that is still open, or a new one from ``engine``'s pool. A kept
        connection skips the pool's checkout, so the server's goodbye is looked for here
        (``_drop_closed_connections`` does it at checkout)."""
        while kept:
            conn = kept.pop()
            driver = _driver_of(conn)
            if not conn.invalidated and driver is not None and not driver.is_closed():
                return conn
            if not conn.invalidated:
                await conn.invalidate()  # the pool forgets it rather than resetting it
            await _close(conn)
        self._connecting += 1
        try:
            return await engine.connect()
        finally:
            self._connecting -= 1

    async def _keep(self, kept: list[AsyncConnection], conn: AsyncConnection) -> None:
        """PostgreSQL: end what is open on ``conn`` (a rollback) and keep it for the next use, or close it (a
        broken one, or beyond ``KEPT``). A rollback that fails closes it, and its error comes out."""
        try:
            if conn.in_transaction():
                await conn.rollback()
            await hotsql.end(conn, commit=False)  # a transaction only ``hotsql.run`` began
        except BaseException:
            await _close(conn)
            raise
        if conn.invalidated or conn.closed or len(kept) >= self._kept_max or self._connecting:
            await _close(conn)
            return
        kept.append(conn)

    async def _take_writer(self) -> AsyncConnection:
        """Embedded SQLite: the write connection, once it is this unit of work's turn."""
        await self._writer_turn.acquire()
        try:
            if self._writer is None:
                self._writer = await self.engine.connect()
            return self._writer
        except BaseException:
            self._writer_turn.release()
            raise

    async def _give_writer(self, conn: AsyncConnection) -> None:
        """The unit of work's turn ends: the connection stays for the next one, unless it is broken or a
        transaction is still open on it (a rollback cut short), which would hold the file's write lock."""
        try:
            driver = _inline_driver(conn)
            if conn.invalidated or conn.closed or (driver is not None and driver.raw.in_transaction):
                self._writer = None
                await conn.close()
        finally:
            self._writer_turn.release()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction with no outbox (the bus's own tables), committed when the block ends, rolled
        back when it raises: ``engine.begin()``, but begun as a unit of work is. On a SQLite file other
        processes share, SQLAlchemy's begin waits for their write lock in a synchronous hook, which stops
        the event loop (every request of the process) for as long as the other process writes."""
        async with self.uow() as uow:
            yield uow.conn
            await uow.commit()

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

    async def wait_for_outbox(self, timeout: float) -> bool:
        """Until this process commits outbox rows (``outbox_signal``) or, on a SQLite file other processes
        share, any of them commits to it; False after ``timeout`` seconds of neither."""
        if self._watch is None:
            return await wait_event(self.outbox_signal, timeout)
        deadline = time.monotonic() + timeout
        while not (self.outbox_signal.is_set() or self._watch.changed()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await wait_event(self.outbox_signal, min(remaining, COMMIT_WATCH_SECONDS))
        return True

    async def dispose(self) -> None:
        kept = [*self._readers, *self._writers, *([self._writer] if self._writer is not None else [])]
        self._readers, self._writers, self._writer = [], [], None
        for conn in kept:
            await conn.close()
        if self._watch is not None:
            self._watch.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.close)
        await self.engine.dispose()
        if self.is_sqlite:  # PostgreSQL's reads use the writes' pool
            await self.read_engine.dispose()


def _lock_waits() -> Iterator[float]:
    """Pauses between attempts at a locked file: 0.2 ms doubling to 5 ms, for ``BUSY_TIMEOUT_SECONDS``."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.0002
    while time.monotonic() < deadline:
        yield delay
        delay = min(delay * 2, 0.005)


def _try_begin(driver: InlineConnection) -> bool:
    """``BEGIN IMMEDIATE``: True once begun, False while another process holds the write lock."""
    try:
        driver.execute_now("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        return False
    return True


async def _begin_immediate(driver: InlineConnection, database: str) -> None:
    """``BEGIN IMMEDIATE`` for a unit of work: while another process writes, wait on the event loop."""
    if _try_begin(driver):
        return
    started = time.monotonic()
    try:
        for delay in _lock_waits():
            await asyncio.sleep(delay)
            if _try_begin(driver):
                return
        driver.execute_now("BEGIN IMMEDIATE")  # a last attempt: it begins, or raises "database is locked"
    finally:
        LOCK_WAITS.labels(database).inc(time.monotonic() - started)


def _driver_of(conn: AsyncConnection) -> Any:
    """The driver's own connection under ``conn`` (asyncpg's, the embedded sqlite3 one...), None once closed."""
    return conn.sync_connection.connection.driver_connection if conn.sync_connection is not None else None


def _inline_driver(conn: AsyncConnection) -> InlineConnection | None:
    """The embedded sqlite3 connection under ``conn``, or None (aiosqlite's, asyncpg's, or closed)."""
    driver = _driver_of(conn)
    return driver if isinstance(driver, InlineConnection) else None


READERS_KEPT = 4
"""Embedded SQLite: idle read connections kept for the next reads (the read pool's size)."""

KEPT = 4
"""PostgreSQL: idle connections kept checked out for the next units of work, and as many for the next reads
(a quarter of the pool's ``pool_size`` each, at most). Kept ones count against the pool: a request that finds
none in its list waits for the pool, so a connection comes back to the pool, not to a list, while any request
waits there; and since the idle ones in both lists are at most half the pool, a request only ever waits for
connections in use."""


async def _close(conn: AsyncConnection) -> None:
    """Return ``conn`` to its pool (which rolls back what is open), even if the caller is being cancelled."""
    await asyncio.shield(conn.close())


CHECKPOINT_SECONDS = 0.25
"""How often a ``Checkpointer`` writes a SQLite file's WAL back into the file."""


class Checkpointer:
    """Writes a SQLite file's WAL back into the file from a thread of its own (``PRAGMA
    wal_checkpoint(PASSIVE)``: never waits for readers or the writer, copies what it can). SQLite runs it
    without Python's interpreter lock, so the event loop serves on meanwhile; the writer connections stop
    doing it themselves (``wal_autocheckpoint=0``)."""

    def __init__(self, path: str, database: str) -> None:
        self.path = path
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint-{database}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stopped.wait(CHECKPOINT_SECONDS):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy, or the file is not there yet: the next round tries again
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)


COMMIT_WATCH_SECONDS = 0.025
"""How often ``wait_for_outbox`` looks for other processes' commits to a shared SQLite file."""


class CommitWatch:
    """Notices commits other connections made to a SQLite file: ``PRAGMA data_version`` changes when any
    other connection (of this process or another) commits. A few microseconds a look, no lock taken."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None

    def changed(self) -> bool:
        version = self.version()
        changed, self._version = self._version is not None and version != self._version, version
        return changed

    def version(self) -> int:
        """A number that changes whenever another connection has committed to the file since the last look."""
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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

    ``last(write)`` keeps a write for the end: ``commit()`` runs it after the outbox rows, just before
    COMMIT. It is for the one row that every transaction of a sale changes (a general-admission section's
    counts): PostgreSQL keeps a changed row locked until COMMIT, so a transaction that changed it first and
    then made five more round trips kept every other buyer of the section waiting for all of them. Measured
    in a ``--processes`` sale at 64 buyers: eleven of booking's connections on average were waiting for
    that row's lock. On SQLite the order changes nothing (the whole database has one writer from BEGIN on).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._events: list[Envelope] = []
        self._last: list[Callable[[], Awaitable[object]]] = []
        self._committed = False
        self._raw: sqlite3.Connection | None = None  # embedded SQLite: the transaction is begun and ended on it

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        if self.db._inline:
            # Embedded SQLite: the kept write connection, BEGIN and COMMIT straight on sqlite3, two trips through
            # SQLAlchemy's async layer fewer per transaction. Statements run through SQLAlchemy find the
            # transaction open (``_on_begin``).
            self._conn = conn = await self.db._take_writer()
            driver = _inline_driver(conn)
            try:
                assert driver is not None
                if conn.in_transaction():  # SQLAlchemy's, left by a unit of work whose rollback was cut short
                    await conn.rollback()
                await _begin_immediate(driver, self.db.name)
            except BaseException:
                self._conn = None
                await self.db._give_writer(conn)
                raise
            self.db.statements.inc()
            self._raw = driver.raw
            return self
        if not self.db.is_sqlite:
            # PostgreSQL: a kept connection. The transaction begins at the first statement, as SQLAlchemy's
            # adapter begins it, and ``commit()`` ends it on asyncpg when only ``hotsql`` used the connection.
            self._conn = await self.db._take_kept(self.db._writers, self.db.engine)
            return self
        self._conn = conn = await self.db.engine.connect()
        try:
            await conn.begin()
        except BaseException:  # cancelled, say, after the driver began: the transaction is open
            self._conn = None
            await conn.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        raw, self._raw = self._raw, None
        if conn is None:
            return
        if not self.db.is_sqlite:
            if exc_type is None:
                await self.db._keep(self.db._writers, conn)
            else:
                await _close(conn)
        else:
            await self._end_sqlite(conn, raw)
        if self._committed and self._events:
            self.db.outbox_signal.set()

    async def _end_sqlite(self, conn: AsyncConnection, raw: sqlite3.Connection | None) -> None:
        try:
            if conn.in_transaction():
                await conn.rollback()
            elif raw is not None and raw.in_transaction:
                raw.rollback()
        finally:
            if self.db._inline:
                await self.db._give_writer(conn)
            else:
                await conn.close()

    def publish(self, topic: str, type_: str, *, key: str, data: dict[str, Any], source: str | None = None) -> Envelope:
        """Record an event to be written to the outbox with this transaction."""
        envelope = new_event(type_, source=source or self.db.name, key=key, data=data, topic=topic)
        self._events.append(envelope)
        return envelope

    @property
    def events(self) -> Sequence[Envelope]:
        return tuple(self._events)

    def last(self, write: Callable[[], Awaitable[object]]) -> None:
        """Run ``write`` in ``commit()``, after the outbox rows of the events published so far and before
        COMMIT, in the order given; events it publishes are written after it. An error it raises comes out
        of ``commit()``, and the transaction rolls back as for any other."""
        self._last.append(write)

    async def commit(self) -> None:
        written = 0
        while True:
            if len(self._events) > written:
                await hotsql.run(self.conn, outbox_insert(), [e.outbox_row() for e in self._events[written:]])
                written = len(self._events)
            if not self._last:
                break
            await self._last.pop(0)()
        if self._raw is not None and not self.conn.in_transaction():
            try:
                self._raw.commit()
            except sqlite3.Error as exc:
                raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
            self.db.statements.inc()
        elif not self.db.is_sqlite and not self.conn.in_transaction() and await hotsql.end(self.conn, commit=True):
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
