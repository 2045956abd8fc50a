"""Kafka record batches are compressed (``BOXOFFICE_KAFKA_COMPRESSION``), and come back whole, through Tansu.

The broker advertises a loopback proxy in front of it, so the test reads the bytes the producer sends: with
compression on, the records' repeated text is not on the wire as such; with ``none`` it is (which shows that
the proxy sees the records).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import pytest

from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.bus.kafka import KafkaBus
from boxoffice.platform.settings import Settings
from tests.harness.net import free_port
from tests.harness.tansu import Tansu

pytestmark = pytest.mark.timeout(90)

Codec = Literal["none", "gzip", "snappy", "lz4", "zstd"]


class WireTap:
    """A TCP proxy on loopback that forwards both ways and keeps what clients sent."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self.target = target
        self.sent = bytearray()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bool) -> None:
            try:
                while chunk := await reader.read(65_536):
                    if keep:
                        self.sent += chunk
                    writer.write(chunk)
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_r, broker_w, True), pump(broker_r, client_w, False))


@pytest.fixture
async def tapped() -> AsyncIterator[tuple[Tansu, WireTap]]:
    tap_port = free_port()
    broker = Tansu(advertised_port=tap_port)
    broker.start()
    tap = WireTap(tap_port, broker.port)
    await tap.start()
    try:
        yield broker, tap
    finally:
        await tap.stop()
        broker.close()


def settings(tap: WireTap, codec: Codec) -> Settings:
    return Settings(
        bus="kafka", bus_partitions=1, kafka_bootstrap_servers=f"127.0.0.1:{tap.port}", kafka_compression=codec,
        kafka_session_timeout_ms=2_000, kafka_heartbeat_interval_ms=300, kafka_rebalance_timeout_ms=1_000,
    )


async def round_trip(tap: WireTap, codec: Codec) -> tuple[bytes, list[str]]:
    """Publish records whose text is easy to spot, read them back; the bytes the producer sent and the marks."""
    topic, marker = f"compressed-{codec}", f"mark-{uuid.uuid4().hex}"
    bus = KafkaBus(settings(tap, codec), request_timeout_ms=5_000)
    await bus.start()
    sent = [
        new_event("test.clicked", source="test", key="s-1", topic=topic, data={"n": n, "text": f"{marker} " * 20})
        for n in range(30)
    ]
    try:
        tap.sent.clear()
        await bus.publish(sent)
        wire = bytes(tap.sent)
        consumer = bus.consumer(f"reader-{codec}", [topic])
        await consumer.start()
        got: list[str] = []
        try:
            for _ in range(20):
                records = await consumer.poll(max_records=100, timeout=1.0)
                got += [r.envelope.id for r in records]
                if len(got) >= len(sent):
                    break
            await consumer.commit([])
        finally:
            await consumer.stop()
    finally:
        await bus.stop()
    assert got == [e.id for e in sent]
    return wire, [marker]


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
async def test_records_are_compressed_on_the_wire_and_read_back_whole(
    tapped: tuple[Tansu, WireTap], codec: Codec
) -> None:
    _, tap = tapped
    wire, (marker,) = await round_trip(tap, codec)
    # Compressed: 30 records with the mark 20 times each, and it is on the wire once or twice (as a literal).
    assert wire.count(marker.encode()) < 30

    plain, (plain_marker,) = await round_trip(tap, "none")
    assert plain.count(plain_marker.encode()) >= 30 * 20  # the tap sees the records when they are not compressed


def test_lz4_is_the_default() -> None:
    assert Settings().kafka_compression == "lz4"
    assert KafkaBus(Settings()).compression == "lz4"
    assert KafkaBus(Settings(kafka_compression="none")).compression is None
