"""boxoffice in the test's own process: the real runtime and gateway, reached through httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from boxoffice.cli import Configs, Runtime, migrate_all
from boxoffice.platform.settings import Settings


class FakeClock:
    """A clock the test moves forward (``service.clock = clock``) instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Running:
    client: httpx.AsyncClient
    runtime: Runtime

    def service(self, name: str) -> Any:
        return next(s for s in self.runtime.services if s.name == name)


@asynccontextmanager
async def running(
    settings: Settings, names: Sequence[str], *, workers: bool = True, configs: Configs | None = None
) -> AsyncIterator[Running]:
    await asyncio.to_thread(migrate_all, settings, names, configs)
    runtime = Runtime(settings, names, run_workers=workers, configs=configs)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=runtime.gateway(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://boxoffice.test") as client:
            yield Running(client, runtime)
    finally:
        await runtime.stop()


async def wait_for(predicate: Any, *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)
