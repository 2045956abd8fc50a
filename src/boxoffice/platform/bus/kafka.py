"""The Kafka-protocol bus backend (aiokafka): for running services as separate processes at scale.

The semantics are those of the ``sql`` backend, which is the model:

- ``publish`` returns only once every envelope is acknowledged by all in-sync replicas (``acks="all"``) of
  an idempotent producer (plain, if the broker refuses producer ids: Tansu does), so the relay deletes
  outbox rows only for events the broker has. Record batches are compressed (``kafka_compression``, lz4 by
  default). An event goes to the partition of its key (the producer's
  default key partitioner), so one key is one ordered log.
- A consumer group commits its positions itself, after the handler's effects (``enable_auto_commit`` off).
  When a handler fails, ``commit`` gets a prefix of the last poll; the partitions it left behind are seeked
  back to their first uncommitted record, so the next poll delivers them again, in order.
- A broker outage never fails a service at boot: clients connect on first use. A failed publish checks the
  topics again next time and starts a fresh producer; a failed poll rejoins the group from the committed
  positions (the relay keeps the rows in its outbox and backs off meanwhile). Topics are created on demand
  with ``bus_partitions`` partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    MessageSizeTooLargeError,
    TopicAlreadyExistsError,
    UnknownError,
    UnsupportedVersionError,
    for_code,
)

from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Record
from boxoffice.platform.metrics import BUS_CONSUMER_LAG
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.bus.kafka")

_CLOSE_TIMEOUT = 5.0
_RECORD_ERRORS = (MessageSizeTooLargeError,)  # a fault of one record, not of the connection


async def _close(client: Any) -> None:
    """Stop an aiokafka client without waiting long for a broker that is gone."""
    if client is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop() if hasattr(client, "stop") else client.close(), _CLOSE_TIMEOUT)


async def _answered_within(call: Awaitable[object], seconds: float) -> None:
    """Wait for ``call``; TimeoutError if it has not answered in time. Not ``asyncio.wait_for``: when aiokafka
    swallows the cancellation of a request that timed out, wait_for returns as if it had been answered (a
    frozen broker then looked healthy)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer from the broker in {seconds:g} s")
    task.result()


async def _tracked(producer: AIOKafkaProducer, topics: set[str]) -> None:
    """Make the producer's metadata track ``topics`` by name before records go to them.

    aiokafka's client starts out tracking no topic, so its metadata then holds every topic of the cluster, and
    a send to a topic found there does not add it to the tracked set. The first send to a topic NOT found there
    (a topic just created) adds that one, and the next metadata answer then holds that topic alone: batches
    already queued for the others have no leader any more and wait until they expire (request_timeout_ms),
    failing with NotLeaderForPartitionError. Two relays sharing the producer, one publishing to a topic just
    created, lost ten seconds that way. ``add_topic`` answers at once for a topic already tracked."""
    for topic in topics:
        await producer.client.add_topic(topic)


