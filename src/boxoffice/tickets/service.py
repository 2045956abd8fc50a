"""Assembly of tickets: its dependencies (booking's orders, the object store, the signing keys, the PDF
renderer), routes, the consumers (ticket-bookings, object-created) and the PDF renderer's loop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from fastapi import APIRouter

from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Batched, Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.mail import Mailer, build_mailer
from boxoffice.platform.objectstore import OBJECTS_TOPIC, ObjectStore, build_object_store
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings
from boxoffice.tickets import domain, functions
from boxoffice.tickets.api import internal, router
from boxoffice.tickets.clients import BookingOrders
from boxoffice.tickets.deps import TicketsDeps, TicketsSettings
from boxoffice.tickets.handlers import issuing, mail
from boxoffice.tickets.keys import TicketKeys
from boxoffice.tickets.pdf import PdfRenderer

BOOKINGS_GROUP = "tickets.bookings"
PAYMENTS_GROUP = "tickets.payments"  # refunds: the buyer's refund e-mail
GENERATOR_GROUP = "tickets.generator"
UPLOAD_BODY_LIMIT = 5 * 1024 * 1024 + 64 * 1024  # the file's 5 MB plus the multipart envelope


class TicketsService(Service):
    name = "tickets"
    settings_class = TicketsSettings
    config: TicketsSettings
    routes: ClassVar[tuple[str, ...]] = ("/api/tickets", "/api/checkin", "/api/uploads")
    body_limits: ClassVar[dict[str, int]] = {"/api/uploads": UPLOAD_BODY_LIMIT}

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: TicketsSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.objects: ObjectStore = build_object_store(settings)
        self.deps = TicketsDeps(
            db=self.db,
            config=self.config,
            now=self.now,  # reads self.clock at each call: a test that moves the clock moves the handlers'
            orders=BookingOrders(lambda: clients.get("booking")),
            objects=self.objects,
            keys=TicketKeys(),  # loaded in on_start, once the database is reachable
            render=PdfRenderer(
                self.config.pdf_processes,
                log_level=settings.log_level,
                log_json=settings.log_json,
                nice=self.config.pdf_nice,
            ),
            pdf_wanted=asyncio.Event(),
            mailer=build_mailer(settings),
            mail_wanted=asyncio.Event(),
            site=(self.config.public_url or f"http://{settings.host}:{settings.port}").rstrip("/"),
        )

    @property
    def mailer(self) -> Mailer:
        return self.deps.mailer

    @mailer.setter
    def mailer(self, mailer: Mailer) -> None:
        """Swap the mail backend of a running service (tests point it at an SMTP server)."""
        self.deps = dataclasses.replace(self.deps, mailer=mailer)

    def generator_deps(self) -> functions.GeneratorDeps:
        return functions.GeneratorDeps(
            db=self.db, objects=self.objects, max_bytes=self.config.max_upload_bytes, now=self.now
        )

    def routers(self) -> Sequence[APIRouter]:
        return [router, internal]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        async def on_booking(envelope: Envelope) -> None:
            booking = domain.parse_booking(envelope.type, envelope.data)
            await issuing.apply_booking(self.deps, booking, inbox=(BOOKINGS_GROUP, envelope.id))

        async def on_bookings(envelopes: Sequence[Envelope]) -> None:  # a poll's events in one transaction
            bookings = [(domain.parse_booking(e.type, e.data), e.id) for e in envelopes]
            await issuing.apply_bookings(self.deps, bookings, group=BOOKINGS_GROUP)

        async def on_payment(envelope: Envelope) -> None:
            if envelope.type == "payments.refunded":
                await mail.mail_refund(self.deps, envelope.data, inbox=(PAYMENTS_GROUP, envelope.id))

        async def on_object_created(envelope: Envelope) -> None:
            inbox = (GENERATOR_GROUP, envelope.id)
            await functions.generate_receipts(envelope.data, self.generator_deps(), inbox=inbox)

        return {
            BOOKINGS_GROUP: (["ticket-bookings"], Batched(on_booking, on_bookings)),
            PAYMENTS_GROUP: (["payments"], on_payment),
            GENERATOR_GROUP: ([OBJECTS_TOPIC], on_object_created),
        }

    def extra_workers(self) -> dict[str, Worker]:
        return {"pdf-renderer": self.render_pdfs_forever, "mail-sender": self.send_mail_forever}

    async def on_start(self) -> None:
        await self.objects.start()
        await issuing.load_keys(self.deps, secret=self.settings.secret)

    async def stop(self) -> None:
        self.deps.render.close()
        await self.objects.stop()
        await super().stop()

    async def render_pdfs_forever(self) -> None:
        self.deps.render.start()  # its processes start now, not when the first ticket waits for them
        batch = self.config.pdf_batch

        async def render_batch() -> bool:
            return await issuing.render_pending_pdfs(self.deps, batch=batch) >= batch

        await repeat("tickets.pdf-renderer", render_batch, interval=1.0, wake=self.deps.pdf_wanted)

    async def send_mail_forever(self) -> None:
        async def send() -> int:
            return await mail.send_pending_mail(self.deps)  # self.deps: a swapped mailer applies at once

        await repeat("tickets.mail-sender", send, interval=1.0, wake=self.deps.mail_wanted, max_backoff=60.0)
