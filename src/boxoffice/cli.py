"""The composition root: the one module that knows every service.

    boxoffice run               every service in one process, workers as tasks (the embedded default)
    boxoffice run --api-processes N
                                the same on every core: N processes serve the whole API on one port, one
                                more runs every worker, all over the same SQLite files
    boxoffice run --workers-apart
                                one process serves the API, one more runs every worker (tickets keep pace)
    boxoffice run --processes   each service and its workers as separate processes behind the gateway
                                (``--only a,b``: just those services)
    boxoffice serve SERVICE     one service's HTTP API (SIGTERM drains: docs/operations.md); ``all``: every one
    boxoffice worker SERVICE    one service's workers (relay, consumers, senders; SIGTERM drains); ``all``: every one
    boxoffice migrate           bring every service's database to the newest schema
    boxoffice seed              add the demo catalog (events, stations, trains, runs) and publish it
    boxoffice bus dead-letters  list the events consumer groups gave up on
    boxoffice bus replay ID     hand one dead letter to its group's handler again
    boxoffice routes            the route table as JSON (deploy/generate.py builds ingress and manifests from it)
    boxoffice package-lambda Z  the ticket-generator function's AWS Lambda bundle (a zip)
"""

from __future__ import annotations

import gc

# Importing every service builds some 230,000 objects (routes, schemas, tables, validators), and the cyclic
# collector walked them all in 4 full collections on the way: 0.5 to 0.8 s of a process's 3 s start. Off
# while this module's imports run, then as it was (``platform.heap.settle`` freezes them once started).
_COLLECTING = gc.isenabled()
gc.disable()

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, TypedDict

import structlog
import typer
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.types import ASGIApp

from boxoffice.analytics.service import AnalyticsService
from boxoffice.booking.service import BookingService
from boxoffice.catalog.service import CatalogService
from boxoffice.identity.service import IdentityService
from boxoffice.music.service import MusicService
from boxoffice.payments.service import PaymentsService
from boxoffice.platform import heap
from boxoffice.platform.app import Service
from boxoffice.platform.bus.deadletters import DeadLetter, DeadLetters, describe
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.bus.port import Bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.db import Database, utcnow
from boxoffice.platform.faults import registry as fault_registry
from boxoffice.platform.gateway import Gateway, GatewaySettings, HttpProxy
from boxoffice.platform.migrate import upgrade
from boxoffice.platform.observability import configure_logging
from boxoffice.platform.settings import ServiceSettings, Settings, location
from boxoffice.platform.shutdown import Stop, stoppable
from boxoffice.platform.tracing import configure_tracing
from boxoffice.tickets.service import TicketsService
from boxoffice.tracking.service import TrackingService
from boxoffice.waitingroom import fairness
from boxoffice.waitingroom.deps import WaitingRoomDeps, WaitingRoomSettings
from boxoffice.waitingroom.service import WaitingRoomService
from boxoffice.web.service import WebService

if _COLLECTING:
    gc.enable()

SERVICES: dict[str, type[Service]] = {
    IdentityService.name: IdentityService,
    CatalogService.name: CatalogService,
    BookingService.name: BookingService,
    PaymentsService.name: PaymentsService,
    TicketsService.name: TicketsService,
    MusicService.name: MusicService,
    TrackingService.name: TrackingService,
    WaitingRoomService.name: WaitingRoomService,
    AnalyticsService.name: AnalyticsService,
    WebService.name: WebService,
}

log = structlog.get_logger("boxoffice.cli")
app = typer.Typer(
    help="boxoffice: tickets for events and trains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a crash is one JSON log line (configure_logging), not a framed traceback
)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    # Databases, the mailbox (sign-up codes) and stored objects are the user's alone: files this process
    # and its children create are not readable by group or others.
    os.umask(0o077)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return settings


def _service_class(name: str) -> type[Service]:
    try:
        return SERVICES[name]
    except KeyError:
        raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}") from None


Configs = Mapping[str, ServiceSettings]
"""Services' own settings by name, where a caller (a test) gives them; the others read the environment."""


def service_config(name: str, configs: Configs | None = None) -> ServiceSettings:
    given = (configs or {}).get(name)
    return given if given is not None else SERVICES[name].settings_class()


