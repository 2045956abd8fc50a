"""The sql bus keeps events for its retention only, and trimming never disturbs offsets or positions."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from sqlalchemy import inspect, text

from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.bus.sql import SqlBus


def event(n: int) -> object:
    return new_event("test.thing-happened", source="test", key="k", data={"n": n}, topic="retention")


async def test_old_events_are_trimmed_and_offsets_go_on(db_url: str) -> None:
    bus = SqlBus(db_url, retention_seconds=3600)
    await bus.start()
    consumer = bus.consumer("reader", ["retention"])
    await consumer.start()
    try:
        await bus.publish([event(n) for n in range(3)])  # type: ignore[misc]
        first = await consumer.poll(timeout=1)
        assert [r.envelope.data["n"] for r in first] == [0, 1, 2]
        await consumer.commit(first)
        assert await bus.trim() == 0  # nothing is an hour old yet
        assert await bus.trim(now=time.time() + 3601) == 3
        await bus.publish([event(3)])  # type: ignore[list-item]
        later = await consumer.poll(timeout=1)
        assert [(r.offset, r.envelope.data["n"]) for r in later] == [(3, 3)]  # offsets are never reused
    finally:
        await consumer.stop()
        await bus.stop()


async def _trim_plan(bus: SqlBus) -> str:
    """How the database would run the trim's DELETE."""
    async with bus.db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # The planner prefers a scan of a table this small; forbid it to see whether an index can serve.
            await conn.execute(text("SET enable_seqscan = off"))
            rows = await conn.execute(text("EXPLAIN DELETE FROM bus_log WHERE appended_at < 1000"))
        else:
            rows = await conn.execute(text("EXPLAIN QUERY PLAN DELETE FROM bus_log WHERE appended_at < 1000"))
        return " ".join(str(value) for row in rows for value in row)


async def test_the_trim_uses_an_index_and_an_older_bus_gets_it(db_url: str) -> None:
    bus = SqlBus(db_url, retention_seconds=0)
    await bus.start()
    try:
        assert "ix_bus_log_appended_at" in await _trim_plan(bus)
        # A bus database made before the index existed: starting the bus adds it.
        async with bus.db.engine.begin() as conn:
            await conn.execute(text("DROP INDEX ix_bus_log_appended_at"))
            assert await conn.run_sync(lambda sync: inspect(sync).get_indexes("bus_log")) == []
    finally:
        await bus.stop()
    again = SqlBus(db_url, retention_seconds=0)
    await again.start()
    try:
        assert "ix_bus_log_appended_at" in await _trim_plan(again)
        async with again.db.engine.connect() as conn:
            indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("bus_log"))
        assert [i["column_names"] for i in indexes if i["name"] == "ix_bus_log_appended_at"] == [["appended_at"]]
    finally:
        await again.stop()


def trims(outcome: str) -> float:
    labels = {"loop": "bus.retention-trim", "outcome": outcome}
    return REGISTRY.get_sample_value("boxoffice_background_runs_total", labels) or 0.0


async def test_a_started_bus_trims_in_the_platforms_periodic_loop(db_url: str) -> None:
    """The trim runs in ``platform.periodic.repeat`` (its runs counted per loop), at start and then hourly."""
    before, failed = trims("ok"), trims("failed")
    bus = SqlBus(db_url, retention_seconds=3600)
    await bus.start()
    try:
        for _ in range(200):
            if trims("ok") > before:
                break
            await asyncio.sleep(0.02)
        assert trims("ok") == before + 1
        assert trims("failed") == failed
    finally:
        await bus.stop()
