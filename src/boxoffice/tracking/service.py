"""Assembly of tracking: the collector and query routes, the processor, the partition keeper."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from fastapi import APIRouter, FastAPI

from boxoffice.platform.app import Service, Startable, Worker
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings
from boxoffice.tracking import handlers
from boxoffice.tracking.collector import CollectRoute
from boxoffice.tracking.deps import TrackingDeps, TrackingSettings
from boxoffice.tracking.domain import TOPIC, RateWatch, TokenBucket
from boxoffice.tracking.enrich import parse_agent
from boxoffice.tracking.publisher import GroupPublisher

PROCESSOR_GROUP = "tracking-processor"


class TrackingService(Service):
    own_consumer_groups: ClassVar[dict[str, tuple[str, ...]]] = {"tracking-processor": ("user-tracking-events",)}
    name = "tracking"
    settings_class = TrackingSettings
    config: TrackingSettings
    routes: ClassVar[tuple[str, ...]] = ("/collect", "/api/tracking")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: TrackingSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.publisher = GroupPublisher(bus)
        self.deps = TrackingDeps(
            db=self.db,
            config=self.config,
            bus=bus,
            publisher=self.publisher,
            now=self.now,
            buckets=TokenBucket(rate=self.config.client_events_per_second, burst=self.config.client_burst_events),
            rates=RateWatch(max_per_minute=self.config.bot_events_per_minute),
        )

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.tracking.api import router

        return [router]

    def create_app(self, *, manage: Sequence[Startable] = ()) -> FastAPI:
        """The service's app, with ``POST /collect`` answered in front of it (``collector.CollectRoute``)."""
        app = super().create_app(manage=manage)
        app.add_middleware(
            CollectRoute,
            deps=lambda: self.deps,
            service=self.name,
            production=self.settings.mode == "production",
            secret=self.settings.secret,
        )
        return app

    def extra_workers(self) -> dict[str, Worker]:
        return {"processor": self.process_forever, "storage": self.maintain_forever}

    async def stop(self) -> None:
        await self.publisher.stop()
        await super().stop()

    async def process_forever(self) -> None:
        """Consumer group ``tracking-processor``: a whole poll is stored in one transaction, then committed.

        A poll is ``processor_batch`` records, each the events of one collector request (20 from the tracker).

        Positions move only after the batch is stored, so a crash in between delivers it again, and the
        events' keys make that second delivery a no-op.
        """
        # ua-parser compiles its rules on first use (about a second of CPU): not on the loop, mid-batch.
        await asyncio.to_thread(parse_agent, "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36")
        consumer = self.bus.consumer(PROCESSOR_GROUP, [TOPIC])
        await consumer.start()

        async def step() -> bool:
            records = await consumer.poll(max_records=self.config.processor_batch, timeout=1.0)
            if not records:
                return False
            try:
                await handlers.store_batch(self.deps, [r.envelope for r in records])
            except BaseException:
                await consumer.commit([])  # rewind: the next poll delivers these records again
                raise
            await consumer.commit(records)
            return len(records) >= self.config.processor_batch

        try:
            # After a partial batch, let the next one gather for a moment: fewer, larger transactions.
            await repeat("tracking.processor", step, interval=0.2)
        finally:
            await consumer.stop()

    async def maintain_forever(self) -> None:
        async def step() -> bool:
            return await handlers.maintain_storage(self.deps)

        await repeat("tracking.storage", step, interval=3600.0)