def database_url(settings: Settings, name: str, configs: Configs | None = None) -> str:
    return service_config(name, configs).database_url or settings.sqlite_url(name)


def migrate_all(settings: Settings, names: Sequence[str] | None = None, configs: Configs | None = None) -> None:
    for name in names or SERVICES:
        if SERVICES[name].has_database:
            upgrade(name, database_url(settings, name, configs))


def remote_urls(names: Sequence[str]) -> dict[str, str]:
    """Where the services that do not live in this process answer (``BOXOFFICE_<SERVICE>_URL``)."""
    return {name: url for name in SERVICES if name not in names and (url := location(name).url)}


def gateway_routes(service: type[Service]) -> list[str]:
    """The paths the gateway sends to a service: its own, plus its API docs under /api/<name>/."""
    return [*service.routes, f"/api/{service.name}"]


class RouteEntry(TypedDict):
    routes: list[str]
    has_database: bool
    has_workers: bool
    consumers: dict[str, list[str]]


def route_table() -> dict[str, RouteEntry]:
    """Every registered service: the paths the gateway sends to it, and what its workers consume.

    Built from the same ``SERVICES`` and ``gateway_routes`` as the embedded gateway; nothing is started (the
    services are constructed on a throw-away SQLite bus only to read their consumer groups).
    """
    table: dict[str, RouteEntry] = {}
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), mode="dev")
        bus = build_bus(settings)
        clients = ServiceClients(settings, {})
        for name, cls in SERVICES.items():
            service = cls(settings, bus=bus, clients=clients)
            groups = {group: list(topics) for group, (topics, _) in service.consumers().items()}
            groups.update({group: list(topics) for group, topics in cls.own_consumer_groups.items()})
            table[name] = RouteEntry(
                routes=gateway_routes(cls),
                has_database=cls.has_database,
                has_workers=cls.has_workers,
                consumers=dict(sorted(groups.items())) if cls.has_workers else {},
            )
    return table


class Runtime:
    """Everything one process runs: the bus, the services living here, and (optionally) their workers."""

    def __init__(
        self,
        settings: Settings,
        names: Sequence[str],
        *,
        run_workers: bool,
        configs: Configs | None = None,
        settle_heap: bool = False,
    ) -> None:
        self.settings = settings
        self.settle_heap = settle_heap
        """The process is this runtime's (``run``, ``serve``, ``worker``): once started, freeze what start-up
        built out of later garbage collections (platform/heap.py). Not for runtimes a test process starts by
        the hundred: each freeze begins with a full collection of everything the process holds."""
        configure_tracing("+".join(names), settings.otel_endpoint)  # before any engine or client is made
        heap.observe_pauses()
        self.bus: Bus = build_bus(settings)
        self.clients = ServiceClients(settings, remote_urls(names))
        self.services = [
            SERVICES[name](settings, bus=self.bus, clients=self.clients, config=service_config(name, configs))
            for name in names
        ]
        self.apps: dict[str, ASGIApp] = {}
        for service in self.services:
            service_app = service.create_app()
            self.apps[service.name] = service_app
            self.clients.register_local(service.name, service_app)
        self.run_workers = run_workers
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = Stop()
        self.draining = False
        """Set on SIGTERM by ``serve --drain-seconds``: /readyz answers 503 while requests still run."""

    async def start(self) -> None:
        await self.bus.start()
        for service in self.services:
            await service.start()
        if self.run_workers:
            for service in self.services:
                self._start_workers(service)
        frozen = heap.settle() if self.settle_heap else 0
        log.info("boxoffice started", services=[s.name for s in self.services], bus=self.settings.bus, frozen=frozen)

    async def restart_workers(self, service_name: str) -> None:
        """Kill a service's workers wherever they are and start them again, as a crash and restart would."""
        service = next(s for s in self.services if s.name == service_name)
        victims = [t for t in self._tasks if t.get_name().startswith(f"{service_name}:")]
        await _cancel_all(victims)
        for task in victims:
            self._tasks.remove(task)
        self._start_workers(service)

    def _start_workers(self, service: Service) -> None:
        with stoppable(self._stop):  # the tasks copy the context: their loops see this runtime's stop request
            for worker_name, worker in service.workers().items():
                task = asyncio.create_task(worker(), name=f"{service.name}:{worker_name}")
                task.add_done_callback(_report_worker_exit)
                self._tasks.append(task)

    async def drain(self, timeout: float) -> None:
        """Stop the workers gracefully: consumers and periodic loops finish (and commit) the batch in hand and
        take no new one. Returns once they have all returned, or after ``timeout`` seconds; ``stop`` then
        cancels what is left (the relay, loops that do not cooperate, and any that overran)."""
        self._stop.request()
        cooperating = [t for t in self._tasks if t in self._stop.cooperating and not t.done()]
        log.info("draining workers", cooperating=len(cooperating), seconds=timeout)
        if cooperating:
            _, late = await asyncio.wait(cooperating, timeout=timeout)
            if late:
                log.warning("workers busy after the drain; cancelled", workers=sorted(t.get_name() for t in late))

    async def stop(self) -> None:
        await _cancel_all(self._tasks)
        self._tasks.clear()
        for service in self.services:
            await service.stop()
        await self.clients.aclose()
        await self.bus.stop()
        if self.settle_heap:
            heap.release()

    async def readiness(self) -> dict[str, str]:
        failures: dict[str, str] = {"process": "draining"} if self.draining else {}
        for service in self.services:
            try:
                await asyncio.wait_for(service.check_ready(), timeout=5)
            except Exception as exc:
                failures[service.name] = type(exc).__name__
        return failures

    def gateway(self) -> Gateway:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
                await self.drain(EMBEDDED_DRAIN_SECONDS)  # the server has stopped: let the workers finish too
            finally:
                await self.stop()

        routes = [(p, self.apps[s.name]) for s in self.services for p in gateway_routes(type(s))]
        docs = {s.name: f"/api/{s.name}/docs" for s in self.services}
        owners = {p: s.name for s in self.services for p in gateway_routes(type(s))}
        return Gateway(routes, check_ready=self.readiness, lifespan=lifespan, docs=docs, fallback=self.apps.get("web"),
                       owners=owners, secret=self.settings.secret)


