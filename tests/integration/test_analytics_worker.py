"""The windowed aggregator on real buses and databases: sql bus on SQLite and PostgreSQL, Kafka (Tansu) with
SQLite and PostgreSQL for analytics' own database.

A recorded, seeded stream of bookings is published to ``ticket-bookings`` as booking's relay would; the real
analytics service counts it. Its clock is frozen at the stream's start (so only the watermark closes
windows, as when a worker replays history) and moved a day on at the end (the quiet stream's idle close).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from boxoffice.analytics import store
from boxoffice.analytics.deps import AnalyticsSettings
from boxoffice.analytics.domain import rfc3339
from boxoffice.analytics.service import AnalyticsService
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.kafka import KafkaBus
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.bus.positioned import PositionedConsumer
from boxoffice.platform.bus.sql import SqlBus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.db import Database
from boxoffice.platform.migrate import upgrade
from boxoffice.platform.settings import Settings
from tests.harness.app import FakeClock
from tests.harness.booking_stream import START, TOPIC, expected_windows, generate
from tests.harness.postgres import create_database
from tests.harness.tansu import Tansu

pytestmark = pytest.mark.timeout(300)

PARTITIONS = 4


@dataclass
class Setup:
    settings: Settings
    db_url: str
    tmp: Path

    def make_bus(self, *, inline: bool = False) -> Bus:
        """``inline``: the bus's SQLite connections as ``boxoffice run`` makes them (sqlite3 on the event loop)."""
        if self.settings.bus == "kafka":
            return KafkaBus(self.settings, request_timeout_ms=3_000)
        return SqlBus(self.settings.bus_url(), partitions=PARTITIONS, poll_interval=0.05, sqlite_inline=inline)

    def another_db(self, request: pytest.FixtureRequest, name: str) -> str:
        if self.db_url.startswith("postgresql"):
            return create_database(request.getfixturevalue("postgres_admin_url"), prefix=name)
        return f"sqlite+aiosqlite:///{self.tmp / name}.db"


@pytest.fixture(
    params=[
        pytest.param(("sql", "sqlite"), id="sql-bus-sqlite"),
        pytest.param(("sql", "postgres"), id="sql-bus-postgres", marks=pytest.mark.postgres),
        pytest.param(("kafka", "sqlite"), id="kafka-sqlite", marks=pytest.mark.kafka),
        pytest.param(("kafka", "postgres"), id="kafka-postgres", marks=[pytest.mark.kafka, pytest.mark.postgres]),
    ]
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    bus, database = request.param
    if database == "postgres":
        admin = request.getfixturevalue("postgres_admin_url")
        db_url, bus_url = create_database(admin, prefix="analytics"), create_database(admin, prefix="bus")
    else:
        db_url, bus_url = f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}", None
    if bus == "kafka":
        broker: Tansu = request.getfixturevalue("own_kafka_broker")
        settings = Settings(
            data_dir=tmp_path, bus="kafka", bus_partitions=PARTITIONS, kafka_bootstrap_servers=broker.bootstrap,
            kafka_session_timeout_ms=2_000, kafka_heartbeat_interval_ms=300, kafka_rebalance_timeout_ms=1_000,
        )
    else:
        settings = Settings(data_dir=tmp_path, bus="sql", bus_database_url=bus_url, bus_partitions=PARTITIONS)
    return Setup(settings, db_url, tmp_path)


class Garbage(Envelope):
    """A record that is not an event at all (a producer bug, a corrupted write)."""

    def to_json(self) -> bytes:
        return b'{"this is": not json'


def bad_records() -> list[Envelope]:
    valid = generate(seed=1, bookings=1, events=1)[0]
    broken = Envelope(valid.id + "x", valid.type, "booking", valid.time, valid.key,
                      {**valid.data, "ticket_count": "two"}, TOPIC)
    return [broken, Garbage("g", valid.type, "booking", valid.time, valid.key, {}, TOPIC)]


