"""Assembly of identity: its routes, workers (relay, mail sender) and start-up (keys, the admin)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import structlog
from fastapi import APIRouter

from boxoffice.identity import handlers
from boxoffice.identity.deps import IdentitySettings
from boxoffice.identity.keys import KeyRing
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.mail import Mailer, build_mailer
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings

log = structlog.get_logger("boxoffice.identity")


class IdentityService(Service):
    name = "identity"
    settings_class = IdentitySettings
    config: IdentitySettings
    routes: ClassVar[tuple[str, ...]] = ("/api/auth", "/api/me", "/.well-known/jwks.json", "/api/dev/mailbox")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: IdentitySettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
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
        s = self.config
        if s.admin_email and s.admin_password:
            await handlers.ensure_admin(self, email=s.admin_email, password=s.admin_password.get_secret_value())

    async def send_mail_forever(self) -> None:
        async def send() -> int:
            return await handlers.send_pending_mail(self)

        await repeat("identity.mail-sender", send, interval=1.0, wake=self.mail_signal, max_backoff=60.0)