class KafkaBus:
    name = "kafka"

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "boxoffice",
        replication_factor: int = 1,
        request_timeout_ms: int = 10_000,
        linger_ms: int = 2,
    ) -> None:
        self.bootstrap_servers = settings.kafka_bootstrap_servers
        self.partitions = settings.bus_partitions
        self.session_timeout_ms = settings.kafka_session_timeout_ms
        self.heartbeat_interval_ms = settings.kafka_heartbeat_interval_ms
        self.rebalance_timeout_ms = settings.kafka_rebalance_timeout_ms
        self.compression = None if settings.kafka_compression == "none" else settings.kafka_compression
        self.client_id = client_id
        self.replication_factor = replication_factor
        self.request_timeout_ms = request_timeout_ms
        self.linger_ms = linger_ms
        self.idempotent = True  # until the broker refuses to hand out producer ids
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._topics: set[str] = set()  # topics known to exist on the broker
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Nothing to connect yet: a broker that is down at boot only delays publishing (see module doc)."""

    async def stop(self) -> None:
        producer, admin, self._producer, self._admin = self._producer, self._admin, None, None
        await _close(producer)
        await _close(admin)
        self._topics.clear()

    async def ping(self) -> None:
        try:
            admin = await self._admin_client()
            await _answered_within(admin.describe_cluster(), self.request_timeout_ms / 1000)
        except Exception:
            await self._drop_admin()
            raise

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        producer: AIOKafkaProducer | None = None
        try:
            topics = {e.topic for e in envelopes}
            await self.ensure_topics(topics)
            producer = await self._producer_client()
            await _tracked(producer, topics)
            # Appending one by one keeps the given order within each partition, and aiokafka keeps it on the
            # wire: one request in flight per broker, a retried batch back at the head of its partition.
            sent = [await producer.send(e.topic, e.to_json(), key=e.key.encode()) for e in envelopes]
            await asyncio.gather(*sent)
        except Exception as exc:
            # The broker may have restarted or lost a topic: check the topics again next time, and start a
            # fresh producer unless one record was the problem (the relay retries, which fails the same way,
            # and other services' relays share this producer).
            self._topics.clear()
            if producer is not None and producer is self._producer and not isinstance(exc, _RECORD_ERRORS):
                self._producer = None
                await _close(producer)
            raise

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        return KafkaConsumer(self, group, topics)

    async def ensure_topics(self, topics: set[str] | Sequence[str]) -> None:
        """Create the topics that do not exist yet, with ``bus_partitions`` partitions."""
        if self._topics.issuperset(topics):
            return
        async with self._lock:
            missing = sorted(set(topics) - self._topics)
            if not missing:
                return
            try:
                admin = await self._admin_client()
                response = await admin.create_topics(
                    [NewTopic(t, self.partitions, self.replication_factor) for t in missing],
                    timeout_ms=self.request_timeout_ms,
                )
            except Exception:
                await self._drop_admin()
                raise
            for topic, code, *_ in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise for_code(code)(f"cannot create topic {topic!r}")
            self._topics.update(missing)

    async def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                client_id=f"{self.client_id}-admin",
                request_timeout_ms=self.request_timeout_ms,
            )
            try:
                await asyncio.wait_for(admin.start(), self.request_timeout_ms / 1000)
            except BaseException:
                await _close(admin)
                raise
            self._admin = admin
        return self._admin

    async def _producer_client(self) -> AIOKafkaProducer:
        if self._producer is None:
            try:
                self._producer = await self._start_producer(idempotent=self.idempotent)
            except (UnknownError, UnsupportedVersionError) as exc:
                if not self.idempotent:
                    raise
                # Some Kafka-protocol brokers (Tansu 0.6) refuse aiokafka's InitProducerId v0. Without
                # idempotence a retried batch may be written twice (the inbox absorbs that); order per
                # partition still holds, as aiokafka sends one request per broker at a time and puts a
                # retried batch back at the head of its partition's queue.
                log.warning("broker refuses idempotent producers; publishing without", error=repr(exc))
                self.idempotent = False
                self._producer = await self._start_producer(idempotent=False)
        return self._producer

    async def _start_producer(self, *, idempotent: bool) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-relay",
            acks="all",
            enable_idempotence=idempotent,
            compression_type=self.compression,
            linger_ms=self.linger_ms,
            request_timeout_ms=self.request_timeout_ms,
        )
        try:
            await producer.start()
        except BaseException:
            await _close(producer)
            raise
        return producer

    async def _drop_admin(self) -> None:
        admin, self._admin = self._admin, None
        await _close(admin)


class KafkaConsumer:
    """One member of a consumer group; Kafka spreads the topics' partitions over the members."""

    def __init__(self, bus: KafkaBus, group: str, topics: Sequence[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self._polled: list[Record] = []
        self._lag_reported: set[TopicPartition] = set()

    async def start(self) -> None:
        """Joining the group waits for the first ``poll``, so a broker that is down does not fail boot."""

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._polled = []
        self._forget_lag(set())
        await _close(consumer)

    async def poll(self, *, max_records: int = 200, timeout: float = 1.0) -> list[Record]:
        consumer = await self._client()
        try:
            batches = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        except Exception:
            await self.stop()  # rejoin from the committed positions on the next poll
            raise
        self._polled = [
            Record(tp.topic, tp.partition, message.offset, Envelope.from_json(message.value, topic=tp.topic))
            for tp, messages in batches.items()
            for message in messages
        ]
        pending = {tp: messages[0].offset for tp, messages in batches.items() if messages}
        await self._report_lag(consumer, pending)
        return list(self._polled)

    async def commit(self, records: Sequence[Record]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        committed = {(r.topic, r.partition, r.offset) for r in records}
        # Rewind first (it is local and cannot fail on the network): a commit that fails afterwards must not
        # leave the fetch positions past records whose handler never succeeded.
        rewind: dict[TopicPartition, int] = {}
        for record in self._polled:
            tp = TopicPartition(record.topic, record.partition)
            if (record.topic, record.partition, record.offset) not in committed and tp not in rewind:
                rewind[tp] = record.offset
        assigned = consumer.assignment()
        for tp, offset in rewind.items():
            if tp in assigned:  # a partition lost in a rebalance restarts from its committed position elsewhere
                consumer.seek(tp, offset)
        self._polled = []
        if not records:
            return
        positions: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            positions[tp] = max(positions.get(tp, 0), record.offset + 1)
        await consumer.commit(positions)
        await self._report_lag(consumer, {})

    async def _report_lag(self, consumer: AIOKafkaConsumer, pending: dict[TopicPartition, int]) -> None:
        """The lag of each partition this member has: its log end (the highwater the broker told the last
        fetch) minus the first record not handled yet (``pending``, polled and not committed) or else the
        consumer's position."""
        assigned = set(consumer.assignment())
        for tp in assigned:
            highwater = consumer.highwater(tp)
            position = pending.get(tp)
            if highwater is None:
                continue
            if position is None:
                with contextlib.suppress(Exception):  # lost in a rebalance meanwhile: the next poll reports it
                    position = await asyncio.wait_for(consumer.position(tp), 1.0)
            if position is None:
                continue
            BUS_CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(max(0, highwater - position))
            self._lag_reported.add(tp)
        self._forget_lag(assigned)

    def _forget_lag(self, keep: set[TopicPartition]) -> None:
        """Drop the gauges of partitions this member no longer has (another member reports them)."""
        for tp in self._lag_reported - keep:
            with contextlib.suppress(KeyError):
                BUS_CONSUMER_LAG.remove(self.group, tp.topic, str(tp.partition))
        self._lag_reported &= keep

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            await self.bus.ensure_topics(self.topics)
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bus.bootstrap_servers,
                client_id=f"{self.bus.client_id}-{self.group}",
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.bus.session_timeout_ms,
                heartbeat_interval_ms=self.bus.heartbeat_interval_ms,
                rebalance_timeout_ms=self.bus.rebalance_timeout_ms,
                # A JoinGroup may be held by the broker for the whole rebalance.
                request_timeout_ms=max(self.bus.request_timeout_ms, self.bus.rebalance_timeout_ms + 5_000),
            )
            try:
                await consumer.start()
            except BaseException:
                await _close(consumer)
                raise
            self._consumer = consumer
        return self._consumer