@contextlib.asynccontextmanager
async def analytics(setup: Setup, bus: Bus, clock: FakeClock, *, db_url: str | None = None,
                    batch_size: int = 500, kind: type[AnalyticsService] = AnalyticsService
                    ) -> AsyncIterator[AnalyticsService]:
    url = db_url or setup.db_url
    await asyncio.to_thread(upgrade, "analytics", url)
    config = AnalyticsSettings(database_url=url, batch_size=batch_size, idle_check_seconds=0.05,
                               stream_poll_seconds=0.05)
    service = kind(setup.settings, bus=bus, clients=ServiceClients(setup.settings), config=config)
    service.clock = clock
    tasks = [asyncio.create_task(worker()) for worker in service.workers().values()]
    try:
        yield service
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await service.stop()


async def consumed(service: AnalyticsService) -> int:
    return await consumed_in(service.db)


async def consumed_in(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.coalesce(func.sum(store.positions.c.next_offset), 0)))).scalar_one())


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 90.0, step: float = 0.05) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "not done in time"
        await asyncio.sleep(step)


async def publish(bus: Bus, records: Sequence[Envelope], chunk: int = 500) -> None:
    for i in range(0, len(records), chunk):
        await bus.publish(records[i : i + chunk])


async def emissions(service: AnalyticsService) -> list[tuple[object, ...]]:
    async with service.db.read() as conn:
        rows = await conn.execute(select(store.emissions).order_by(store.emissions.c.seq))
        return [tuple(r)[1:-1] for r in rows]  # all but seq and emitted_at


async def test_every_window_of_the_recorded_stream_is_published_once_and_bad_records_are_set_aside(
    setup: Setup,
) -> None:
    stream = generate(seed=7, bookings=1500, events=6, minutes=10)
    records = stream[:700] + bad_records() + stream[700:]
    bus, clock = setup.make_bus(), FakeClock(START)
    await bus.start()
    try:
        await publish(bus, records)
        async with analytics(setup, bus, clock) as service:
            await wait_until(lambda: all_consumed(service, len(records)))
            clock.advance(days=1)  # the stream went quiet: the last windows close by the clock
            expected = expected_windows(stream)
            results = bus.consumer("test.results-reader", ["analytics-results"])
            await results.start()
            seen: list[Envelope] = []
            deadline = asyncio.get_running_loop().time() + 60
            while len(seen) < len(expected) and asyncio.get_running_loop().time() < deadline:
                batch = await results.poll(max_records=500, timeout=0.5)
                seen.extend(r.envelope for r in batch)
                await results.commit(batch)
            await results.stop()
            async with service.db.read() as conn:
                letters = (await conn.execute(select(store.dead_letters.c.offset, store.dead_letters.c.reason))).all()
                corrections = await store.count_rows(conn, store.corrections)
    finally:
        await bus.stop()
    got = {(e.data["event_id"], e.data["window_start"]): e.data for e in seen}
    assert len(seen) == len(got) == len(expected)  # one record per event and window
    for key, (tickets, orders, revenue, currency) in expected.items():
        record = got[key]
        assert (record["total_tickets"], record["orders"], record["revenue_minor"], record["currency"]) == (
            tickets, orders, revenue, currency), key
        assert record["revision"] == 1 and record["kind"] == ("train" if key[0].startswith("run") else "event")
    assert all(e.type == "analytics.window-result" and e.key == e.data["event_id"] for e in seen)
    assert sorted(reason.split(":")[0] for _, reason in letters) == ["'ticket_count' must be a whole number, 0 or more",
                                                                     "not an event envelope"]
    assert corrections == 0


