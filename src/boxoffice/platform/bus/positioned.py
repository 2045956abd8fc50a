"""Consuming with positions the consumer keeps itself (Kafka's "offsets stored outside Kafka").

A stream processor that commits its state and its read positions in ONE transaction of its own database
needs no inbox row per record: after a crash it resumes exactly where its last committed state ends, so no
record is applied twice or lost. This module gives such a consumer its records:

- The caller hands over ``load_positions(partitions) -> {(topic, partition): next_offset}``, read from its
  own database. The consumer asks it whenever it gains partitions (the sql backend's lease, a Kafka
  rebalance) and after ``rewind()``, and reads on from there; partitions the caller has never stored start
  at the beginning of the log.
- ``poll`` returns ``RawRecord``s (the payload is not parsed, so the caller decides what a malformed record
  is) and moves the in-memory positions past them. The caller stores ``record.offset + 1`` with its effects;
  if its transaction fails it calls ``rewind()`` and the next poll starts again from what it stored.
- ``owned()`` is the set of partitions this member reads at the moment (all of them on the sql backend,
  while it holds the group's lease; Kafka's assignment otherwise). ``caught_up()`` says whether the last
  poll reached the end of each of them: a stream processor closes windows by the wall clock only then,
  never while it works through a backlog.

Nothing is committed to the bus's own group positions; two members that briefly both believe they own a
partition (a rebalance, a lease taken over) are fenced by the caller's compare-and-set of its stored
positions, never by the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from sqlalchemy import and_, update
from sqlalchemy.dialects import postgresql, sqlite

from boxoffice.platform.aio import wait_event
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.kafka import KafkaBus, _close
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.bus.sql import SqlBus, bus_leases, read_heads, read_log

Partition = tuple[str, int]
"""(topic, partition)"""
Positions = dict[Partition, int]
LoadPositions = Callable[[Sequence[Partition]], Awaitable[Positions]]


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    payload: bytes | str

    def envelope(self) -> Envelope:
        """The event; raises (``ValueError``, ``KeyError``, ``TypeError``) when the payload is not one."""
        return Envelope.from_json(self.payload, topic=self.topic)


class PositionedConsumer(Protocol):
    group: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def owned(self) -> frozenset[Partition]:
        """The partitions this member reads now."""

    def rewind(self) -> None:
        """Forget the in-memory positions: the next poll loads them again from the caller's store."""

    def caught_up(self) -> bool:
        """Whether the last poll reached the end of every owned partition (nothing more was there)."""

    async def poll(self, *, max_records: int = 1000, timeout: float = 1.0) -> list[RawRecord]:
        """Records after the positions, in log order per partition; [] after ``timeout`` seconds."""


def positioned_consumer(
    bus: Bus, group: str, topics: Sequence[str], load_positions: LoadPositions
) -> PositionedConsumer:
    if isinstance(bus, SqlBus):
        return SqlPositionedConsumer(bus, group, topics, load_positions)
    if isinstance(bus, KafkaBus):
        return KafkaPositionedConsumer(bus, group, topics, load_positions)
    raise TypeError(f"no positioned consumer for the {type(bus).__name__} backend")