EMBEDDED_DRAIN_SECONDS = 10
"""``boxoffice run``: how long its workers may take to finish their batches once the server has stopped."""


async def _cancel_all(tasks: Sequence[asyncio.Task[None]], *, grace: float = 5.0, rounds: int = 6) -> None:
    """Cancel ``tasks`` and wait for them. A task still running after ``grace`` seconds is cancelled again:
    a library that swallowed the first ``CancelledError`` (see ``platform.shutdown.stopped``) gets another
    one, and after ``rounds`` tries the task is left behind with an error in the log rather than hanging the
    shutdown for ever."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace)
    if pending:
        log.error("workers ignored cancellation; left running", workers=sorted(t.get_name() for t in pending))
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved (and logged by _report_worker_exit), never re-raised here


def _report_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker stopped", worker=task.get_name(), exc_info=task.exception())


def build_embedded_app(settings: Settings, *, settle_heap: bool = False) -> Gateway:
    """The whole of boxoffice as one ASGI app (used by ``boxoffice run`` and the end-to-end tests)."""
    return Runtime(settings, list(SERVICES), run_workers=True, settle_heap=settle_heap).gateway()


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain before it stops: on the first SIGTERM ``on_drain`` runs at once (the process's
    /readyz answers 503, so load balancers take it out), requests keep being served for ``drain_seconds``,
    then uvicorn stops accepting and finishes the requests in flight. A second signal stops it at once."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.on_drain = on_drain
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.drain_seconds <= 0 or self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self.on_drain()
        log.info("draining before shutdown", seconds=self.drain_seconds)
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(loop.call_later, self.drain_seconds, super().handle_exit, sig, frame)


def server_config(asgi: ASGIApp, settings: Settings, *, port: int | None = None) -> uvicorn.Config:
    """uvicorn's settings for an HTTP server of boxoffice (the event loop: ``Settings.event_loop``)."""
    return uvicorn.Config(
        asgi,
        host=settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        loop=settings.event_loop,
        http="httptools",
        lifespan="on",
        timeout_keep_alive=settings.http_keep_alive_seconds,
        timeout_graceful_shutdown=5,
    )


