"""The one way every service is built: its runtime (``Service``) and its FastAPI app.

A service module's ``service.py`` subclasses ``Service``, names the routes the gateway sends to it, and
lists its routers, consumers and workers. Everything that needs I/O (engines, keys, clients) is built in
``start()``, never at import time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from boxoffice.platform.apidocs import docs_router
from boxoffice.platform.auth import TokenVerifier
from boxoffice.platform.bus.consumer import Handler, run_consumer
from boxoffice.platform.bus.deadletters import DeadLetters
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.bus.relay import Relay
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.db import Database, utcnow
from boxoffice.platform.idempotency import KeyPurge
from boxoffice.platform.ingress import PlatformMiddleware
from boxoffice.platform.inspect import inspector_router
from boxoffice.platform.metrics import metrics_response
from boxoffice.platform.periodic import repeat
from boxoffice.platform.problem_http import install_problem_handlers, problem_openapi, problem_response
from boxoffice.platform.problems import ServiceUnavailable
from boxoffice.platform.settings import ServiceSettings, Settings
from boxoffice.platform.tracing import instrument_app

Worker = Callable[[], Coroutine[Any, Any, None]]
IDEMPOTENCY_PURGE_INTERVAL = 600.0


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Service:
    name: ClassVar[str]
    routes: ClassVar[tuple[str, ...]] = ()
    """Path patterns the gateway sends here; ``{}`` stands for one path segment."""
    body_limits: ClassVar[dict[str, int]] = {}
    has_database: ClassVar[bool] = True
    """False for a service that keeps nothing (web): no migrations, no outbox relay."""
    has_workers: ClassVar[bool] = True
    """False for a service with nothing to run in the background: ``run --processes`` starts no worker."""
    own_consumer_groups: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Consumer groups a service runs in loops of its own rather than through ``consumers()`` (batching
    processors): named here so deployments can scale their workers on those groups' lag."""
    settings_class: ClassVar[type[ServiceSettings]] = ServiceSettings
    """This service's own settings (``BOXOFFICE_<SERVICE>_*``)."""

    def __init__(
        self, settings: Settings, *, bus: Bus, clients: ServiceClients, config: ServiceSettings | None = None
    ) -> None:
        self.settings = settings
        self.config = config if config is not None else self.settings_class()
        """This service's own settings; ``settings`` holds what every service of the process shares."""
        if settings.mode == "production" and (problems := self.config.check_production()):
            raise ValueError(f"refusing to start {self.name} in production mode: " + "; ".join(problems))
        self.bus = bus
        self.clients = clients
        self.db = Database(
            self.database_url,
            name=self.name,
            sqlite_inline=settings.sqlite_inline,
            sqlite_shared=settings.sqlite_shared,
        )
        self.verifier = TokenVerifier.from_client(lambda: clients.get("identity"))
        self.relay = Relay(self.db, bus)
        self.clock: Callable[[], datetime] = utcnow
        """Where the service reads the time: a test seam (tests move it forward instead of sleeping)."""
        self.purge_idempotency_keys = KeyPurge(
            self.db, ttl=timedelta(hours=settings.idempotency_ttl_hours), now=self.now
        )
        """One step of the ``idempotency-purge`` loop (a no-op where the database has no such table)."""

    def now(self) -> datetime:
        return self.clock()

    @property
    def database_url(self) -> str:
        return self.config.database_url or self.settings.sqlite_url(self.name)

    # What a service fills in.
    def routers(self) -> Sequence[APIRouter]:
        return ()

    def consumers(self) -> dict[str, tuple[Sequence[str], Handler]]:
        """Consumer groups: ``{"tickets.bookings": (["ticket-bookings"], handler)}``."""
        return {}

    def extra_workers(self) -> dict[str, Worker]:
        return {}

    async def on_start(self) -> None:
        """Runs once at start-up, after the database is reachable (seed keys, the admin, ...)."""

    # The same for every service.
    def workers(self) -> dict[str, Worker]:
        if not self.has_workers:
            return {}
        workers: dict[str, Worker] = {}
        if self.has_database:
            workers["relay"] = self.relay.run
            workers["idempotency-purge"] = self._purge_idempotency_keys_forever
        dead_letters = DeadLetters(self.db) if self.has_database else None
        for group, (topics, handler) in self.consumers().items():
            workers[group] = _consumer_worker(self.bus, group, topics, handler, self.settings, dead_letters)
        workers.update(self.extra_workers())
        return workers

    async def _purge_idempotency_keys_forever(self) -> None:
        await repeat(f"{self.name}.idempotency-purge", self.purge_idempotency_keys, interval=IDEMPOTENCY_PURGE_INTERVAL)

    async def start(self) -> None:
        await self.on_start()

    async def stop(self) -> None:
        await self.db.dispose()

    async def check_ready(self) -> None:
        await self.db.ping()
        await self.bus.ping()

    def create_app(self, *, manage: Sequence[Startable] = ()) -> FastAPI:
        """The service's ASGI app. ``manage``: what its lifespan starts and stops (when served alone)."""

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            started: list[Startable] = []
            try:
                for item in manage:
                    await item.start()
                    started.append(item)
                yield
            finally:
                for item in reversed(started):
                    await item.stop()

        app = FastAPI(
            title=f"boxoffice {self.name}",
            version="0.1.0",
            lifespan=lifespan,
            openapi_url=f"/api/{self.name}/openapi.json",
            docs_url=None,  # platform.apidocs serves it, with Swagger UI from the package (no CDN)
            redoc_url=None,
        )
        app.state.service = self
        app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
        install_problem_handlers(app)
        include_flat(app, health_router(self.check_ready))
        include_flat(app, docs_router(self.name))
        if self.has_database:  # /api/<service>/db: the inspector of its own database; first, so no route shadows it
            include_flat(app, inspector_router(self.name))
        for router in self.routers():
            include_flat(app, router)
        # Request id, access log, metrics, replay marker, security headers, body limit, fault injection and
        # the answer to an unexpected error, in one layer (platform.ingress says in which order).
        app.add_middleware(
            PlatformMiddleware,
            service=self.name,
            production=self.settings.mode == "production",
            max_bytes=self.settings.max_body_bytes,
            body_limits=self.body_limits,
            secret=self.settings.secret,
        )
        instrument_app(app)
        return app


