"""Assembly of payments: the card processor, the refund consumer and the recovery worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.payments import handlers
from boxoffice.payments.deps import PaymentsSettings
from boxoffice.payments.domain import CardProcessor, CardProcessorSimulator
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.payments")
REFUNDS_GROUP = "payments.refunds"


class PaymentsService(Service):
    name = "payments"
    settings_class = PaymentsSettings
    config: PaymentsSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/orders/{}/payment", "/api/payments")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: PaymentsSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.processor: CardProcessor = CardProcessorSimulator(settings.secret)

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.payments.api import router

        return [router]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_booking(envelope: Envelope) -> None:
            await handlers.refund_cancelled_order(self, envelope, REFUNDS_GROUP)

        return {REFUNDS_GROUP: (["ticket-bookings"], on_booking)}

    def extra_workers(self) -> dict[str, Worker]:
        return {"recovery": self.recover_forever}

    async def recover_forever(self) -> None:
        async def recover() -> None:
            await handlers.recover_stuck_payments(self)

        await repeat("payments.recovery", recover, interval=10.0, initial_delay=10.0)
