"""Assembly of the waiting room: its routes, the admission loop and what it learns from other services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fastapi import APIRouter

from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Batched, Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings
from boxoffice.waitingroom import handlers
from boxoffice.waitingroom.api import router
from boxoffice.waitingroom.deps import WaitingRoomDeps, WaitingRoomSettings
from boxoffice.waitingroom.memory import LineMemory


class WaitingRoomService(Service):
    name = "waitingroom"
    settings_class = WaitingRoomSettings
    config: WaitingRoomSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/queue",)

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: WaitingRoomSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.deps = WaitingRoomDeps(
            db=self.db, config=self.config, secret=settings.secret, now=self.now,
            memory=LineMemory(max_age=self.config.status_max_age_seconds),
        )

    def routers(self) -> Sequence[APIRouter]:
        return [router]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_catalog(envelope: Envelope) -> None:
            await handlers.apply_catalog_event(self.deps, envelope)

        async def on_booking(envelope: Envelope) -> None:
            await handlers.apply_booking(self.deps, envelope)

        async def on_bookings(envelopes: Sequence[Envelope]) -> None:  # a poll's events: one read for all
            await handlers.apply_bookings(self.deps, envelopes)

        async def on_hold(envelope: Envelope) -> None:
            await handlers.apply_hold(self.deps, envelope)

        async def on_holds(envelopes: Sequence[Envelope]) -> None:
            await handlers.apply_holds(self.deps, envelopes)

        return {
            handlers.CATALOG_GROUP: (["catalog.events", "catalog.runs"], on_catalog),
            handlers.BOOKINGS_GROUP: (["ticket-bookings"], Batched(on_booking, on_bookings)),
            handlers.HOLDS_GROUP: (["booking.holds"], Batched(on_hold, on_holds)),
        }

    def extra_workers(self) -> dict[str, Worker]:
        async def admit() -> None:
            await repeat("waitingroom.admission", self._tick, interval=self.config.tick_seconds)

        return {"admission": admit}

    async def _tick(self) -> None:
        await handlers.tick_rooms(self.deps)
