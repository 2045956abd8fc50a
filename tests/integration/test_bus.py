"""The event bus end to end: outbox -> relay -> bus -> consumer groups that apply each event once.

Every test runs on the three backends a deployment can choose: the sql bus on SQLite, the sql bus on
PostgreSQL, and Kafka (the Tansu broker). A producing service ("orders") writes events with its unit of
work; a consuming service ("tickets") applies each one in a transaction with ``claim_inbox`` and records
the effect in a table, whose autoincrement id gives the order in which effects were applied.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from boxoffice.platform.bus.consumer import Batched, Handler, run_consumer
from boxoffice.platform.bus.deadletters import DeadLetters
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.bus.kafka import KafkaBus
from boxoffice.platform.bus.port import Bus, Consumer
from boxoffice.platform.bus.relay import Relay
from boxoffice.platform.bus.sql import SqlBus
from boxoffice.platform.bus.tables import (
    add_messaging_tables,
    claim_inbox,
    claim_inbox_many,
    outbox_backlog,
    outbox_batch,
)
from boxoffice.platform.db import Database
from boxoffice.platform.migrate import PLATFORM, alembic_config
from boxoffice.platform.settings import Settings
from tests.harness.postgres import create_database
from tests.harness.tansu import Tansu

pytestmark = pytest.mark.timeout(90)

PARTITIONS = 4
KEYS = [f"event-{i}" for i in range(6)]
WAIT = 40.0  # seconds any one expectation may take before the test fails

metadata = MetaData()
add_messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer_group", String(200), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("key", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
)


def kafka_settings(bootstrap: str) -> Settings:
    return Settings(
        bus="kafka",
        bus_partitions=PARTITIONS,
        kafka_bootstrap_servers=bootstrap,
        # Short, so that joining a group takes about a second (Tansu holds the first join that long).
        kafka_session_timeout_ms=2_000,
        kafka_heartbeat_interval_ms=300,
        kafka_rebalance_timeout_ms=1_000,
    )


@dataclass
class Backend:
    kind: str  # "sql" or "kafka"
    bus_url: str
    producer_url: str
    consumer_url: str
    broker: Tansu | None = None

    def make_bus(self) -> Bus:
        if self.broker is not None:
            return KafkaBus(kafka_settings(self.broker.bootstrap), request_timeout_ms=3_000)
        return SqlBus(self.bus_url, partitions=PARTITIONS, poll_interval=0.05)


BACKENDS = [
    pytest.param("sqlite", id="sql-sqlite"),
    pytest.param("postgres", id="sql-postgres", marks=pytest.mark.postgres),
    pytest.param("kafka", id="kafka", marks=pytest.mark.kafka),
]


def _backend(request: pytest.FixtureRequest, tmp_path: Path, *, broker_fixture: str) -> Backend:
    if request.param == "postgres":
        admin = request.getfixturevalue("postgres_admin_url")
        return Backend("sql", create_database(admin), create_database(admin), create_database(admin))
    orders, tickets = (f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in ("orders", "tickets"))
    if request.param == "kafka":
        return Backend("kafka", "", orders, tickets, broker=request.getfixturevalue(broker_fixture))
    return Backend("sql", f"sqlite+aiosqlite:///{tmp_path / 'bus.db'}", orders, tickets)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request, tmp_path, broker_fixture="kafka_broker")


@pytest.fixture(params=BACKENDS)
def backend_with_own_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Like ``backend``, but a Kafka broker of this test alone, which it may stop."""
    return _backend(request, tmp_path, broker_fixture="own_kafka_broker")


class Outage:
    """The bus as a relay sees it when the network to it is down: ``publish`` fails while ``down``."""

    name = "outage"

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.down = False
        self.refused = 0

    async def start(self) -> None:
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.stop()

    async def ping(self) -> None:
        if self.down:
            raise ConnectionError("bus unreachable")
        await self.bus.ping()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionError("bus unreachable")
        await self.bus.publish(envelopes)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return self.bus.consumer(group, topics)


class Poison(Exception):
    """An event its handler cannot apply, however often it tries."""


class Crash(Exception):
    """A consumer process dying inside its transaction, after the effect and before the commit."""


