"""The unit of work on real SQLite and PostgreSQL: all or nothing, outbox rows included."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
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
    """What a cancelled unit of work may leave: a connection checked out of the pool (embedded SQLite keeps
    its one write connection checked out between units of work), or on SQLite the file's write lock held."""
    kept = 1 if db._writer is not None else 0
    if db.engine.sync_engine.pool.checkedout() > kept:  # type: ignore[attr-defined]
        return "a connection left checked out"
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
    on the pool's one connection."""
    async with db.read() as conn:  # the pool's connection, opened now: the block checks it out again
        driver = (await conn.get_raw_connection()).driver_connection
    queries: list[str] = []

    def log(record: Any) -> None:
        queries.append(record.query.split()[0].rstrip(";").upper())

    driver.add_query_logger(log)
    try:
        yield queries
    finally:
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
