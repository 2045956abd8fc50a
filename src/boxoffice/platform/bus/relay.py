"""The relay: moves committed outbox rows to the bus, oldest first, then deletes them.

A crash after publishing and before deleting publishes those rows again on restart: consumers see an event
at least once and their inbox makes the effect happen once. A bus outage leaves the rows in the outbox,
which grows until the bus is back and then drains; nothing is lost.
On PostgreSQL only one relay per service works at a time (an advisory lock), which keeps per-key order.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.bus.tables import outbox_batch, outbox_delete
from boxoffice.platform.db import Database
from boxoffice.platform.metrics import BUS_PUBLISHED, BUS_PUBLISHES, OUTBOX_BACKLOG
from boxoffice.platform.shutdown import stopped

log = structlog.get_logger("boxoffice.relay")


class Relay:
    def __init__(
        self, db: Database, bus: Bus, *, batch_size: int = 500, idle_interval: float = 0.5, linger: float = 0.01
    ) -> None:
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self.linger = linger
        """After a wake-up, wait this long for more commits so that one publish carries many events (Kafka's
        linger.ms): under load the bus then does one write for dozens of events instead of one each."""
        self._leader: AsyncConnection | None = None

    async def relay_once(self) -> int:
        """Publish one batch; returns how many events it moved."""
        async with self.db.read() as conn:
            rows = await outbox_batch(conn, self.batch_size)
        if not rows:
            OUTBOX_BACKLOG.labels(self.db.name).set(0)
            return 0
        envelopes = [Envelope.from_json(payload, topic=topic) for _id, _eid, topic, _key, payload in rows]
        await self.bus.publish(envelopes)
        async with self.db.uow() as uow:
            await uow.conn.execute(outbox_delete([row[0] for row in rows]))
            await uow.commit()
        BUS_PUBLISHED.labels(self.db.name).inc(len(rows))
        BUS_PUBLISHES.labels(self.db.name).inc()
        return len(rows)

    async def _lead(self) -> bool:
        """On PostgreSQL, hold a session advisory lock so that one relay per service publishes."""
        if self.db.dialect != "postgresql":
            return True
        if self._leader is not None:
            return True
        conn = await self.db.engine.connect()
        lock_id = zlib.crc32(f"boxoffice-relay-{self.db.name}".encode())
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id})).scalar_one()
        await conn.commit()
        if got:
            self._leader = conn
            return True
        await conn.close()
        return False

    async def run(self) -> None:
        """Relay until cancelled; back off while the bus is down."""
        backoff = self.idle_interval
        try:
            while not stopped(None):  # raises a cancellation a library below swallowed
                try:
                    if not await self._lead():
                        await asyncio.sleep(self.idle_interval * 4)
                        continue
                    self.db.outbox_signal.clear()
                    moved = await self.relay_once()
                    backoff = self.idle_interval
                    if moved == self.batch_size:
                        continue
                    if await self.db.wait_for_outbox(self.idle_interval) and self.linger:
                        await asyncio.sleep(self.linger)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("relay could not publish; outbox kept", service=self.db.name, error=repr(exc))
                    await self._drop_leadership()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            await self._drop_leadership()

    async def _drop_leadership(self) -> None:
        """Give the lock up. Closing the connection alone would not: it goes back to the engine's pool with
        its session, and the session's lock with it, so a relay started again in this process (a restart of
        the workers) would find the lock taken and never publish again."""
        conn, self._leader = self._leader, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock_all()"))
            await conn.commit()
        except Exception:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # the session ends with its connection, and its locks with it
        with contextlib.suppress(Exception):
            await conn.close()
