"""Assembly of music: its dependencies, routes, the catalog-events consumer and the demo catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.music import handlers
from boxoffice.music.deps import MusicDeps, MusicSettings
from boxoffice.platform.app import Service
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.music")


class MusicService(Service):
    name = "music"
    settings_class = MusicSettings
    config: MusicSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/artists", "/api/tracks", "/api/playlists", "/api/lineups")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: MusicSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.deps = MusicDeps(db=self.db, config=self.config, now=self.now, demo=settings.demo)

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.music.api import router

        return [router]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_catalog(envelope: Envelope) -> None:
            await handlers.apply_catalog_event(self.deps, envelope)

        return {handlers.CATALOG_GROUP: (["catalog.events"], on_catalog)}

    async def on_start(self) -> None:
        if self.deps.demo:
            counts = await handlers.seed_demo(self.deps)
            log.info("demo music ready", **counts)
