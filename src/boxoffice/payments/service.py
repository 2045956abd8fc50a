"""Assembly of payments: its dependencies (the card processor, booking's orders), the refund consumer and
the recovery worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from fastapi import APIRouter

from boxoffice.payments import handlers
from boxoffice.payments.api import internal, router
from boxoffice.payments.clients import BookingOrders
from boxoffice.payments.deps import PaymentsDeps, PaymentsSettings
from boxoffice.payments.domain import CardProcessor, CardProcessorSimulator
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings

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
        self.deps = PaymentsDeps(
            db=self.db,
            config=self.config,
            now=self.now,  # reads self.clock at each call: a test that moves the clock moves the handlers'
            orders=BookingOrders(lambda: clients.get("booking"), local=lambda: clients.port("booking.orders")),
            processor=CardProcessorSimulator(settings.secret),
        )

    @property
    def processor(self) -> CardProcessor:
        return self.deps.processor

    @processor.setter
    def processor(self, processor: CardProcessor) -> None:
        """Plug in another card processor (a test's failing one): requests from now on use it."""
        self.deps = replace(self.deps, processor=processor)

    def routers(self) -> Sequence[APIRouter]:
        return [router, internal]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_booking(envelope: Envelope) -> None:
            order_id = envelope.data.get("order_id")
            if envelope.data.get("status") == "cancelled" and isinstance(order_id, str):
                await handlers.refund_cancelled_order(self.deps, order_id, inbox=(REFUNDS_GROUP, envelope.id))

        return {REFUNDS_GROUP: (["ticket-bookings"], on_booking)}

    def extra_workers(self) -> dict[str, Worker]:
        return {"recovery": self.recover_forever}

    async def recover_forever(self) -> None:
        async def recover() -> None:
            await handlers.recover_stuck_payments(self.deps)

        await repeat("payments.recovery", recover, interval=10.0, initial_delay=10.0)
