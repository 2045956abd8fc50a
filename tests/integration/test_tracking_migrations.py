"""Tracking's schema changes keep the events stored before them, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from boxoffice.platform.migrate import alembic_config, upgrade

INSERT = (
    "INSERT INTO tracking_events (event_id, ts, received_at, type, anonymous_id, session_id, url, path, browser, "
    "os, device, is_bot) VALUES (:id, :ts, :ts, 'click', 'a-1', 's-1', 'http://shop.test/', '/', 'Chrome', "
    "'Linux', 'desktop', false)"
)


async def _count(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM tracking_events"))).scalar_one())
    finally:
        await engine.dispose()


async def _shape(url: str) -> tuple[list[str], set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            def read(sync: object) -> tuple[list[str], set[str]]:
                found = inspect(sync)
                key = found.get_pk_constraint("tracking_events")["constrained_columns"]
                return key, {i["name"] for i in found.get_indexes("tracking_events") if i["name"]}

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_keying_events_by_time_keeps_them_and_can_be_undone(db_url: str) -> None:
    await asyncio.to_thread(upgrade, "tracking", db_url, "0001")
    now = datetime.now(UTC)
    postgres = db_url.startswith("postgresql")
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            if postgres:
                start = now.replace(hour=0, minute=0, second=0, microsecond=0)
                await conn.execute(text(
                    f"CREATE TABLE tracking_events_p{start:%Y%m%d} PARTITION OF tracking_events "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
                ))
            for n in range(3):
                ts = now - timedelta(seconds=n)
                await conn.execute(text(INSERT), {"id": f"00000000-0000-4000-8000-00000000000{n}",
                                                  "ts": ts if postgres else ts.isoformat(" ")[:26]})
    finally:
        await engine.dispose()

    await asyncio.to_thread(upgrade, "tracking", db_url)
    assert await _count(db_url) == 3
    key, indexes = await _shape(db_url)
    assert key == ["ts", "event_id"]
    assert "ix_tracking_events_ts" not in indexes  # the key is the time index
    assert {"ix_tracking_events_user", "ix_tracking_events_session", "ix_tracking_events_anonymous",
            "ix_tracking_events_type"} <= indexes
    if not postgres:
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                sql = (await conn.execute(text(
                    "SELECT sql FROM sqlite_master WHERE name = 'tracking_events'"))).scalar_one()
        finally:
            await engine.dispose()
        assert sql.rstrip().endswith("WITHOUT ROWID")

    await asyncio.to_thread(command.downgrade, alembic_config("tracking", db_url), "0001")
    assert await _count(db_url) == 3
    key, indexes = await _shape(db_url)
    assert key == (["event_id", "ts"] if postgres else ["event_id"])
    assert "ix_tracking_events_ts" in indexes
