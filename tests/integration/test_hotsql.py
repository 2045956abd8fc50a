"""``platform.hotsql``: the hot path's statements answer exactly what SQLAlchemy answers, on embedded SQLite
(straight on sqlite3), on SQLite shared between processes (through SQLAlchemy) and on PostgreSQL (straight on
asyncpg)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from boxoffice.platform import hotsql
from boxoffice.platform.bus.tables import add_messaging_tables, outbox_backlog
from boxoffice.platform.db import Database, UtcDateTime

metadata = MetaData()
things = Table(
    "hot_things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    Column("items", JSON, nullable=True),
    Column("at", UtcDateTime, nullable=True),
    Column("ratio", Float, nullable=True),
    Column("price", Numeric(10, 2), nullable=True),
)

INSERT = insert(things)
BY_NAME = select(things).where(things.c.name == bindparam("p_name"))
LIVE = select(things.c.name, things.c.count).where(things.c.status == "live").order_by(things.c.name)
TOTAL = select(func.coalesce(func.sum(things.c.count), 0)).where(things.c.at > bindparam("p_after"))
BUMP = (
    update(things)
    .where(things.c.name == bindparam("p_name"), things.c.count + bindparam("p_by") <= 10)
    .values(count=things.c.count + bindparam("p_by"))
)
add_messaging_tables(metadata)
AT = datetime(2026, 11, 28, 14, 0, 5, 123456, tzinfo=UTC)


@pytest.fixture(params=["inline", "shared"])
async def db(request: pytest.FixtureRequest, db_url: str) -> Database:
    if request.param == "inline" and not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has one path")
    database = Database(db_url, name="test", sqlite_inline=request.param == "inline")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database  # type: ignore[misc]
    await database.dispose()


async def test_rows_and_counts_are_sqlalchemys(db: Database) -> None:
    async with db.uow() as uow:
        await hotsql.run(uow.conn, INSERT, [
            {"name": "a", "status": "live", "count": 1, "items": [{"x": 1}], "at": AT},
            {"name": "b", "status": "gone", "count": 2, "items": None, "at": AT + timedelta(hours=1)},
        ])
        await hotsql.run(uow.conn, INSERT, {"name": "c", "status": "live", "count": 3})  # fewer columns
        await uow.commit()
    async with db.read() as conn:
        hot = (await hotsql.run(conn, BY_NAME, {"p_name": "a"})).one()
        plain = (await conn.execute(BY_NAME, {"p_name": "a"})).one()
        assert tuple(hot) == tuple(plain)
        assert hot.items == [{"x": 1}] and hot.at == AT and hot.at.tzinfo is not None and hot.count == 1
        assert [tuple(r) for r in await hotsql.run(conn, LIVE, {})] == [("a", 1), ("c", 3)]
        assert (await hotsql.run(conn, TOTAL, {"p_after": AT - timedelta(seconds=1)})).scalar() == 3
        assert (await hotsql.run(conn, BY_NAME, {"p_name": "nobody"})).first() is None
        missing = await hotsql.run(conn, BY_NAME, {"p_name": "c"})
        assert missing.one().items is None and missing.one().at is None


async def test_conditional_update_counts_the_rows_it_changed(db: Database) -> None:
    async with db.uow() as uow:
        await hotsql.run(uow.conn, INSERT, {"name": "a", "status": "live", "count": 8})
        assert (await hotsql.run(uow.conn, BUMP, {"p_name": "a", "p_by": 2})).rowcount == 1
        assert (await hotsql.run(uow.conn, BUMP, {"p_name": "a", "p_by": 1})).rowcount == 0  # would pass 10
        await uow.commit()
    async with db.read() as conn:
        assert (await hotsql.run(conn, BY_NAME, {"p_name": "a"})).one().count == 10


async def test_a_broken_constraint_is_sqlalchemys_integrity_error_and_rolls_back(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.uow() as uow:
            await hotsql.run(uow.conn, INSERT, {"name": "a", "status": "live", "count": 1})
            await hotsql.run(uow.conn, INSERT, {"name": "a", "status": "live", "count": 2})
            await uow.commit()
    async with db.read() as conn:
        assert (await hotsql.run(conn, BY_NAME, {"p_name": "a"})).first() is None


async def test_an_expanding_in_list_still_works_through_sqlalchemy(db: Database) -> None:
    among = select(things.c.name).where(things.c.status.in_(["live", "gone"])).order_by(things.c.name)
    async with db.uow() as uow:
        await hotsql.run(uow.conn, INSERT, [
            {"name": n, "status": s, "count": 0} for n, s in (("a", "live"), ("b", "gone"), ("c", "other"))
        ])
        await uow.commit()
    async with db.read() as conn:
        assert [r.name for r in await hotsql.run(conn, among, {})] == ["a", "b"]


async def test_a_unit_of_work_mixing_both_paths_commits_or_rolls_back_as_one(db: Database) -> None:
    async with db.uow() as uow:
        await hotsql.run(uow.conn, INSERT, {"name": "a", "status": "live", "count": 1})
        await uow.conn.execute(insert(things).values(name="b", status="live", count=2))  # SQLAlchemy's own path
        uow.publish("things", "test.things-made", key="a", data={})
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with db.uow() as uow:
            await uow.conn.execute(insert(things).values(name="c", status="live", count=3))
            await hotsql.run(uow.conn, INSERT, {"name": "d", "status": "live", "count": 4})
            raise RuntimeError("crash before commit")
    async with db.uow() as uow:  # not committed: rolled back
        await hotsql.run(uow.conn, INSERT, {"name": "e", "status": "live", "count": 5})
    async with db.read() as conn:
        assert [r.name for r in await hotsql.run(conn, LIVE, {})] == ["a", "b"]
        assert await outbox_backlog(conn) == 1


async def test_the_fast_paths_bypass_sqlalchemys_execution_and_answer_the_same(
    db: Database, request: pytest.FixtureRequest
) -> None:
    """Embedded SQLite and PostgreSQL run the statement on the driver (SQLAlchemy's engine never sees it);
    a shared SQLite file goes through SQLAlchemy. Floats and numerics, whose processors on PostgreSQL depend on
    the column's type as the server describes it, read back as SQLAlchemy reads them."""
    seen: list[str] = []

    def saw(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", saw)
    try:
        async with db.uow() as uow:
            await hotsql.run(uow.conn, INSERT, {"name": "a", "status": "live", "count": 1, "ratio": 0.5, "price": 12.5})
            await uow.commit()
        async with db.read() as conn:
            hot = (await hotsql.run(conn, BY_NAME, {"p_name": "a"})).one()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", saw)
    fast = db.dialect == "postgresql" or request.node.callspec.params["db"] == "inline"
    assert (seen == []) is fast, seen
    async with db.read() as conn:
        plain = (await conn.execute(BY_NAME, {"p_name": "a"})).one()
    assert tuple(hot) == tuple(plain)
    assert hot.ratio == 0.5 and type(hot.ratio) is type(plain.ratio) and hot.price == plain.price


async def test_sqlite_text_runs_on_sqlite3_when_embedded_and_answers_as_sqlalchemy(
    db: Database, request: pytest.FixtureRequest
) -> None:
    """``run_text`` (the SQL bus's statements): embedded, straight on sqlite3 and counted; on a shared file
    through ``exec_driver_sql``. Either way the same rows (RETURNING included), row counts and errors."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite text")
    seen: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    add = "INSERT INTO hot_things (name, status, count) VALUES (?, ?, ?)"
    bump = "UPDATE hot_things SET count = count + ? WHERE status = ? RETURNING name, count"
    async with db.uow() as uow:
        many = await hotsql.run_text(uow.conn, add, [("a", "live", 1), ("b", "live", 2)], many=True)
        bumped = await hotsql.run_text(uow.conn, bump, (10, "live"))
        await uow.commit()
    assert many.rowcount == 2
    assert sorted(tuple(row) for row in bumped) == [("a", 11), ("b", 12)] and bumped.rowcount == 2
    async with db.read() as conn:
        names = await hotsql.run_text(conn, "SELECT name FROM hot_things WHERE count > ? ORDER BY name", (11,))
    assert [tuple(row) for row in names] == [("b",)]
    with pytest.raises(IntegrityError):
        async with db.uow() as uow:
            await hotsql.run_text(uow.conn, add, ("a", "live", 1))
    inline = request.node.callspec.params["db"] == "inline"
    assert (seen == []) is inline, seen
