"""``boxoffice worker SERVICE`` on SIGTERM finishes and commits the batch it is handling, polls no more and
exits 0; the next worker goes on from there. A real subprocess, on both buses (the sql bus on SQLite, Kafka
on Tansu with PostgreSQL), restarted in the middle of a backlog of catalog events for booking's consumer.

Nothing is processed twice: the records each process committed add up to the backlog exactly (a record the
first one had handled but not committed would be handled again by the second, and counted twice). Nothing
is lost: booking's inbox holds every event once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from sqlalchemy import func, select

from boxoffice.booking.deps import BookingSettings
from boxoffice.booking.handlers import catalog_feed
from boxoffice.cli import migrate_all
from boxoffice.platform.bus.deadletters import DeadLetters
from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.bus.tables import INBOX
from boxoffice.platform.db import Database
from boxoffice.platform.settings import Settings
from tests.harness.booking import general_event
from tests.harness.postgres import create_database
from tests.harness.tansu import Tansu

BACKLOG = 300
DRAIN_SECONDS = 30


def start_worker(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "boxoffice.cli", "worker", "booking", "--drain-seconds", str(DRAIN_SECONDS)],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def drained(log: Path) -> dict[str, int]:
    """What the worker's consumer of catalog events said when it drained: records polled and committed."""
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "consumer drained" and entry.get("group") == catalog_feed.GROUP:
            return {"polled": entry["polled"], "committed": entry["committed"]}
    raise AssertionError(f"the worker did not drain its consumer:\n{log.read_text()[-3000:]}")


async def applied(db: Database) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(INBOX).where(INBOX.c.consumer_group == catalog_feed.GROUP)
        return int((await conn.execute(query)).scalar_one())


async def eventually(check: Callable[[], object], what: str, *, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


@pytest.fixture(params=[pytest.param("sql", id="sql-bus"), pytest.param("kafka", id="kafka", marks=[
    pytest.mark.kafka, pytest.mark.postgres])])
def bus_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {"BOXOFFICE_DATA_DIR": str(tmp_path), "BOXOFFICE_DEMO": "0", "BOXOFFICE_SQLITE_INLINE": "0"}
    if request.param == "sql":
        return {**env, "BOXOFFICE_BOOKING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'booking.db'}"}
    broker: Tansu = request.getfixturevalue("own_kafka_broker")  # its own topics: no other test's events
    return {
        **env,
        "BOXOFFICE_BOOKING_DATABASE_URL": create_database(request.getfixturevalue("postgres_admin_url"), "booking"),
        "BOXOFFICE_BUS": "kafka",
        "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "BOXOFFICE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "BOXOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "BOXOFFICE_KAFKA_REBALANCE_TIMEOUT_MS": "6000",
    }


@pytest.mark.timeout(400)  # two worker processes start; on a loaded machine that alone takes a minute
async def test_a_worker_restarted_mid_backlog_hands_over_exactly(tmp_path: Path, bus_env: dict[str, str]) -> None:
    settings = Settings(
        data_dir=tmp_path,
        demo=False,
        bus=bus_env.get("BOXOFFICE_BUS", "sql"),  # type: ignore[arg-type]
        kafka_bootstrap_servers=bus_env.get("BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        sqlite_inline=False,
    )
    booking_url = bus_env["BOXOFFICE_BOOKING_DATABASE_URL"]
    await asyncio.to_thread(migrate_all, settings, ["booking"], {"booking": BookingSettings(database_url=booking_url)})
    bus = build_bus(settings)
    await bus.start()
    try:
        events = [general_event(capacity=10) for _ in range(BACKLOG)]
        await bus.publish([
            new_event("catalog.event-published", source="catalog", key=e["event_id"], data=e, topic="catalog.events")
            for e in events
        ])
    finally:
        await bus.stop()

    db = Database(booking_url, name="booking")
    first = start_worker(bus_env, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        await eventually(lambda: _started(db), "the first worker handled nothing")
        first.send_signal(signal.SIGTERM)  # in the middle of the backlog (and, most likely, of a batch)
        assert await asyncio.to_thread(first.wait, DRAIN_SECONDS + 30) == 0, (tmp_path / "first.log").read_text()[-3000:]
        handed_over = await applied(db)
        assert 0 < handed_over < BACKLOG, "the restart did not happen in the middle of the backlog"
        one = drained(tmp_path / "first.log")
        # It finished what it had polled, and committed exactly what it applied: nothing for the next to redo.
        assert one == {"polled": one["committed"], "committed": handed_over}

        second = start_worker(bus_env, tmp_path / "second.log")
        await eventually(lambda: _all_applied(db), "the second worker did not finish the backlog")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, DRAIN_SECONDS + 30) == 0
        two = drained(tmp_path / "second.log")
        assert one["committed"] + two["committed"] == BACKLOG  # no event handled by both
        assert two["polled"] == two["committed"]
        assert await applied(db) == BACKLOG and await DeadLetters(db).list() == []
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        await db.dispose()


async def _started(db: Database) -> bool:
    return await applied(db) > 0


async def _all_applied(db: Database) -> bool:
    return await applied(db) >= BACKLOG