async def reached(db: Database, target: int, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        output = WORKER_LOGS.get(process.pid)
        tail = output.read_text(errors="replace")[-3000:] if output and output.exists() else "(no output)"
        raise AssertionError(f"the worker exited with {process.returncode}:\n{tail}")
    return await consumed_in(db) >= target


def start_worker(setup: Setup, db_url: str) -> subprocess.Popen[bytes]:
    """``boxoffice worker analytics`` counting into ``db_url`` from the test's bus."""
    s = setup.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env.update(
        BOXOFFICE_DATA_DIR=str(setup.tmp / "worker"),
        BOXOFFICE_LOG_LEVEL="WARNING",
        BOXOFFICE_BUS=s.bus,
        BOXOFFICE_BUS_PARTITIONS=str(PARTITIONS),
        BOXOFFICE_ANALYTICS_DATABASE_URL=db_url,
        BOXOFFICE_ANALYTICS_BATCH_SIZE="60",
    )
    if s.bus == "kafka":
        env.update(
            BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS=s.kafka_bootstrap_servers,
            BOXOFFICE_KAFKA_SESSION_TIMEOUT_MS=str(s.kafka_session_timeout_ms),
            BOXOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS=str(s.kafka_heartbeat_interval_ms),
            BOXOFFICE_KAFKA_REBALANCE_TIMEOUT_MS=str(s.kafka_rebalance_timeout_ms),
        )
    else:
        env["BOXOFFICE_BUS_DATABASE_URL"] = s.bus_url()
    log = setup.tmp / f"worker-{len(WORKER_LOGS)}.log"
    with log.open("wb") as out:  # shown if the worker exits on its own
        process = subprocess.Popen([sys.executable, "-m", "boxoffice.cli", "worker", "analytics"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    WORKER_LOGS[process.pid] = log
    return process


WORKER_LOGS: dict[int, Path] = {}


async def all_consumed(service: AnalyticsService, count: int) -> bool:
    return await consumed(service) == count


async def test_a_worker_killed_at_any_moment_gives_the_results_of_an_uninterrupted_run(
    setup: Setup, request: pytest.FixtureRequest
) -> None:
    # Records up to 90 s out of order: with a 5 s bound and 60 s of lateness, some revise their window
    # and some become corrections, so the replay has to reproduce every revision exactly.
    stream = generate(seed=11, bookings=1200, events=5, minutes=8, max_disorder=90.0)
    bus = setup.make_bus()
    await bus.start()
    try:
        await publish(bus, stream)
        clock = FakeClock(START)
        async with analytics(setup, bus, clock, batch_size=60) as whole:
            await wait_until(lambda: all_consumed(whole, len(stream)))
            clock.advance(days=1)
            await wait_until(lambda: no_pending(whole))
            reference, reference_state = await emissions(whole), await state(whole)

        # The same stream counted by `boxoffice worker analytics` processes, each killed (SIGKILL) at a
        # random moment once it has counted a little more: often in the middle of a batch's transaction.
        killed_url = setup.another_db(request, "killed")
        await asyncio.to_thread(upgrade, "analytics", killed_url)
        progress_db = Database(killed_url, name="analytics")
        rng = random.Random(3)
        kills = 0
        try:
            for target in sorted(rng.sample(range(100, len(stream) - 100), 3)):
                victim = start_worker(setup, killed_url)
                try:
                    await wait_until(lambda: reached(progress_db, target, victim), timeout=120, step=0.02)  # noqa: B023
                    await asyncio.sleep(rng.uniform(0, 0.05))
                finally:
                    victim.kill()
                    await asyncio.to_thread(victim.wait)
                kills += 1
        finally:
            await progress_db.dispose()
        clock = FakeClock(START)
        assert kills == 3
        async with analytics(setup, bus, clock, db_url=killed_url, batch_size=60) as survivor:
            clock.advance(days=1)
            await wait_until(lambda: no_pending(survivor))
            replayed, replayed_state = await emissions(survivor), await state(survivor)
    finally:
        await bus.stop()
    assert any(r[-1] > 1 for r in reference), "the stream should have revised some windows"
    assert reference_state[1], "the stream should have produced corrections"
    assert per_key(replayed) == per_key(reference)
    assert replayed_state == reference_state


def per_key(rows: list[tuple[object, ...]]) -> dict[tuple[object, object], list[tuple[object, ...]]]:
    """Each window's published revisions in order (windows of different keys may interleave differently)."""
    out: dict[tuple[object, object], list[tuple[object, ...]]] = defaultdict(list)
    for row in rows:
        out[(row[0], row[2])].append(row)
    return dict(out)


async def state(service: AnalyticsService) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with service.db.read() as conn:
        tallies = (await conn.execute(select(store.tallies).order_by(store.tallies.c.event_id))).all()
        corrections = (
            await conn.execute(
                select(store.corrections.c.order_id, store.corrections.c.ticket_delta, store.corrections.c.event_time)
                .order_by(store.corrections.c.order_id, store.corrections.c.ticket_delta)
            )
        ).all()
    return [tuple(t) for t in tallies], [tuple(c) for c in corrections]


async def no_pending(service: AnalyticsService) -> bool:
    async with service.db.read() as conn:
        pending = await conn.execute(select(func.count()).select_from(store.windows).where(store.windows.c.revision == 0))
        return pending.scalar_one() == 0



class Member(AnalyticsService):
    """A member of the group ``analytics`` whose partitions the test can see (its consumer's ``owned()``)."""

    consumer: PositionedConsumer | None = None

    def bookings_consumer(self) -> PositionedConsumer:
        self.consumer = super().bookings_consumer()
        return self.consumer

    def owned(self) -> frozenset[tuple[str, int]]:
        return self.consumer.owned() if self.consumer is not None else frozenset()


async def test_members_of_the_group_share_the_partitions_and_one_takes_over_when_another_leaves(
    setup: Setup,
) -> None:
    """Two members count into one database (distributed mode: replicas of the worker). On Kafka each reads
    its own partitions of ``ticket-bookings``; on the sql bus one reads them all (a lease). When a member
    leaves, the other reads its partitions on from the stored positions: every window once, exactly."""
    stream = generate(seed=5, bookings=1600, events=8, minutes=10)
    half = len(stream) // 2
    everything = frozenset((TOPIC, p) for p in range(PARTITIONS))
    kafka = setup.settings.bus == "kafka"
    # The bus as ``boxoffice run`` makes it. Through aiosqlite, a member cancelled while it held the bus's
    # write transaction once left the file locked for the rest of the test (make test, 1 run in 2).
    bus, clock = setup.make_bus(inline=True), FakeClock(START)
    splits: set[tuple[frozenset[tuple[str, int]], frozenset[tuple[str, int]]]] = set()
    await bus.start()
    try:
        async with contextlib.AsyncExitStack() as one, contextlib.AsyncExitStack() as two:
            first = await one.enter_async_context(analytics(setup, bus, clock, batch_size=40, kind=Member))
            second = await two.enter_async_context(analytics(setup, bus, clock, batch_size=40, kind=Member))
            assert isinstance(first, Member) and isinstance(second, Member)

            def watching(done: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:  # notes every split of the partitions seen while waiting
                    owned = (first.owned(), second.owned())
                    if owned[0] | owned[1] == everything:
                        splits.add(owned)
                    return await done()

                return check

            async def both_joined() -> bool:
                return bool(first.owned() and second.owned())

            if kafka:  # both have joined before anything is there to count
                await wait_until(both_joined)
            await publish(bus, stream[:half])
            await wait_until(watching(lambda: all_consumed(first, half)))
            if kafka:
                [(mine, theirs)] = splits  # one split the whole time: neither read the other's partitions
                assert mine and theirs and not mine & theirs, splits
                async with first.db.read() as conn:
                    read = {p: n for p, n in await conn.execute(
                        select(store.positions.c.partition, store.positions.c.next_offset))}
                assert any(read.get(p) for _, p in mine) and any(read.get(p) for _, p in theirs), (read, splits)
                stays, leaves = first, two
            else:  # one member at a time; the lease holder leaves
                assert splits and splits <= {(everything, frozenset()), (frozenset(), everything)}, splits
                stays, leaves = (second, one) if first.owned() else (first, two)
            await leaves.aclose()
            await publish(bus, stream[half:])
            await wait_until(lambda: all_consumed(stays, len(stream)))
            assert stays.owned() == everything
            clock.advance(days=1)
            await wait_until(lambda: no_pending(stays))
            published = await emissions(stays)
    finally:
        await bus.stop()
    got = {(str(row[0]), rfc3339(row[2])): row[4:] for row in published}  # type: ignore[arg-type]
    assert len(got) == len(published)  # each window published once
    assert got == {key: (*totals, 1) for key, totals in expected_windows(stream).items()}
