"""Events per second through the whole path: outbox -> relay -> bus -> consumer group with an inbox.

The clock runs from the first committed outbox row to the last event applied by the consumer (its effect
and ``claim_inbox`` in one transaction, as services do). Producers commit 100 events per transaction, keys
spread over 64 aggregates. Prints one summary line.

    python loadtest/bus_throughput.py --backend sql --events 20000
    python loadtest/bus_throughput.py --backend kafka --events 20000            # starts Tansu itself
    python loadtest/bus_throughput.py --backend kafka --bootstrap 127.0.0.1:9092
    python loadtest/bus_throughput.py --backend sql --database-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import structlog
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from boxoffice.platform.bus.consumer import run_consumer
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.bus.relay import Relay
from boxoffice.platform.bus.tables import add_messaging_tables, claim_inbox
from boxoffice.platform.db import Database
from boxoffice.platform.settings import Settings

TOPIC = "bench-events"
GROUP = "bench"
KEYS = 64
PER_TRANSACTION = 100

metadata = MetaData()
add_messaging_tables(metadata)
effects = Table(
    "bench_effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("key", String(200), nullable=False),
)


@contextlib.contextmanager
def kafka_bootstrap(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.harness
    from tests.harness.tansu import tansu_broker

    with tansu_broker() as broker:
        yield broker.bootstrap


def build_bus(backend: str, *, bootstrap: str | None, bus_url: str) -> Bus:
    if backend == "kafka":
        from boxoffice.platform.bus.kafka import KafkaBus

        assert bootstrap is not None
        return KafkaBus(
            Settings(
                bus="kafka",
                kafka_bootstrap_servers=bootstrap,
                kafka_session_timeout_ms=6_000,
                kafka_heartbeat_interval_ms=500,
                kafka_rebalance_timeout_ms=3_000,
            )
        )
    from boxoffice.platform.bus.sql import SqlBus

    return SqlBus(bus_url, poll_interval=0.05)


async def bench(args: argparse.Namespace, *, bootstrap: str | None, workdir: Path) -> str:
    run_id = str(int(time.time()))
    producer_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'orders.db'}"
    consumer_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'tickets.db'}"
    bus_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bus.db'}"
    orders, tickets = Database(producer_url, name="orders"), Database(consumer_url, name="tickets")
    for db in (orders, tickets):
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    bus = build_bus(args.backend, bootstrap=bootstrap, bus_url=bus_url)
    await bus.start()
    topic, group = f"{TOPIC}-{run_id}", f"{GROUP}-{run_id}"  # a fresh log and group on a shared bus

    applied = 0
    warmed_up, finished = asyncio.Event(), asyncio.Event()

    async def apply(envelope: Envelope) -> None:
        nonlocal applied
        async with tickets.uow() as uow:
            if await claim_inbox(uow.conn, group, envelope.id):
                await uow.conn.execute(insert(effects).values(event_id=envelope.id, key=envelope.key))
            await uow.commit()
        if envelope.type == "bench.warm-up":
            warmed_up.set()
            return
        applied += 1
        if applied >= args.events:
            finished.set()

    tasks = [
        asyncio.create_task(Relay(orders, bus, batch_size=500, idle_interval=0.05).run()),
        asyncio.create_task(run_consumer(bus.consumer(group, [topic]), apply)),
    ]
    try:
        # One event first, so that joining the group and creating the topic are not on the clock.
        async with orders.uow() as uow:
            uow.publish(topic, "bench.warm-up", key="warm-up", data={})
            await uow.commit()
        await asyncio.wait_for(warmed_up.wait(), 60)

        started = time.perf_counter()
        for first in range(0, args.events, PER_TRANSACTION):
            async with orders.uow() as uow:
                for i in range(first, min(first + PER_TRANSACTION, args.events)):
                    uow.publish(topic, "bench.thing-happened", key=f"aggregate-{i % KEYS}", data={"n": i})
                await uow.commit()
        committed = time.perf_counter() - started
        await asyncio.wait_for(finished.wait(), args.timeout)
        elapsed = time.perf_counter() - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.stop()
        await orders.dispose()
        await tickets.dispose()

    storage = "kafka" if args.backend == "kafka" else ("postgresql" if args.database_url else "sqlite")
    return (
        f"bus={args.backend} storage={storage} events={args.events} seconds={elapsed:.2f} "
        f"events_per_second={args.events / elapsed:,.0f} (outbox commits took {committed:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sql", "kafka"], default="sql")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers; default: start Tansu for the run")
    parser.add_argument(
        "--database-url", help="services' (and the sql bus's) database; default: SQLite files in a temp dir"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the last event")
    args = parser.parse_args()
    # The summary line only (a failure raises): no aiokafka or structlog warnings on stdout.
    logging.basicConfig(level=logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    with tempfile.TemporaryDirectory(prefix="boxoffice-bench-") as workdir:
        bootstrap_cm = kafka_bootstrap(args.bootstrap) if args.backend == "kafka" else contextlib.nullcontext(None)
        with bootstrap_cm as bootstrap:
            print(asyncio.run(bench(args, bootstrap=bootstrap, workdir=Path(workdir))))


if __name__ == "__main__":
    main()