def _serve(
    asgi: ASGIApp,
    settings: Settings,
    *,
    port: int | None = None,
    drain_seconds: float = 0,
    on_drain: Callable[[], None] = lambda: None,
    reuse_port: bool = False,
) -> None:
    config = server_config(asgi, settings, port=port)
    server = DrainingServer(config, drain_seconds=drain_seconds, on_drain=on_drain)
    if not reuse_port:
        server.run()
        return
    sock = reuse_port_socket(settings.host, port or settings.port)
    log.info("serving", url=f"http://{settings.host}:{port or settings.port}", reuse_port=True)
    server.run(sockets=[sock])


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT: a new process binds the same port while this one still serves,
    and the kernel spreads new connections over both; the old one then drains and stops (a rolling update on
    one machine, and ``run --api-processes N``).

    Made with its protocol named (``IPPROTO_TCP``, not 0): asyncio sets TCP_NODELAY only on connections whose
    socket says TCP. Without it, uvicorn's two writes of an answer (head, then body) met Nagle's algorithm
    and the client's delayed ACK: every answer after a connection's first waited about 40 ms."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


@app.command()
def migrate() -> None:
    """Bring every service's database to the newest schema."""
    settings = _settings()
    migrate_all(settings)
    typer.echo(f"migrated: {', '.join(SERVICES)}")


@app.command()
def seed() -> None:
    """Add the demo catalog where it is missing and publish it (relays catalog's outbox to the bus)."""
    settings = _settings()
    migrate_all(settings, [CatalogService.name])

    async def main() -> dict[str, int]:
        bus, clients = build_bus(settings), ServiceClients(settings, remote_urls([CatalogService.name]))
        catalog = CatalogService(settings, bus=bus, clients=clients)
        await bus.start()
        try:
            counts = await catalog.seed_demo()
            while await catalog.relay.relay_once():
                pass
            return counts
        finally:
            await catalog.stop()
            await clients.aclose()
            await bus.stop()

    counts = asyncio.run(main())
    typer.echo("seeded: " + ", ".join(f"{name}={count}" for name, count in counts.items()))


@app.command("queue-audit")
def queue_audit(event_id: str) -> None:
    """Replay a waiting room's record: who was admitted when and why, and whether the line's rules held."""
    settings = _settings()
    config = WaitingRoomSettings()
    db = Database(config.database_url or settings.sqlite_url(WaitingRoomService.name), name=WaitingRoomService.name)
    deps = WaitingRoomDeps(db=db, config=config, secret=settings.secret, now=utcnow)

    async def main() -> fairness.Replay:
        try:
            return await fairness.replay_line(deps, event_id)
        finally:
            await db.dispose()

    replay = asyncio.run(main())
    typer.echo(f"line {replay.event_id}: pre-queue of {replay.prequeue} drawn with seed {replay.seed}")
    lines = [  # admissions and rate changes in time order; a change comes before the admissions it governs
        (c.at, 0, c.seq, f"   rate {c.at.isoformat()} {c.from_rate:.0f} -> {c.to_rate:.0f}/min: {c.reason}")
        for c in replay.rate_changes
    ]
    lines += [
        (s.at, 1, s.seq, f"{s.seq:>7} {s.at.isoformat()} position {s.position:>6} {s.outcome:<9} {s.user_id} {s.why}")
        for s in replay.steps
    ]
    for *_, text in sorted(lines):
        typer.echo(text)
    for violation in replay.violations:
        typer.echo(f"VIOLATION: {violation}")
    typer.echo("fair: every rule held" if replay.fair else f"NOT FAIR: {len(replay.violations)} violations")
    raise typer.Exit(0 if replay.fair else 1)


