"""Assembly of analytics: the API, the windowed aggregator (consumer group ``analytics`` on
``ticket-bookings``, positions kept with its state) and the catalog feed (capacities and names)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.analytics import handlers
from boxoffice.analytics.deps import AnalyticsDeps, AnalyticsSettings, Signal
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.bus.positioned import PositionedConsumer, Positions, positioned_consumer
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.analytics")


class AnalyticsService(Service):
    name = "analytics"
    settings_class = AnalyticsSettings
    config: AnalyticsSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/analytics",)

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: AnalyticsSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.deps = AnalyticsDeps(db=self.db, config=self.config, now=self.now, published=Signal())

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.analytics.api import router

        return [router]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_catalog(envelope: Envelope) -> None:
            await handlers.apply_catalog_event(self.deps, envelope)

        return {handlers.CATALOG_GROUP: (["catalog.events", "catalog.runs"], on_catalog)}

    def extra_workers(self) -> dict[str, Worker]:
        return {handlers.GROUP: self.aggregate_forever}

    def bookings_consumer(self) -> PositionedConsumer:
        async def load(partitions: Sequence[tuple[str, int]]) -> Positions:
            return await handlers.load_positions(self.deps, partitions)

        return positioned_consumer(self.bus, handlers.GROUP, [handlers.BOOKINGS_TOPIC], load)

    async def aggregate_forever(self) -> None:
        """Read a batch, count it and commit it with the positions; on a quiet stream, close idle windows."""
        consumer = self.bookings_consumer()
        size, idle = self.config.batch_size, self.config.idle_check_seconds

        async def step() -> bool:
            try:
                records = await consumer.poll(max_records=size, timeout=idle)
                if records:
                    await handlers.aggregate_bookings(self.deps, records, caught_up=consumer.caught_up())
                if consumer.caught_up():
                    await handlers.close_idle_windows(self.deps, consumer.owned())
            except Exception:
                consumer.rewind()  # read again from what the last committed batch stored
                raise
            return len(records) == size

        await consumer.start()
        try:
            await repeat("analytics.aggregator", step, interval=0)
        finally:
            await consumer.stop()
