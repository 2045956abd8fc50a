"""The Flink SQL job of ``deploy/flink/`` and the built-in worker give the same window for every key.

A recorded stream (seeded: 5,000 bookings and their cancellations over 20 events and runs and 30 minutes of
event time, out of order within the watermark's bound, with two malformed records among them) goes to both:
PyFlink runs ``deploy/flink/tables.sql`` and ``window.sql`` with only the connectors swapped for files; the
built-in worker counts the same records from the sql bus. Both must also equal an independent oracle.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from boxoffice.analytics import store
from boxoffice.analytics.domain import rfc3339
from boxoffice.platform.bus.sql import SqlBus
from boxoffice.platform.settings import Settings
from tests.harness.app import FakeClock
from tests.harness.booking_stream import START, expected_windows, generate, write_json_lines
from tests.integration.test_analytics_worker import (
    Setup,
    all_consumed,
    analytics,
    bad_records,
    no_pending,
    publish,
    wait_until,
)

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[2]


def java_available() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


@pytest.mark.skipif(not java_available(), reason="PyFlink needs a Java runtime (Debian openjdk-17-jre-headless)")
async def test_flink_sql_and_the_built_in_worker_agree_on_every_window(tmp_path: Path) -> None:
    stream = generate(seed=2026, bookings=5000, events=20, minutes=30)
    records = stream[:2500] + bad_records() + stream[2500:]
    expected = {k: (*v, 1) for k, v in expected_windows(stream).items()}
    assert len({k[0] for k in expected}) == 20

    # Flink, in its own process (a JVM), on the recorded stream.
    write_json_lines(records, tmp_path / "ticket-bookings.jsonl")
    flink = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.flink_job", str(tmp_path / "ticket-bookings.jsonl"), str(tmp_path / "out")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )

    # Meanwhile the built-in worker, from the sql bus; its clock stays at the stream's start until the end.
    setup = Setup(Settings(data_dir=tmp_path, bus="sql", bus_partitions=4), f"sqlite+aiosqlite:///{tmp_path}/a.db",
                  tmp_path)
    bus, clock = SqlBus(setup.settings.bus_url(), partitions=4, poll_interval=0.05), FakeClock(START)
    await bus.start()
    try:
        await publish(bus, records)
        async with analytics(setup, bus, clock) as worker:
            await wait_until(lambda: all_consumed(worker, len(records)), timeout=300)
            clock.advance(days=1)
            await wait_until(lambda: no_pending(worker))
            async with worker.db.read() as conn:
                rows = (await conn.execute(select(store.emissions).order_by(store.emissions.c.seq))).all()
    finally:
        await bus.stop()
    built_in = {(r.event_id, rfc3339(r.window_start)): (r.total_tickets, r.orders, r.revenue_minor, r.currency,
                                                         r.revision) for r in rows}
    assert len(rows) == len(built_in)  # each window published once

    output, _ = await asyncio.to_thread(flink.communicate, timeout=800)
    assert flink.returncode == 0, output.decode(errors="replace")[-4000:]
    by_flink: dict[tuple[str, str], tuple[object, ...]] = {}
    for part in (tmp_path / "out").rglob("part-*"):
        for line in part.read_text().splitlines():
            data = json.loads(line)["data"]
            key = (data["event_id"], data["window_start"])
            assert key not in by_flink, f"Flink emitted {key} twice"
            by_flink[key] = (data["total_tickets"], data["orders"], data["revenue_minor"], data["currency"],
                             data["revision"])

    assert by_flink == built_in == expected
    assert len(expected) > 500  # 20 keys x 30 minutes, minus the minutes an event sold nothing