class SqlPositionedConsumer:
    """The sql backend: one member of the group holds a lease and reads every partition of the topics."""

    lease_seconds = 10.0

    def __init__(self, bus: SqlBus, group: str, topics: Sequence[str], load_positions: LoadPositions) -> None:
        self.bus = bus
        self.group = f"{group}:positioned"  # its own lease: it never shares positions with a plain consumer
        self.topics = list(topics)
        self.load_positions = load_positions
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wakeup = asyncio.Event()
        self._positions: Positions | None = None
        self._partitions: frozenset[Partition] = frozenset()
        self._lease_until = 0.0
        self._caught_up = False

    async def start(self) -> None:
        self.bus._waiters[self._wakeup] = frozenset(self.topics)

    async def stop(self) -> None:
        self.bus._waiters.pop(self._wakeup, None)
        if self._lease_until > time.time():
            async with self.bus.db.begin() as conn:
                await conn.execute(
                    update(bus_leases)
                    .where(and_(bus_leases.c.consumer_group == self.group, bus_leases.c.owner == self.owner))
                    .values(expires_at=0.0)
                )
        self._lease_until, self._positions, self._partitions = 0.0, None, frozenset()

    def owned(self) -> frozenset[Partition]:
        return self._partitions if self._lease_until > time.time() else frozenset()

    def rewind(self) -> None:
        self._positions = None

    def caught_up(self) -> bool:
        return self._caught_up and bool(self.owned())

    async def _hold_lease(self) -> bool:
        now = time.time()
        if self._lease_until - now > self.lease_seconds / 2:
            return True
        async with self.bus.db.begin() as conn:
            upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            await conn.execute(
                upsert(bus_leases)
                .values(consumer_group=self.group, owner=self.owner, expires_at=0.0)
                .on_conflict_do_nothing()
            )
            taken = await conn.execute(
                update(bus_leases)
                .where(
                    and_(
                        bus_leases.c.consumer_group == self.group,
                        (bus_leases.c.owner == self.owner) | (bus_leases.c.expires_at < now),
                    )
                )
                .values(owner=self.owner, expires_at=now + self.lease_seconds)
            )
        if taken.rowcount != 1:
            self._lease_until, self._positions = 0.0, None
            return False
        if self._lease_until < now:  # newly (re)acquired: another member may have moved on meanwhile
            self._positions = None
        self._lease_until = now + self.lease_seconds
        return True

    async def _fetch(self, max_records: int) -> list[RawRecord]:
        async with self.bus.db.read() as conn:
            heads = await read_heads(conn, self.topics)
            if self._positions is None or not self._partitions.issuperset(heads):
                self._partitions = frozenset(heads)
                self._positions = await self.load_positions(sorted(self._partitions))
            positions = self._positions
            records: list[RawRecord] = []
            for (topic, partition), head in sorted(heads.items()):
                start = positions.get((topic, partition), 0)
                if head <= start or len(records) >= max_records:
                    continue
                rows = await read_log(conn, topic, partition, start, max_records - len(records))
                records.extend(RawRecord(topic, partition, offset, payload) for offset, payload in rows)
        for record in records:
            positions[(record.topic, record.partition)] = record.offset + 1
        self._caught_up = all(positions.get(tp, 0) >= head for tp, head in heads.items())
        return records

    async def poll(self, *, max_records: int = 1000, timeout: float = 1.0) -> list[RawRecord]:
        deadline = time.monotonic() + timeout
        while True:
            self._wakeup.clear()
            self._caught_up = False
            if await self._hold_lease():
                records = await self._fetch(max_records)
                if records:
                    return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await wait_event(self._wakeup, min(remaining, self.bus.poll_interval))


class _SeekOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaPositionedConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.owner._assigned = frozenset()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.owner._seek(assigned)


class KafkaPositionedConsumer:
    """The kafka backend: Kafka spreads the partitions over the group's members; each member seeks its
    newly assigned partitions to the positions the caller stored."""

    def __init__(self, bus: KafkaBus, group: str, topics: Sequence[str], load_positions: LoadPositions) -> None:
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self.load_positions = load_positions
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: frozenset[Partition] = frozenset()
        self._next: dict[TopicPartition, int] = {}
        self._stale = False

    async def start(self) -> None:
        """Joining the group waits for the first ``poll``, so a broker that is down does not fail boot."""

    async def stop(self) -> None:
        consumer, self._consumer, self._assigned = self._consumer, None, frozenset()
        self._next = {}
        await _close(consumer)

    def owned(self) -> frozenset[Partition]:
        return self._assigned

    def rewind(self) -> None:
        self._stale = True

    def caught_up(self) -> bool:
        consumer = self._consumer
        if consumer is None or not self._assigned or self._stale:
            return False
        for tp in consumer.assignment():
            end = consumer.highwater(tp)  # known once a fetch for the partition has answered
            if end is None or self._next.get(tp, 0) < end:
                return False
        return True

    async def _seek(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        positions = await self.load_positions(sorted((tp.topic, tp.partition) for tp in assigned))
        for tp in assigned:
            self._next[tp] = positions.get((tp.topic, tp.partition), 0)
            consumer.seek(tp, self._next[tp])
        self._assigned = frozenset((tp.topic, tp.partition) for tp in assigned)
        self._stale = False

    async def poll(self, *, max_records: int = 1000, timeout: float = 1.0) -> list[RawRecord]:
        consumer = await self._client()
        try:
            if self._stale:
                await self._seek(consumer.assignment())
            batches = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        except Exception:
            await self.stop()  # rejoin, and seek to the stored positions again, on the next poll
            raise
        records = [
            RawRecord(tp.topic, tp.partition, message.offset, message.value)
            for tp, messages in batches.items()
            if (tp.topic, tp.partition) in self._assigned
            for message in messages
        ]
        for record in records:
            self._next[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return records

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            await self.bus.ensure_topics(self.topics)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bus.bootstrap_servers,
                client_id=f"{self.bus.client_id}-{self.group}",
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.bus.session_timeout_ms,
                heartbeat_interval_ms=self.bus.heartbeat_interval_ms,
                rebalance_timeout_ms=self.bus.rebalance_timeout_ms,
                request_timeout_ms=max(self.bus.request_timeout_ms, self.bus.rebalance_timeout_ms + 5_000),
            )
            self._consumer = consumer
            try:
                await consumer.start()
                consumer.subscribe(self.topics, listener=_SeekOnAssign(self))
            except BaseException:
                self._consumer = None
                with contextlib.suppress(Exception):
                    await _close(consumer)
                raise
        return self._consumer
