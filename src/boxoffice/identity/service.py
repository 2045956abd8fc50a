"""Assembly of identity: its routes, workers (relay, mail sender) and start-up (keys, the admin)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.identity import handlers
from boxoffice.identity.keys import KeyRing
from boxoffice.platform.aio import wait_event
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.mail import Mailer, build_mailer
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.identity")


class IdentityService(Service):
    name = "identity"
    routes: ClassVar[tuple[str, ...]] = ("/api/auth", "/api/me", "/.well-known/jwks.json", "/api/dev/mailbox")

    def __init__(self, settings: Settings, *, bus: Bus, clients: ServiceClients) -> None:
        super().__init__(settings, bus=bus, clients=clients)
        self.mailer: Mailer = build_mailer(settings)
        self.mail_signal = asyncio.Event()
        self._keyring: KeyRing | None = None

    def keyring(self) -> KeyRing:
        if self._keyring is None:
            raise RuntimeError("identity has not started: no signing keys loaded")
        return self._keyring

    def routers(self) -> Sequence[APIRouter]:
        from boxoffice.identity.api import router

        return [router]

    def extra_workers(self) -> dict[str, Worker]:
        return {"mail-sender": self.send_mail_forever}

    async def on_start(self) -> None:
        self._keyring = await handlers.load_keyring(self)
        s = self.settings
        if s.admin_email and s.admin_password:
            await handlers.ensure_admin(self, email=s.admin_email, password=s.admin_password.get_secret_value())

    async def send_mail_forever(self) -> None:
        backoff = 1.0
        while True:
            self.mail_signal.clear()
            try:
                sent = await handlers.send_pending_mail(self)
                backoff = 1.0
            except Exception as exc:
                log.warning("mail not sent; will retry", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if not sent:
                await wait_event(self.mail_signal, 1.0)
