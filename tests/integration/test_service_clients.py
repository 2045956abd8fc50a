"""Service clients against a real (flaky) ASGI service: timeouts, retries only when safe, the breaker."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxoffice.platform.clients import CircuitBreaker, CircuitOpen, ServiceClient
from boxoffice.platform.problems import ServiceUnavailable
from tests.harness.net import free_port


class Flaky:
    """A service that fails the first ``failures`` calls of each path with 503, counting every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}
        self.app = Starlette(
            routes=[Route("/{name}", self.handle, methods=["GET", "POST"]), Route("/slow/{s}", self.slow)]
        )

    async def handle(self, request: Request) -> Response:
        key = f"{request.method} {request.url.path}"
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= self.failures:
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"ok": True})

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(float(request.path_params["s"]))
        return JSONResponse({"ok": True})


async def test_idempotent_calls_are_retried_others_are_not() -> None:
    flaky = Flaky(failures=2)
    client = ServiceClient("flaky", app=flaky.app, retries=2, backoff_base=0.001)
    assert (await client.get("/a")).status_code == 200
    assert flaky.calls["GET /a"] == 3
    assert (await client.post("/b")).status_code == 503  # a POST might have had its effect: not repeated
    assert flaky.calls["POST /b"] == 1
    keyed = await client.post("/c", headers={"Idempotency-Key": "k"})  # safe to repeat: the service dedupes
    assert keyed.status_code == 200 and flaky.calls["POST /c"] == 3
    await client.aclose()


async def test_breaker_opens_after_consecutive_failures() -> None:
    flaky = Flaky(failures=100)
    breaker = CircuitBreaker(failures=3, reset_after=60)
    client = ServiceClient("flaky", app=flaky.app, retries=0, breaker=breaker)
    for _ in range(3):
        assert (await client.get("/x")).status_code == 503
    with pytest.raises(CircuitOpen):
        await client.get("/x")
    assert flaky.calls["GET /x"] == 3  # the open breaker spared the failing service
    await client.aclose()


async def test_timeouts_end_slow_calls_over_http() -> None:
    flaky = Flaky(failures=0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            flaky.app, host="127.0.0.1", port=port, log_config=None, lifespan="off", timeout_graceful_shutdown=0
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    client = ServiceClient("flaky", base_url=f"http://127.0.0.1:{port}", timeout=0.2, retries=1, backoff_base=0.001)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ServiceUnavailable):
        await client.get("/slow/5")
    assert asyncio.get_running_loop().time() - started < 2  # two tries of 0.2 s, not the 5 s the service takes
    await client.aclose()
    server.should_exit = server.force_exit = True
    await serving
