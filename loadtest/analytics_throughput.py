"""The analytics worker in embedded mode (SQLite, the sql bus): bookings per second, and the delay from a
window closing to its result being published on ``analytics-results``.

1. Throughput: a recorded, seeded stream (20 events, 30 minutes of event time) is put on the bus first;
   the clock runs from starting the real ``AnalyticsService`` workers until every booking is counted and
   committed with its positions (its results published through the outbox as they go). Target >= 20,000/s.
2. Latency: a live sale. Bookings stamped with the wall clock are published at ``--rate`` per second for
   ``--live-seconds``; a reader on ``analytics-results`` notes when each window's first result arrives. A
   window closes when the watermark can pass its end, i.e. at its end plus the bound on the wall clock; the
   delay is arrival minus that. Target p99 < 1 s.

    python loadtest/analytics_throughput.py                        # 100,000 bookings, 30 s live at 500/s
    python loadtest/analytics_throughput.py --bookings 200000 --live-seconds 60 --rate 2000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.harness

from boxoffice.analytics import store
from boxoffice.analytics.deps import AnalyticsSettings
from boxoffice.analytics.service import AnalyticsService
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.sql import SqlBus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.migrate import upgrade
from boxoffice.platform.settings import Settings
from tests.harness.booking_stream import generate

BOUND = 1.0


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.frozen = now

    def __call__(self) -> datetime:
        return self.frozen or datetime.now(UTC)


async def counted(service: AnalyticsService) -> int:
    async with service.db.read() as conn:
        total = await conn.execute(select(func.coalesce(func.sum(store.positions.c.next_offset), 0)))
        return int(total.scalar_one())


async def start(workdir: Path, name: str, bus: SqlBus, clock: Clock, **config: float) -> tuple[AnalyticsService,
                                                                                                list[asyncio.Task[None]]]:
    settings = Settings(data_dir=workdir, sqlite_inline=True)
    url = f"sqlite+aiosqlite:///{workdir / name}.db"
    await asyncio.to_thread(upgrade, "analytics", url)
    service = AnalyticsService(settings, bus=bus, clients=ServiceClients(settings),
                               config=AnalyticsSettings(database_url=url, **config))  # type: ignore[arg-type]
    service.clock = clock
    return service, [asyncio.create_task(w()) for w in service.workers().values()]


async def stop(service: AnalyticsService, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await service.stop()


async def throughput(args: argparse.Namespace, workdir: Path) -> str:
    stream = generate(seed=args.seed, bookings=args.bookings, events=20, minutes=30)
    bus = SqlBus(f"sqlite+aiosqlite:///{workdir / 'bus.db'}", poll_interval=0.05, sqlite_inline=True)
    await bus.start()
    for i in range(0, len(stream), 5000):
        await bus.publish(stream[i : i + 5000])
    clock = Clock(stream[0].time)  # replaying history: the watermark, not the wall clock, closes windows
    service, tasks = await start(workdir, "throughput", bus, clock, batch_size=args.batch_size)
    begun, cpu = time.perf_counter(), time.process_time()  # the workers' tasks start running at the next await
    try:
        while await counted(service) < len(stream):  # noqa: ASYNC110 - the count is in another database
            await asyncio.sleep(0.02)
        elapsed, cpu = time.perf_counter() - begun, time.process_time() - cpu
        async with service.db.read() as conn:
            results = await store.count_rows(conn, store.emissions)
    finally:
        await stop(service, tasks)
        await bus.stop()
    return (f"throughput: {len(stream):,} bookings in {elapsed:.2f} s = {len(stream) / elapsed:,.0f} bookings/s "
            f"(batch {args.batch_size}, {results:,} window results published); this process used {cpu:.2f} s of "
            f"CPU = {len(stream) / cpu:,.0f} bookings per CPU-second")


async def latency(args: argparse.Namespace, workdir: Path) -> str:
    bus = SqlBus(f"sqlite+aiosqlite:///{workdir / 'live-bus.db'}", poll_interval=0.05, sqlite_inline=True)
    await bus.start()
    service, tasks = await start(workdir, "live", bus, Clock(), window_seconds=args.window_seconds,
                                 max_out_of_order_seconds=BOUND, batch_size=args.batch_size)
    reader = bus.consumer("bench.results-reader", ["analytics-results"])
    await reader.start()
    arrivals: dict[tuple[str, str], float] = {}
    stop_reading = asyncio.Event()

    async def read() -> None:
        while not stop_reading.is_set():
            records = await reader.poll(max_records=1000, timeout=0.2)
            now = time.time()
            for r in records:
                arrivals.setdefault((r.envelope.data["event_id"], r.envelope.data["window_end"]), now)
            await reader.commit(records)

    reading = asyncio.create_task(read())
    rng = random.Random(args.seed)
    events = [f"live-{i:02d}" for i in range(20)]
    tick = 0.05
    try:
        until = time.monotonic() + args.live_seconds
        while time.monotonic() < until:
            now = datetime.now(UTC)
            batch = []
            for _ in range(max(1, int(args.rate * tick))):
                event_id = rng.choice(events)
                at = now - timedelta(seconds=rng.uniform(0, BOUND * 0.9))  # out of order within the bound
                data = {"event_id": event_id, "user_id": "u", "order_id": str(uuid.uuid4()), "ticket_count": 2,
                        "amount_minor": 9000, "currency": "EUR", "status": "confirmed",
                        "timestamp": at.isoformat().replace("+00:00", "Z"), "kind": "event"}
                batch.append(Envelope(str(uuid.uuid4()), "booking.order-confirmed", "booking", now, event_id, data,
                                      "ticket-bookings"))
            await bus.publish(batch)
            await asyncio.sleep(tick)
        await asyncio.sleep(args.window_seconds + BOUND + 2)  # the last windows close by the clock
    finally:
        stop_reading.set()
        await reading
        await reader.stop()
        await stop(service, tasks)
        await bus.stop()
    delays = sorted(
        arrived - (datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp() + BOUND)
        for (_, end), arrived in arrivals.items()
    )
    if not delays:
        return "latency: no window closed"
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return (f"latency: {len(delays)} windows ({args.window_seconds} s, bound {BOUND:g} s, {args.rate}/s live for "
            f"{args.live_seconds} s): window close -> result on the bus p50 {statistics.median(delays) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=500, help="live bookings per second")
    parser.add_argument("--live-seconds", type=int, default=30)
    parser.add_argument("--window-seconds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="boxoffice-analytics-bench-") as tmp:
        print(asyncio.run(throughput(args, Path(tmp))), flush=True)
        print(asyncio.run(latency(args, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
