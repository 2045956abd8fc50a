"""Assembly of catalog: its dependencies (read cache, the booking client for availability), routes, demo seed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.catalog import demo
from boxoffice.catalog.api import router
from boxoffice.catalog.availability import BookingAvailability
from boxoffice.catalog.cache import ReadCache
from boxoffice.catalog.deps import CatalogDeps, CatalogSettings
from boxoffice.platform.app import Service
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.catalog")


class CatalogService(Service):
    name = "catalog"
    settings_class = CatalogSettings
    config: CatalogSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/events", "/api/stations", "/api/trains")
    cache_ttl_seconds: ClassVar[float] = 10.0
    """How late another catalog process may serve a change (see ``cache``); this process is never late."""
    availability_timeout_seconds: ClassVar[float] = 2.0
    """How long a read waits for booking before answering with capacity-based availability."""

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: CatalogSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.deps = CatalogDeps(
            db=self.db,
            config=self.config,
            now=self.now,  # reads ``self.clock`` on every call, so a test's clock applies
            cache=ReadCache(ttl=self.cache_ttl_seconds),
            availability=BookingAvailability(lambda: clients.get("booking"), timeout=self.availability_timeout_seconds),
        )

    def routers(self) -> Sequence[APIRouter]:
        return [router]

    async def on_start(self) -> None:
        if self.settings.demo:
            counts = await self.seed_demo()
            log.info("demo catalog ready", **counts)

    async def seed_demo(self) -> dict[str, int]:
        """Add the demo events, stations, trains and 30 days of runs that are missing; how many were added."""
        return await demo.seed_demo(self.deps)