@app.command()
def run(
    processes: Annotated[bool, typer.Option("--processes", help="one process per service and worker")] = False,
    only: Annotated[
        str | None, typer.Option(help="with --processes: only these services, comma-separated (default: all)")
    ] = None,
    replicas: Annotated[
        str | None,
        typer.Option(help="with --processes: API processes per service sharing its port, as N for every service "
                          "or SERVICE=N,... (default 1)"),
    ] = None,
    api_processes: Annotated[
        int | None,
        typer.Option(min=0, max=64, help="processes serving the whole API on one port, plus one for the workers "
                                         "(0: one per core; default BOXOFFICE_API_PROCESSES, 1)"),
    ] = None,
    workers_apart: Annotated[
        bool, typer.Option("--workers-apart", help="with one API process: the workers in a process of their own "
                                                   "(default BOXOFFICE_WORKERS_APART)")
    ] = False,
) -> None:
    """Run boxoffice: every service in one process (default), on every core, or one process per service."""
    settings = _settings()
    names = [_service_class(n.strip()).name for n in only.split(",") if n.strip()] if only else list(SERVICES)
    if (only or replicas) and not processes:
        raise typer.BadParameter("--only and --replicas need --processes")
    if processes and (api_processes is not None or workers_apart):
        raise typer.BadParameter("--processes is another layout than --api-processes or --workers-apart; choose one")
    counts = _replica_counts(replicas, names)
    migrate_all(settings, names)
    if processes:
        _run_processes(settings, names, counts)
        return
    wanted = settings.api_processes if api_processes is None else api_processes
    count = wanted or os.cpu_count() or 1
    if count > 1 or workers_apart or settings.workers_apart:
        _run_on_every_core(settings, count)
        return
    log.info("serving", url=f"http://{settings.host}:{settings.port}")
    _serve(build_embedded_app(settings, settle_heap=True), settings)


@app.command()
def serve(
    service: str,
    port: Annotated[int | None, typer.Option(help="default: BOXOFFICE_PORT")] = None,
    drain_seconds: Annotated[
        float, typer.Option(help="on SIGTERM, answer /readyz 503 and keep serving this long before stopping")
    ] = 0,
    reuse_port: Annotated[
        bool, typer.Option(help="bind with SO_REUSEPORT, so that a replacement can listen on the same port")
    ] = False,
) -> None:
    """Serve one service's HTTP API (its workers run under ``boxoffice worker``); ``all``: every service's, on
    one port behind the embedded gateway, as ``boxoffice run`` serves them."""
    settings = _settings()
    if service == "all":
        runtime = Runtime(settings, list(SERVICES), run_workers=False, settle_heap=True)
        everything = runtime.gateway()

        def drain_all() -> None:
            runtime.draining = True
            everything.draining = True

        _serve(everything, settings, port=port, drain_seconds=drain_seconds, on_drain=drain_all, reuse_port=reuse_port)
        return
    _service_class(service)
    runtime = Runtime(settings, [service], run_workers=False, settle_heap=True)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # Served alone, the service gets every path: its public API and the /internal/ calls of other services.
    gateway = Gateway([], check_ready=runtime.readiness, lifespan=lifespan, fallback=runtime.apps[service])

    def drain() -> None:
        runtime.draining = True  # /readyz answers 503: load balancers take this process out
        gateway.draining = True  # answers close their connections: callers stop reusing them

    _serve(gateway, settings, port=port, drain_seconds=drain_seconds, on_drain=drain, reuse_port=reuse_port)


@app.command()
def worker(
    service: str,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve /metrics on this port (Prometheus scrapes workers there)")
    ] = None,
    drain_seconds: Annotated[
        float, typer.Option(help="on SIGTERM, let consumers and loops finish their batch for up to this long")
    ] = 20,
) -> None:
    """Run one service's workers: its outbox relay, its consumers and its senders.

    SIGTERM (or SIGINT) drains: every consumer finishes and commits the batch in hand and polls no more,
    every periodic loop finishes its step; then the process exits 0. A second signal stops it at once."""
    settings = _settings()
    names = list(SERVICES) if service == "all" else [_service_class(service).name]
    if settings.worker_nice:
        os.nice(settings.worker_nice)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host)

    async def main() -> None:
        runtime = Runtime(settings, names, run_workers=True, settle_heap=True)
        await runtime.start()
        signalled, forced = asyncio.Event(), asyncio.Event()

        def on_signal() -> None:
            (forced if signalled.is_set() else signalled).set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await signalled.wait()
            drain = asyncio.create_task(runtime.drain(drain_seconds))
            force = asyncio.create_task(forced.wait())
            await asyncio.wait([drain, force], return_when=asyncio.FIRST_COMPLETED)
            force.cancel()
            if not drain.done():
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
        finally:
            await runtime.stop()
        log.info("workers stopped", service=service)

    asyncio.run(main())


@app.command()
def routes() -> None:
    """Print the route table (services, their gateway paths, workers and consumer groups) as JSON."""
    typer.echo(json.dumps(route_table(), indent=2, sort_keys=True))


