"""Assembly of identity: its dependencies, routes, workers (relay, mail sender) and start-up (keys, the admin)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from fastapi import APIRouter

from boxoffice.identity import handlers
from boxoffice.identity.api import router
from boxoffice.identity.deps import IdentityDeps, IdentitySettings
from boxoffice.identity.keys import KeyRing, KeyRingHolder
from boxoffice.platform.app import Service, Worker
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.mail import Mailer, build_mailer
from boxoffice.platform.periodic import repeat
from boxoffice.platform.settings import Settings


class IdentityService(Service):
    name = "identity"
    settings_class = IdentitySettings
    config: IdentitySettings
    routes: ClassVar[tuple[str, ...]] = ("/api/auth", "/api/me", "/.well-known/jwks.json", "/api/dev/mailbox")

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: IdentitySettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        self.deps = IdentityDeps(
            db=self.db,
            config=self.config,
            secret=settings.secret,
            now=self.now,  # reads ``self.clock`` on every call, so a test's clock applies
            mailer=build_mailer(settings),
            keys=KeyRingHolder(),
            mail_signal=asyncio.Event(),
        )

    @property
    def mailer(self) -> Mailer:
        return self.deps.mailer

    @mailer.setter
    def mailer(self, mailer: Mailer) -> None:
        """Swap the mail backend of a running service (tests point it at a server that came back)."""
        self.deps = dataclasses.replace(self.deps, mailer=mailer)

    def keyring(self) -> KeyRing:
        return self.deps.keys.current()

    def routers(self) -> Sequence[APIRouter]:
        return [router]

    def extra_workers(self) -> dict[str, Worker]:
        return {"mail-sender": self.send_mail_forever}

    async def on_start(self) -> None:
        await handlers.load_keys(self.deps)
        s = self.config
        if s.admin_email and s.admin_password:
            await handlers.ensure_admin(self.deps, email=s.admin_email, password=s.admin_password.get_secret_value())

    async def send_mail_forever(self) -> None:
        async def send() -> int:
            return await handlers.send_pending_mail(self.deps)  # self.deps: a swapped mailer applies at once

        await repeat("identity.mail-sender", send, interval=1.0, wake=self.deps.mail_signal, max_backoff=60.0)
