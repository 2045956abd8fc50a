"""SQLite files several processes write (``boxoffice run --api-processes N``), on real SQLite.

Two ``Database`` objects on one file stand for two processes: each has its own connections, so one's write
transaction locks the other out exactly as another process's would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.bus.sql import SqlBus, SqlConsumer
from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import LOCK_WAITS, Database

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
add_messaging_tables(metadata)


class Ticker:
    """Counts the turns of the event loop every 10 ms: a loop stopped by a synchronous wait counts none."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def stop(self) -> None:
        self._task.cancel()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first = Database(url, name="first", sqlite_inline=True, sqlite_shared=True)
    second = Database(url, name="second", sqlite_inline=True, sqlite_shared=True)
    async with first.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_a_writer_waits_for_another_process_without_stopping_its_loop(pair: tuple[Database, Database]) -> None:
    first, second = pair

    async def second_writes() -> None:
        async with second.uow() as uow:  # the file is locked by ``first``: this waits
            await uow.conn.execute(insert(things).values(id=2, name="second"))
            await uow.commit()

    waited_before = LOCK_WAITS.labels("second")._value.get()
    ticker = Ticker()
    async with first.uow() as uow:
        await uow.conn.execute(insert(things).values(id=1, name="first"))
        waiting = asyncio.create_task(second_writes())
        await asyncio.sleep(0.3)  # SQLite's own busy handler would hold the loop here: no tick, no sleep end
        assert not waiting.done()
        assert ticker.ticks >= 5, "the loop kept running while the other writer waited for the lock"
        await uow.commit()
    await asyncio.wait_for(waiting, timeout=5)  # the lock is free: the second writer goes through
    ticker.stop()
    assert LOCK_WAITS.labels("second")._value.get() - waited_before >= 0.2  # the wait is in the metrics
    async with first.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(things))).scalar_one() == 2


async def test_a_relay_hears_of_another_processs_outbox_rows_at_once(pair: tuple[Database, Database]) -> None:
    first, second = pair
    assert not await second.wait_for_outbox(0.05)  # nothing committed: the wait times out

    async def commit_elsewhere() -> None:
        await asyncio.sleep(0.1)
        async with first.uow() as uow:
            await uow.conn.execute(insert(things).values(id=1, name="first"))
            uow.publish("things", "test.thing-made", key="1", data={"id": 1})
            await uow.commit()

    writer = asyncio.create_task(commit_elsewhere())
    started = time.monotonic()
    assert await second.wait_for_outbox(10.0)  # ``second``'s own signal never fires: the file told it
    assert time.monotonic() - started < 5.0
    await writer


async def test_one_process_keeps_sqlites_own_wait(tmp_path: Path) -> None:
    """Without ``sqlite_shared`` nothing changes: no watch, and the outbox signal alone wakes a relay."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}", name="alone", sqlite_inline=True)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        assert not await db.wait_for_outbox(0.05)
        async with db.uow() as uow:
            uow.publish("things", "test.thing-made", key="1", data={"id": 1})
            await uow.commit()
        assert await db.wait_for_outbox(0.05)
    finally:
        await db.dispose()


@asynccontextmanager
async def two_processes_buses(path: Path, **here: float) -> AsyncIterator[tuple[SqlBus, SqlConsumer, SqlBus]]:
    """The sql bus of two processes on one file: ``here`` (with a consumer of ``things``) and ``elsewhere``."""
    url = f"sqlite+aiosqlite:///{path}"
    buses = [
        SqlBus(url, sqlite_inline=True, sqlite_shared=True, **{"retention_seconds": 0, **here}),
        SqlBus(url, sqlite_inline=True, sqlite_shared=True, retention_seconds=0),
    ]
    for bus in buses:
        await bus.start()
    consumer = buses[0].consumer("readers", ["things"])
    await consumer.start()
    try:
        yield buses[0], consumer, buses[1]
    finally:
        await consumer.stop()
        for bus in buses:
            await bus.stop()


async def test_the_sql_bus_waits_for_another_processs_writer_without_stopping_its_loop(tmp_path: Path) -> None:
    """An append, a consumer's commit and a trim on a bus file another process is writing wait on the event
    loop: through SQLAlchemy's own begin they waited in a synchronous hook, every request of the process
    with them (the collector's latency under ``run --api-processes``)."""
    async with two_processes_buses(tmp_path / "bus.db", retention_seconds=3600) as (here, consumer, elsewhere):
        await here.publish([new_event("test.thing-made", source="test", key="k", data={"n": 0}, topic="things")])
        records = await consumer.poll(max_records=10, timeout=5)
        assert len(records) == 1

        async def writes_here() -> None:
            await here.publish([new_event("test.thing-made", source="test", key="k", data={"n": 1}, topic="things")])
            await consumer.commit(records)
            await here.trim()

        ticker = Ticker()
        async with elsewhere.db.uow() as uow:  # the other process's write transaction locks the file
            await uow.conn.exec_driver_sql("UPDATE bus_heads SET next_offset = next_offset")
            waiting = asyncio.create_task(writes_here())
            await asyncio.sleep(0.3)
            assert not waiting.done()
            assert ticker.ticks >= 5, "the loop kept running while the bus waited for the lock"
            await uow.commit()
        await asyncio.wait_for(waiting, timeout=5)
        ticker.stop()
        assert [r.envelope.data["n"] for r in await consumer.poll(max_records=10, timeout=5)] == [1]


async def test_an_idle_consumer_reads_the_log_only_after_a_commit_to_it(tmp_path: Path) -> None:
    """Between appends an idle sql-bus consumer wakes every poll interval but reads nothing from the log; an
    append by another process (which wakes nobody here) still reaches it within an interval."""
    async with two_processes_buses(tmp_path / "bus.db", poll_interval=0.02) as (here, consumer, elsewhere):
        assert await consumer.poll(timeout=0.1) == []  # the first poll reads (and takes the lease)
        statements = here.db.statements._value.get()
        assert await consumer.poll(timeout=1.0) == []  # some 50 wake-ups
        assert here.db.statements._value.get() - statements == 0, "an idle consumer read the log"

        await elsewhere.publish([new_event("test.thing-made", source="test", key="k", data={"n": 1}, topic="things")])
        records = await consumer.poll(timeout=5.0)
        assert [r.envelope.data["n"] for r in records] == [1]
