"""Assembly of tickets: routes, the consumers (ticket-bookings, object-created), the PDF renderer, start-up."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.consumer import Handler
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.objectstore import OBJECTS_TOPIC, ObjectStore, build_object_store
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings
from boxoffice.tickets import functions, handlers
from boxoffice.tickets.deps import TicketsSettings
from boxoffice.tickets.keys import TicketKeyRing
from boxoffice.tickets.pdf import TicketDocument, render_many

log = structlog.get_logger("boxoffice.tickets")

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
        self.pdf_signal = asyncio.Event()
        self._keyring: TicketKeyRing | None = None
        self._pdf_pool: ProcessPoolExecutor | None = None

    async def render(self, docs: list[TicketDocument]) -> list[bytes | None]:
        """Render PDFs in a worker process (``BOXOFFICE_TICKETS_PDF_PROCESSES``, 0 = a thread of this one)."""
        if self.config.pdf_processes <= 0:
            return await asyncio.to_thread(render_many, docs)
        if self._pdf_pool is None:
            # spawn, not fork: this process runs threads (database drivers) that a fork would copy mid-lock.
            context = multiprocessing.get_context("spawn")
            self._pdf_pool = ProcessPoolExecutor(self.config.pdf_processes, mp_context=context)
        return await asyncio.get_running_loop().run_in_executor(self._pdf_pool, render_many, docs)

    def keyring(self) -> TicketKeyRing:
        if self._keyring is None:
            raise RuntimeError("tickets has not started: no signing keys loaded")
        return self._keyring

    def generator_deps(self) -> functions.GeneratorDeps:
        return functions.GeneratorDeps(
            db=self.db, objects=self.objects, max_bytes=self.config.max_upload_bytes, now=self.now
        )

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.tickets.api import router

        return [router]

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        return {
            handlers.BOOKINGS_GROUP: (["ticket-bookings"], self.on_booking),
            GENERATOR_GROUP: ([OBJECTS_TOPIC], self.on_object_created),
        }

    def extra_workers(self) -> dict[str, Worker]:
        return {"pdf-renderer": self.render_pdfs_forever}

    async def on_start(self) -> None:
        await self.objects.start()
        self._keyring = await handlers.load_keyring(self)

    async def stop(self) -> None:
        if self._pdf_pool is not None:
            self._pdf_pool.shutdown(wait=False, cancel_futures=True)
            self._pdf_pool = None
        await self.objects.stop()
        await super().stop()

    async def on_booking(self, envelope: Envelope) -> None:
        await handlers.apply_booking(self, envelope)

    async def on_object_created(self, envelope: Envelope) -> None:
        await functions.generate_receipts(envelope.data, self.generator_deps(), inbox=(GENERATOR_GROUP, envelope.id))

    async def render_pdfs_forever(self) -> None:
        async def render_batch() -> bool:
            return await handlers.render_pending_pdfs(self, batch=self.config.pdf_batch) >= self.config.pdf_batch

        await repeat("tickets.pdf-renderer", render_batch, interval=1.0, wake=self.pdf_signal)