class Harness:
    """Two services around one bus: ``orders`` publishes through its outbox, ``tickets`` consumes."""

    def __init__(self, backend: Backend) -> None:
        self.bus = backend.make_bus()
        self.orders = Database(backend.producer_url, name="orders")
        self.tickets = Database(backend.consumer_url, name="tickets")
        self.topic = f"test-{uuid.uuid4().hex[:8]}"
        self.deliveries: Counter[tuple[str, str]] = Counter()  # (group, event id) -> handler calls
        self.batch_deliveries: Counter[tuple[str, str]] = Counter()  # the same, in a batch (``Batched.many``)
        self._next_seq: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self.dead_letters = DeadLetters(self.tickets)

    async def __aenter__(self) -> Harness:
        for db in (self.orders, self.tickets):
            async with db.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        await self.bus.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bus.stop()
        await self.orders.dispose()
        await self.tickets.dispose()

    def start_relay(self, bus: Bus | None = None) -> None:
        relay = Relay(self.orders, bus or self.bus, batch_size=7, idle_interval=0.05)
        self._tasks.append(asyncio.create_task(relay.run()))

    def start_consumer(
        self,
        group: str,
        *,
        crash: Callable[[Envelope], bool] = lambda _e: False,
        poison: Callable[[Envelope], bool] = lambda _e: False,
        max_attempts: int | None = None,
        batched: bool = False,
    ) -> None:
        """``poison``: events the handler fails on every time. ``max_attempts``: dead-letter them after that
        many attempts (the tickets database must have the platform's tables: ``migrate_platform``).
        ``batched``: the handler also takes a poll's events together, in one transaction (``Batched``)."""

        async def apply(envelope: Envelope) -> None:
            self.deliveries[(group, envelope.id)] += 1
            if poison(envelope):
                raise Poison(envelope.id)
            async with self.tickets.uow() as uow:
                if not await claim_inbox(uow.conn, group, envelope.id):
                    return  # applied before: this is a redelivery
                await uow.conn.execute(
                    insert(effects).values(
                        consumer_group=group, event_id=envelope.id, key=envelope.key, seq=envelope.data["seq"]
                    )
                )
                if crash(envelope):
                    raise Crash(envelope.id)
                await uow.commit()

        async def apply_many(envelopes: Sequence[Envelope]) -> None:
            for envelope in envelopes:
                self.batch_deliveries[(group, envelope.id)] += 1
            if any(poison(e) for e in envelopes):
                raise Poison("in this batch")
            async with self.tickets.uow() as uow:
                claimed = await claim_inbox_many(uow.conn, group, [e.id for e in envelopes])
                for envelope in envelopes:
                    if envelope.id not in claimed:
                        continue  # applied before (or earlier in this batch): a redelivery
                    claimed.discard(envelope.id)
                    await uow.conn.execute(
                        insert(effects).values(
                            consumer_group=group, event_id=envelope.id, key=envelope.key, seq=envelope.data["seq"]
                        )
                    )
                    if crash(envelope):
                        raise Crash(envelope.id)
                await uow.commit()

        handler: Handler = Batched(apply, apply_many) if batched else apply
        # The group's name on the bus is unique to the test: the session's broker holds many tests' groups.
        consumer = self.bus.consumer(self.group(group), [self.topic])
        if max_attempts is None:
            running = run_consumer(consumer, handler, max_backoff=0.2, max_attempts=10**9)
        else:
            running = run_consumer(
                consumer,
                handler,
                max_attempts=max_attempts,
                dead_letters=self.dead_letters,
                backoff=0.02,
                max_backoff=0.1,
            )
        self._tasks.append(asyncio.create_task(running))

    def group(self, group: str) -> str:
        """The group's name on the bus: unique to the test (the session's broker holds many tests' groups)."""
        return f"{group}-{self.topic}"

    async def migrate_platform(self) -> None:
        await asyncio.to_thread(command.upgrade, alembic_config(PLATFORM, self.tickets.url), "head")

    def lag(self, group: str) -> float:
        """The group's lag summed over the partitions, as its gauges say."""
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "boxoffice_bus_consumer_lag"
            for sample in metric.samples
            if sample.labels["group"] == self.group(group) and sample.labels["topic"] == self.topic
        )

    async def place(self, count: int) -> list[str]:
        """Commit ``count`` events, ten per transaction, keys round-robin; each key numbers its events."""
        ids: list[str] = []
        for start in range(0, count, 10):
            async with self.orders.uow() as uow:
                for i in range(start, min(start + 10, count)):
                    key = KEYS[i % len(KEYS)]
                    seq, self._next_seq[key] = self._next_seq[key], self._next_seq[key] + 1
                    envelope = uow.publish(self.topic, "test.thing-happened", key=key, data={"seq": seq})
                    ids.append(envelope.id)
                await uow.commit()
        return ids

    async def backlog(self) -> int:
        async with self.orders.read() as conn:
            return await outbox_backlog(conn)

    async def applied(self, group: str) -> list[tuple[str, str, int]]:
        """(event id, key, seq) of the group's effects, in the order they were applied."""
        async with self.tickets.read() as conn:
            rows = await conn.execute(
                select(effects.c.event_id, effects.c.key, effects.c.seq)
                .where(effects.c.consumer_group == group)
                .order_by(effects.c.id)
            )
            return [(event_id, key, seq) for event_id, key, seq in rows]

    async def wait_applied(self, group: str, count: int) -> list[tuple[str, str, int]]:
        async def enough() -> bool:
            return len(await self.applied(group)) >= count

        await eventually(enough, f"{count} effects in group {group}")
        await asyncio.sleep(0.3)  # anything applied twice would show up now
        return await self.applied(group)


