"""Assembly of booking: its dependencies, routes, the catalog feed consumer, the expired-hold sweeper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fastapi import APIRouter

from boxoffice.booking import api, domain
from boxoffice.booking.clients import PaymentsClient, TicketsClient
from boxoffice.booking.deps import BookingDeps, BookingSettings
from boxoffice.booking.handlers import catalog_feed, expiry
from boxoffice.booking.ports import OrdersPort
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings


class BookingService(Service):
    name = "booking"
    settings_class = BookingSettings
    config: BookingSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/holds", "/api/orders")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: BookingSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.deps = BookingDeps(
            db=self.db,
            config=self.config,
            now=self.now,  # reads self.clock on every call, so a test that swaps the clock moves booking's time
            secret=settings.secret,
            limits=domain.Limits(
                max_tickets_per_event=self.config.max_tickets_per_event,
                max_active_holds=self.config.max_active_holds,
            ),
            tickets=TicketsClient(lambda: clients.get("tickets")),
            payments=PaymentsClient(lambda: clients.get("payments")),
        )
        clients.register_port("booking.orders", OrdersPort(lambda: self.deps))

    def routers(self) -> Sequence[APIRouter]:
        return [api.router, api.internal]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_catalog(envelope: Envelope) -> None:
            await catalog_feed.apply_catalog_event(self.deps, envelope)

        return {catalog_feed.GROUP: (["catalog.events", "catalog.runs"], on_catalog)}

    def extra_workers(self) -> dict[str, Worker]:
        return {"hold-sweeper": self.sweep_forever}

    async def sweep_forever(self) -> None:
        async def sweep() -> bool:
            return await expiry.sweep_expired_holds(self.deps) > 0

        await repeat("booking.hold-sweeper", sweep, interval=self.config.sweep_interval_seconds)
