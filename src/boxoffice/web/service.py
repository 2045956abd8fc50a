"""Assembly of web: the pages, their static files and security headers; no database, no workers.

Web is the gateway's fallback: every path that no API claims (``/``, ``/events``, ``/static/...``) comes
here. It owns no data, so it runs no migrations, no outbox relay and no consumers, and it is ready when the
services its pages call are reachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from boxoffice.platform.app import Service, Startable
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.settings import Settings
from boxoffice.web.api import install_page_handlers, router
from boxoffice.web.api_db import router as databases
from boxoffice.web.api_tracker import router as tracker
from boxoffice.web.clients import (
    BookingApi,
    CatalogApi,
    IdentityApi,
    PaymentsApi,
    Refresher,
    Remembered,
    ServiceApi,
    TicketsApi,
)
from boxoffice.web.deps import WebDeps, WebSettings
from boxoffice.web.security import SecurityMiddleware

HERE = Path(__file__).parent


class WebService(Service):
    name = "web"
    settings_class = WebSettings
    config: WebSettings
    routes: ClassVar[tuple[str, ...]] = ()
    has_database: ClassVar[bool] = False  # web keeps nothing: ``boxoffice migrate`` skips it
    has_workers: ClassVar[bool] = False  # no outbox to relay, nothing to consume

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: WebSettings | None = None
    ) -> None:
        super().__init__(settings, bus=bus, clients=clients, config=config)
        identity = IdentityApi("identity", lambda: clients.get("identity"))
        self.deps = WebDeps(
            config=self.config,
            secret=settings.secret,
            dev_mode=self.dev_mode,
            verifier=self.verifier,
            identity=identity,
            catalog=CatalogApi("catalog", lambda: clients.get("catalog")),
            booking=BookingApi("booking", lambda: clients.get("booking")),
            payments=PaymentsApi("payments", lambda: clients.get("payments")),
            tickets=TicketsApi("tickets", lambda: clients.get("tickets")),
            refresher=Refresher(identity),
            stations=Remembered(seconds=60),
            service=lambda name: ServiceApi(name, lambda: clients.get(name)),
        )

    @property
    def dev_mode(self) -> bool:
        return self.settings.mode == "dev"

    def routers(self) -> Sequence[APIRouter]:
        return [router, tracker, databases]

    async def check_ready(self) -> None:
        """Ready when identity answers (its keys sign every session); web has no database to ping."""
        await self.deps.identity.check_alive()

    async def stop(self) -> None:
        await self.db.dispose()  # never connected; disposing an unused engine costs nothing

    def create_app(self, *, manage: Sequence[Startable] = ()) -> FastAPI:
        app = super().create_app(manage=manage)
        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
        install_page_handlers(app)
        app.add_middleware(SecurityMiddleware, secret=self.settings.secret, secure=not self.dev_mode)
        return app