async def eventually(condition: Callable[[], Awaitable[bool]], what: str, *, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {what}")
        await asyncio.sleep(0.05)


def assert_each_once_in_key_order(applied: list[tuple[str, str, int]], published: list[str]) -> None:
    ids = [event_id for event_id, _key, _seq in applied]
    assert len(ids) == len(set(ids)), "an event was applied twice"
    assert set(ids) == set(published), "an event was lost (or one never published was applied)"
    by_key: defaultdict[str, list[int]] = defaultdict(list)
    for _event_id, key, seq in applied:
        by_key[key].append(seq)
    for key, seqs in by_key.items():
        assert seqs == list(range(len(seqs))), f"events of {key} applied out of order: {seqs}"


async def test_events_flow_from_outbox_to_consumer_once_in_key_order(backend: Backend) -> None:
    async with Harness(backend) as h:
        h.start_relay()
        h.start_consumer("tickets")
        published = await h.place(60)

        applied = await h.wait_applied("tickets", len(published))

        assert_each_once_in_key_order(applied, published)
        await eventually(lambda: _is_zero(h.backlog()), "the outbox is drained")


async def test_relay_crash_between_publish_and_delete_delivers_and_applies_once(backend: Backend) -> None:
    async with Harness(backend) as h:
        published = await h.place(30)
        # The relay dies right after the bus took the batch and before it deleted the rows: do its publish.
        async with h.orders.read() as conn:
            rows = await outbox_batch(conn, 1000)
        await h.bus.publish([Envelope.from_json(payload, topic=topic) for _id, _eid, topic, _key, payload in rows])
        assert await h.backlog() == len(published)

        h.start_relay()  # the restarted relay publishes the same rows again
        h.start_consumer("tickets")
        await eventually(lambda: _is_zero(h.backlog()), "the outbox is drained")
        applied = await h.wait_applied("tickets", len(published))

        assert_each_once_in_key_order(applied, published)
        await eventually(
            lambda: _true(all(h.deliveries[("tickets", e)] >= 2 for e in published)),
            "every event was delivered twice",
        )
        assert await h.applied("tickets") == applied


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_consumer_crash_before_commit_gets_the_event_again_and_applies_it_once(
    backend: Backend, batched: bool
) -> None:
    crashed: set[str] = set()

    def crash_once_on_every_fifth(envelope: Envelope) -> bool:
        if envelope.data["seq"] % 5 == 2 and envelope.id not in crashed:
            crashed.add(envelope.id)
            return True
        return False

    async with Harness(backend) as h:
        h.start_relay()
        h.start_consumer("tickets", crash=crash_once_on_every_fifth, batched=batched)
        published = await h.place(60)

        applied = await h.wait_applied("tickets", len(published))

        assert_each_once_in_key_order(applied, published)
        assert len(crashed) == 6 * 2  # seq 2 and 7 of each of the six keys
        # One by one, a crashed event is delivered again; in a batch, the whole batch is (then one by one).
        delivered = [h.deliveries[("tickets", e)] + h.batch_deliveries[("tickets", e)] for e in crashed]
        assert all(n >= 2 for n in delivered) if batched else all(n == 2 for n in delivered)


async def test_broker_outage_grows_the_outbox_then_drains_without_losing_events(
    backend_with_own_broker: Backend,
) -> None:
    backend = backend_with_own_broker
    broker = backend.broker
    async with Harness(backend) as h:
        outage = Outage(h.bus)
        h.start_relay(outage)
        h.start_consumer("tickets")
        before = await h.place(20)
        await h.wait_applied("tickets", len(before))

        # Kafka: the broker process is stopped (SIGSTOP), so every request to it goes unanswered, and it comes
        # back with its log, as a real broker does. (Killing this Tansu is no model of an outage: it keeps its
        # log in memory and restarts empty, offsets from 0 again.) sql: the relay's way to the bus is cut.
        if broker is None:
            outage.down = True
        else:
            broker.pause()
        try:
            probe = asyncio.ensure_future(outage.ping())
            done, _ = await asyncio.wait({probe}, timeout=2)
            probe.cancel()
            assert not done or probe.exception() is not None, "the bus answered during its outage"
            during = await h.place(40)
            await asyncio.sleep(2.5)  # several relay attempts; longer than a Kafka group session
            assert await h.backlog() == len(during)
            if broker is None:
                assert outage.refused >= 3
        finally:
            outage.down = False
            if broker is not None:
                broker.resume()
        await eventually(lambda: _is_zero(h.backlog()), "the outbox drained after the outage")
        applied = await h.wait_applied("tickets", len(before) + len(during))

        assert_each_once_in_key_order(applied, before + during)


async def test_every_consumer_group_receives_every_event(backend: Backend) -> None:
    async with Harness(backend) as h:
        h.start_relay()
        h.start_consumer("tickets")
        h.start_consumer("analytics")
        published = await h.place(40)

        assert_each_once_in_key_order(await h.wait_applied("tickets", len(published)), published)
        assert_each_once_in_key_order(await h.wait_applied("analytics", len(published)), published)


async def _is_zero(value: Awaitable[int]) -> bool:
    return await value == 0


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_a_poison_event_goes_to_the_dead_letters_and_its_partition_moves_on(
    backend: Backend, batched: bool
) -> None:
    def poisoned(envelope: Envelope) -> bool:
        return envelope.key == KEYS[0] and envelope.data["seq"] == 1

    async with Harness(backend) as h:
        await h.migrate_platform()
        h.start_relay()
        h.start_consumer("tickets", poison=poisoned, max_attempts=3, batched=batched)
        published = await h.place(60)  # ten events per key: the poisoned one is the 2nd of KEYS[0]

        applied = await h.wait_applied("tickets", len(published) - 1)

        poison = published[len(KEYS)]  # keys go round-robin: the second event of KEYS[0]
        assert h.deliveries[("tickets", poison)] == 3  # the attempts allowed, then no more
        assert [seq for _id, key, seq in applied if key == KEYS[0]] == [0, *range(2, 10)]  # its partition went on
        others = [a for a in applied if a[1] != KEYS[0]]
        assert_each_once_in_key_order(others, [e for i, e in enumerate(published) if i % len(KEYS) != 0])
        letters = await h.dead_letters.list()
        assert [(d.group, d.topic, d.event_id, d.attempts) for d in letters] == [
            (h.group("tickets"), h.topic, poison, 3)
        ]
        letter = letters[0]
        assert 0 <= letter.partition < PARTITIONS and letter.offset >= 0 and letter.key == KEYS[0]
        assert "Poison" in letter.error and letter.envelope().data == {"seq": 1}
        counted = REGISTRY.get_sample_value(
            "boxoffice_bus_dead_letters_total", {"group": h.group("tickets"), "topic": h.topic}
        )
        assert counted == 1
        retried = REGISTRY.get_sample_value(
            "boxoffice_bus_event_retries_total", {"group": h.group("tickets"), "topic": h.topic}
        )
        assert retried == 2  # the failed attempts before the last one, which dead-lettered it
        await asyncio.sleep(0.5)
        assert h.deliveries[("tickets", poison)] == 3


async def test_consumer_lag_is_what_the_group_has_not_handled_yet(backend: Backend) -> None:
    failing = True

    def stuck(_envelope: Envelope) -> bool:
        return failing

    async with Harness(backend) as h:
        h.start_relay()
        published = await h.place(30)
        await eventually(lambda: _is_zero(h.backlog()), "the outbox is drained")
        h.start_consumer("tickets", poison=stuck)  # fails every event, tries for ever: nothing is handled

        await eventually(lambda: _true(h.lag("tickets") == len(published)), "a lag of every event")
        failing = False
        await h.wait_applied("tickets", len(published))
        await eventually(lambda: _true(h.lag("tickets") == 0), "no lag once every event is handled")


@pytest.mark.kafka
async def test_a_kafka_publish_to_a_topic_just_created_does_not_strand_the_records_for_the_others(
    kafka_broker: Tansu,
) -> None:
    """aiokafka's producer knows the topics that existed when it started only from a cluster-wide metadata
    answer; adding a new topic narrowed its metadata to that one, and records queued for the others waited
    for a leader until they expired (NotLeaderForPartitionError after request_timeout_ms)."""
    run = uuid.uuid4().hex[:8]
    old, new = f"old-{run}", f"new-{run}"
    creator = KafkaBus(kafka_settings(kafka_broker.bootstrap), request_timeout_ms=3_000)
    await creator.ensure_topics({old})
    bus = KafkaBus(kafka_settings(kafka_broker.bootstrap), request_timeout_ms=3_000)
    try:
        for attempt in range(3):
            # Stranded records expire after request_timeout_ms and fail the publish (no timing asserted here).
            await bus.publish(
                [
                    new_event("test.e", source="test", key=f"k{attempt}", data={}, topic=t)
                    for t in (old, f"{new}-{attempt}")
                ]
            )
    finally:
        await bus.stop()
        await creator.stop()