LAMBDA_HANDLER = "boxoffice.tickets.functions.handle"
LAMBDA_PACKAGES = ("boxoffice/__init__.py", "boxoffice/py.typed", "boxoffice/platform", "boxoffice/tickets")
LAMBDA_LAZY_IMPORTS = (
    # Imported on first use rather than by the handler's module: the database drivers and the S3 client.
    "aiosqlite",
    "asyncpg",
    "boto3",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.sqlite.aiosqlite",
)


def _lambda_distributions() -> list[str]:
    """The installed distributions the function imports (found by importing it in a fresh interpreter)."""
    module = LAMBDA_HANDLER.rsplit(".", 1)[0]
    probe = (
        "import importlib, json, sys\n"
        f"for name in {[module, *LAMBDA_LAZY_IMPORTS]!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    found = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    top_level: list[str] = json.loads(found.stdout)
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    packaging_tools = {"boxoffice", "pip", "setuptools", "wheel"}  # site's .pth hooks load setuptools' shim
    return sorted({dist for name in top_level for dist in owners.get(name, []) if dist.lower() not in packaging_tools})


def build_lambda_zip(out: Path) -> dict[str, int]:
    """Write the ticket-generator bundle: the function's boxoffice packages and the distributions it imports."""
    from importlib.metadata import distribution

    import boxoffice

    written: set[str] = set()
    counts = {"boxoffice_files": 0, "distributions": 0, "files": 0}

    def add(archive: zipfile.ZipFile, source: Path, name: str) -> None:
        if name in written or "__pycache__" in name or name.endswith((".pyc", ".pyo")):
            return
        written.add(name)
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible: no build time inside
        info.external_attr = (0o755 if os.access(source, os.X_OK) else 0o644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source.read_bytes(), compresslevel=1)  # level 1: a third of the time, 5% bigger
        counts["files"] += 1

    root = Path(boxoffice.__file__).resolve().parent.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for entry in LAMBDA_PACKAGES:
            path = root / entry
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for source in files:
                add(archive, source, source.relative_to(root).as_posix())
                counts["boxoffice_files"] += 1
        for name in _lambda_distributions():
            dist = distribution(name)
            counts["distributions"] += 1
            for member in sorted(dist.files or [], key=str):
                found = Path(str(dist.locate_file(member))).resolve()
                relative = Path(os.path.normpath(str(member)))
                if found.is_file() and relative.parts[0] not in ("..", "bin"):  # scripts live outside the zip
                    add(archive, found, relative.as_posix())
    return counts


@app.command("package-lambda")
def package_lambda(out: Path) -> None:
    """Build the ticket-generator function's AWS Lambda bundle (handler: boxoffice.tickets.functions.handle).

    The zip holds the boxoffice platform and tickets packages and every installed distribution the function
    imports, copied from this environment: build it with the Python and platform Lambda runs (3.11, Linux).
    """
    counts = build_lambda_zip(out)
    typer.echo(f"{out}: handler {LAMBDA_HANDLER}; " + ", ".join(f"{k}={v}" for k, v in counts.items()))


PROCESS_DRAIN_SECONDS = 2
"""``run --processes``: how long a service process keeps serving after SIGTERM (nothing routes by readiness on
one machine, so a short drain lets requests already on their way arrive)."""


def _replica_counts(option: str | None, names: Sequence[str]) -> dict[str, int]:
    """``--replicas``: ``"3"`` (every service) or ``"booking=3,payments=2"`` (the rest 1)."""
    counts = dict.fromkeys(names, 1)
    if not option:
        return counts
    try:
        if option.strip().isdigit():
            counts = dict.fromkeys(names, int(option))
        else:
            for part in filter(None, (p.strip() for p in option.split(","))):
                name, _, count = part.partition("=")
                counts[_service_class(name.strip()).name] = int(count)
    except ValueError as exc:
        raise typer.BadParameter(f"--replicas {option!r}: give N or SERVICE=N,...") from exc
    if any(not 1 <= n <= 64 for n in counts.values()):
        raise typer.BadParameter("--replicas: between 1 and 64 processes per service")
    return counts


def _run_on_every_core(settings: Settings, api_processes: int) -> None:
    """``run --api-processes N`` (and ``--workers-apart``, N = 1): N ``serve all`` processes on the one port
    (SO_REUSEPORT: the kernel spreads the connections) and one ``worker all``, over the same SQLite files and
    bus; this process only watches them. One of them ending ends the group: whoever runs boxoffice sees it
    stop, not a shop that half works.

    Every service is already correct with several API processes (they are deployed that way): what lives in
    one process's memory is a cache with a bounded age or is found by polling (docs/operations.md)."""
    env = {**os.environ, "BOXOFFICE_SQLITE_SHARED": "1", "BOXOFFICE_API_PROCESSES": "1"}
    command = [sys.executable, "-m", "boxoffice.cli"]
    serve = ["serve", "all", "--reuse-port", "--drain-seconds", str(PROCESS_DRAIN_SECONDS)]
    children = [subprocess.Popen([*command, *serve], env=env) for _ in range(api_processes)]
    children.append(subprocess.Popen([*command, "worker", "all"], env=env))
    log.info("serving", url=f"http://{settings.host}:{settings.port}", api_processes=api_processes)
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        while not stopping and all(child.poll() is None for child in children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                children[0].wait(timeout=0.5)
        if not stopping:
            failed = True
            log.error("a process of the group stopped; stopping the others",
                      exit_codes=[child.poll() for child in children])
    finally:
        stop(signal.SIGTERM, None)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise typer.Exit(1)


def _run_processes(settings: Settings, names: Sequence[str], replicas: Mapping[str, int] | None = None) -> None:
    """Each service as ``serve`` + ``worker`` processes on its own port; this process is the gateway.

    Every service keeps its port (``services_base_port`` + its place in ``SERVICES``) whichever run. With
    ``replicas`` a service's port is served by that many processes (SO_REUSEPORT: the kernel spreads the
    connections); its workers stay one process (its consumer groups and the relay's lease allow more)."""
    if settings.bus == "sql" and settings.bus_database_url is None:
        log.warning("--processes with the default SQLite bus: fine on one machine; set BOXOFFICE_BUS=kafka to scale")
    env = {**os.environ, "BOXOFFICE_SQLITE_INLINE": "0"}  # processes may share SQLite files (the bus)
    # Fault rules reach every process through a file too: a push reaches one of the replicas sharing a port.
    env["BOXOFFICE_FAULTS_FILE"] = str(settings.data_dir / "faults.json")
    fault_registry().share(settings.data_dir / "faults.json")
    urls = {}
    ports = {name: settings.services_base_port + index for index, name in enumerate(SERVICES)}
    for name in names:
        urls[name] = f"http://127.0.0.1:{ports[name]}"
        env[f"BOXOFFICE_{name.upper()}_URL"] = urls[name]
    children: list[subprocess.Popen[bytes]] = []
    for name in names:
        port = ports[name]
        command = [sys.executable, "-m", "boxoffice.cli"]
        # Each service's port takes a replacement process before the old one drains: a rolling update.
        serve = ["serve", name, "--port", str(port), "--reuse-port", "--drain-seconds", str(PROCESS_DRAIN_SECONDS)]
        for _ in range((replicas or {}).get(name, 1)):
            children.append(subprocess.Popen([*command, *serve], env=env))
        if SERVICES[name].has_workers:
            children.append(subprocess.Popen([*command, "worker", name], env=env))
    configure_tracing("gateway", settings.otel_endpoint)  # the gateway's span starts each request's trace
    retry_seconds = GatewaySettings().gateway_retry_seconds
    proxies = {name: HttpProxy(url, retry_seconds=retry_seconds) for name, url in urls.items()}

    async def readiness() -> dict[str, str]:
        found = {name: await proxy.ready() for name, proxy in proxies.items()}
        return {name: failure for name, failure in found.items() if failure is not None}

    routes = [(p, proxies[name]) for name in names for p in gateway_routes(SERVICES[name])]
    docs = {name: f"/api/{name}/docs" for name in names}
    try:
        owners = {p: name for name in names for p in gateway_routes(SERVICES[name])}
        gateway = Gateway(routes, check_ready=readiness, docs=docs, fallback=proxies.get("web"), owners=owners,
                          peers=urls, secret=settings.secret)
        _serve(gateway, settings)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


bus_app = typer.Typer(help="The event bus: events consumer groups gave up on.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")


async def find_dead_letters(
    settings: Settings,
    names: Sequence[str] | None = None,
    *,
    group: str | None = None,
    dead_letter_id: str | None = None,
    configs: Configs | None = None,
) -> list[tuple[str, DeadLetter]]:
    """Dead letters in the databases of ``names`` (each service keeps its own groups'), with their service."""
    found: list[tuple[str, DeadLetter]] = []
    for name in names or SERVICES:
        if not SERVICES[name].has_database:
            continue
        db = Database(database_url(settings, name, configs), name=name)
        try:
            store = DeadLetters(db)
            if not await store.exists():
                continue
            if dead_letter_id is not None:
                letter = await store.get(dead_letter_id)
                found.extend([(name, letter)] if letter is not None else [])
            else:
                found.extend((name, letter) for letter in await store.list(group=group))
        finally:
            await db.dispose()
    return found


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    exit_code: int
    """0 replayed (and removed), 1 the handler failed again (kept, attempts + 1), 2 nothing to replay."""
    message: str


async def replay_dead_letter(settings: Settings, dead_letter_id: str, configs: Configs | None = None) -> ReplayOutcome:
    """Hand a dead letter to its group's handler in this process; remove it once the handler succeeds."""
    found = await find_dead_letters(settings, dead_letter_id=dead_letter_id, configs=configs)
    if not found:
        return ReplayOutcome(2, f"no dead letter {dead_letter_id}")
    owner, letter = found[0]
    # The handler may call other services: those that do not answer elsewhere live in this process.
    names = [owner, *(name for name in SERVICES if name != owner and name not in remote_urls([owner]))]
    runtime = Runtime(settings, names, run_workers=False, configs=configs)
    await runtime.start()
    try:
        service = runtime.services[0]
        consumer = service.consumers().get(letter.group)
        if consumer is None:
            return ReplayOutcome(2, f"{owner} has no consumer group {letter.group!r} any more")
        store = DeadLetters(service.db)
        try:
            await consumer[1](letter.envelope())
        except Exception as exc:
            await store.failed_again(letter.id, error=describe(exc))
            return ReplayOutcome(1, f"replay of {letter.id} failed again: {exc!r}")
        await store.remove(letter.id)
        return ReplayOutcome(0, f"replayed {letter.id} ({letter.event_type} {letter.event_id}) to {letter.group}")
    finally:
        await runtime.stop()


@bus_app.command("dead-letters")
def dead_letters_command(
    service: Annotated[str | None, typer.Option(help="only this service's groups")] = None,
    group: Annotated[str | None, typer.Option(help="only this consumer group")] = None,
) -> None:
    """List the events consumer groups gave up on after BOXOFFICE_BUS_MAX_ATTEMPTS attempts."""
    settings = _settings()
    names = [_service_class(service).name] if service else list(SERVICES)
    letters = asyncio.run(find_dead_letters(settings, names, group=group))
    if not letters:
        typer.echo("no dead letters")
        return
    columns = ["id", "service", "group", "topic", "partition", "offset", "event", "attempts", "failed_at", "error"]
    typer.echo("\t".join(columns))
    for name, letter in letters:
        error = letter.error.strip().splitlines()[-1] if letter.error.strip() else ""
        row = [letter.id, name, letter.group, letter.topic, letter.partition, letter.offset]
        row += [f"{letter.event_type} {letter.event_id}", letter.attempts, letter.failed_at.isoformat(), error]
        typer.echo("\t".join(str(cell) for cell in row))


@bus_app.command()
def replay(dead_letter_id: str) -> None:
    """Hand one dead letter to its consumer group's handler again; remove it once the handler succeeds."""
    settings = _settings().model_copy(update={"sqlite_inline": False})  # a running service shares the files
    outcome = asyncio.run(replay_dead_letter(settings, dead_letter_id))
    typer.echo(outcome.message, err=outcome.exit_code != 0)
    raise typer.Exit(outcome.exit_code)


def main() -> None:
    try:
        app()
    except ValidationError as invalid:  # a setting that cannot work stops start-up with what is wrong in it
        for error in invalid.errors():
            typer.echo(f"boxoffice: invalid setting: {error['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
