"""The unit of work on real SQLite and PostgreSQL: all or nothing, outbox rows included."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

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


async def test_inbox_claims_an_event_once_even_concurrently(db: Database) -> None:
    async def claim() -> bool:
        async with db.uow() as uow:
            won = await claim_inbox(uow.conn, "group", "event-1")
            await uow.commit()
            return won

    results = await asyncio.gather(*[claim() for _ in range(8)], return_exceptions=True)
    assert [r for r in results if r is True] == [True]