def include_flat(app: FastAPI, router: APIRouter) -> None:
    """``app.include_router(router)`` with the router's routes put in the app's own route list.

    FastAPI (0.160 and later) keeps an included router as one nested entry, matched twice per request (once to
    find it, once more to find the route in it) and through a per-route context: about a fifth of a small
    request's CPU (``loadtest/request_overhead.py``). Included without a prefix, tags or dependencies of
    its own, a router's routes already carry everything (their path, their router's prefix and
    dependencies), so they are the same routes in the same order at the app's level. A router with start-up
    or shutdown handlers, a lifespan or low-priority routes is included the usual way.
    """
    plain = (
        not router.on_startup
        and not router.on_shutdown
        and type(router.lifespan_context).__name__ == "_DefaultLifespan"
        and not getattr(router, "_low_priority_routes", ())
    )
    if plain:
        app.router.routes.extend(router.routes)
    else:
        app.include_router(router)


def _consumer_worker(
    bus: Bus,
    group: str,
    topics: Sequence[str],
    handler: Handler,
    settings: Settings,
    dead_letters: DeadLetters | None,
) -> Worker:
    async def run() -> None:
        await run_consumer(
            bus.consumer(group, topics),
            handler,
            max_attempts=settings.bus_max_attempts,
            dead_letters=dead_letters,
            backoff=settings.bus_retry_backoff_seconds,
        )

    return run


def health_router(check_ready: Callable[[], Awaitable[None]]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> Response:
        try:
            await asyncio.wait_for(check_ready(), timeout=5)
        except Exception as exc:
            return problem_response(ServiceUnavailable(f"not ready: {type(exc).__name__}"))
        return JSONResponse({"status": "ready"})

    @router.get("/metrics")
    async def metrics() -> Response:
        return metrics_response()

    return router


S = TypeVar("S", bound=Service)
D = TypeVar("D")


def provide(kind: type[D]) -> Callable[[Request], Awaitable[D]]:
    """A FastAPI dependency giving a route its service's dependencies object (``service.deps``), typed.

        BookingDepsDep = Annotated[BookingDeps, Depends(provide(BookingDeps))]

    Routes take the explicit dependencies, never the service object, so ``api.py`` does not import
    ``service.py`` (no import cycle) and a route's signature says what it may touch.
    """

    async def dependency(request: Request) -> D:
        deps = getattr(request.app.state.service, "deps", None)
        if not isinstance(deps, kind):
            raise TypeError(f"this app's service provides {type(deps).__name__}, not {kind.__name__}")
        return deps

    return dependency


def running_service(cls: type[S]) -> Callable[[Request], Awaitable[S]]:
    """A FastAPI dependency giving the running service behind the request, typed as ``cls``.

    Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request.
    """

    async def dependency(request: Request) -> S:
        service = request.app.state.service
        if not isinstance(service, cls):
            raise TypeError(f"this app runs {type(service).__name__}, not {cls.__name__}")
        return service

    return dependency
