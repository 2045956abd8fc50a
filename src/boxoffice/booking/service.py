"""Assembly of booking: routes, the catalog feed consumer, the expired-hold sweeper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.booking import catalog_feed, domain, handlers
from boxoffice.booking.deps import BookingSettings
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.booking")


class BookingService(Service):
    name = "booking"
    settings_class = BookingSettings
    config: BookingSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/holds", "/api/orders")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: BookingSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.limits = domain.Limits(
            max_tickets_per_event=self.config.max_tickets_per_event,
            max_active_holds=self.config.max_active_holds,
        )

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.booking.api import internal, router

        return [router, internal]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_catalog(envelope: Envelope) -> None:
            await catalog_feed.apply_catalog_event(self, envelope)

        return {catalog_feed.GROUP: (["catalog.events", "catalog.runs"], on_catalog)}

    def extra_workers(self) -> dict[str, Worker]:
        return {"hold-sweeper": self.sweep_forever}

    async def sweep_forever(self) -> None:
        async def sweep() -> bool:
            return await handlers.sweep_expired_holds(self) > 0

        await repeat("booking.hold-sweeper", sweep, interval=self.config.sweep_interval_seconds)

    async def tickets_of(self, order_id: str) -> list[dict[str, Any]]:
        """The order's tickets from the tickets service; [] while it has none or cannot be reached."""
        try:
            response = await self.clients.get("tickets").get(f"/internal/orders/{order_id}/tickets")
        except Exception as exc:
            log.warning("tickets service unreachable", order_id=order_id, error=repr(exc))
            return []
        if response.status_code != 200:
            return []
        items: list[dict[str, Any]] = response.json().get("items", [])
        return items
