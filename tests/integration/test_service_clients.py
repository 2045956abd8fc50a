"""Service clients against a real (flaky) ASGI service: timeouts, retries only when safe, the breaker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from prometheus_client import REGISTRY
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
        self.calls["GET /slow"] = self.calls.get("GET /slow", 0) + 1
        await asyncio.sleep(float(request.path_params["s"]))
        return JSONResponse({"ok": True})


def client_retries(client: str, reason: str) -> float:
    return REGISTRY.get_sample_value("boxoffice_client_retries_total", {"client": client, "reason": reason}) or 0.0


async def test_idempotent_calls_are_retried_others_are_not() -> None:
    flaky = Flaky(failures=2)
    name = f"flaky-{uuid.uuid4().hex[:8]}"
    client = ServiceClient(name, app=flaky.app, retries=2, backoff_base=0.001)
    assert (await client.get("/a")).status_code == 200
    assert flaky.calls["GET /a"] == 3
    assert (await client.post("/b")).status_code == 503  # a POST might have had its effect: not repeated
    assert flaky.calls["POST /b"] == 1
    keyed = await client.post("/c", headers={"Idempotency-Key": "k"})  # safe to repeat: the service dedupes
    assert keyed.status_code == 200 and flaky.calls["POST /c"] == 3
    assert client_retries(name, "503") == 4  # two for the GET, two for the keyed POST (metrics and dashboards)
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
    name = f"slow-{uuid.uuid4().hex[:8]}"
    client = ServiceClient(name, base_url=f"http://127.0.0.1:{port}", timeout=0.2, retries=1, backoff_base=0.001)
    with pytest.raises(ServiceUnavailable):
        await client.get("/slow/600")  # answers after 600 s: only the client's timeout (0.2 s a try) ends the call
    assert flaky.calls["GET /slow"] == 2  # the first try and its retry, each given up on
    assert client_retries(name, "timeout") == 1
    await client.aclose()
    server.should_exit = server.force_exit = True
    await serving


class Peer:
    """A service over real HTTP on loopback whose answer the test chooses: ``ok``, ``500`` or ``slow``."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0
        self.app = Starlette(routes=[Route("/x", self.handle)])

    async def handle(self, request: Request) -> Response:
        self.calls += 1
        if self.mode == "500":
            return JSONResponse({"error": "boom"}, status_code=500)
        if self.mode == "slow":
            await asyncio.sleep(5)
        return JSONResponse({"ok": True})


@asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off", timeout_graceful_shutdown=0)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = server.force_exit = True
        await serving


def breaker_state(client: str) -> float | None:
    return REGISTRY.get_sample_value("boxoffice_client_breaker_state", {"client": client})


def transitions(client: str, to: str) -> float:
    return REGISTRY.get_sample_value("boxoffice_client_breaker_transitions_total", {"client": client, "to": to}) or 0.0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_a_peer_answering_500_opens_the_breaker_and_a_good_answer_closes_it() -> None:
    peer, clock = Peer(), Clock()
    name = f"peer-{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(failures=3, reset_after=10, clock=clock, name=name)
    async with served(peer.app) as url:
        client = ServiceClient(name, base_url=url, retries=0, breaker=breaker)
        peer.mode = "500"
        for _ in range(3):
            assert (await client.get("/x")).status_code == 500
        assert breaker.state == "open" and breaker_state(name) == 2
        with pytest.raises(CircuitOpen):
            await client.get("/x")
        assert peer.calls == 3  # the open breaker spared the failing peer

        clock.t = 10  # cool-down over: half-open, one trial may go
        assert breaker_state(name) == 1
        assert (await client.get("/x")).status_code == 500  # the trial fails: open again
        assert breaker.state == "open"
        clock.t = 20
        peer.mode = "ok"
        assert (await client.get("/x")).status_code == 200  # the trial succeeds: closed
        assert breaker.state == "closed" and breaker_state(name) == 0
        assert (await client.get("/x")).status_code == 200
        assert transitions(name, "open") == 2 and transitions(name, "half-open") == 2
        assert transitions(name, "closed") == 1
        await client.aclose()


async def test_a_trial_cancelled_by_the_callers_timeout_does_not_wedge_the_breaker() -> None:
    peer, clock = Peer(), Clock()
    breaker = CircuitBreaker(failures=1, reset_after=10, clock=clock, name=f"peer-{uuid.uuid4().hex[:8]}")
    async with served(peer.app) as url:
        client = ServiceClient("peer", base_url=url, retries=0, breaker=breaker)
        peer.mode = "500"
        await client.get("/x")
        assert breaker.state == "open"

        clock.t = 10
        peer.mode = "slow"
        with pytest.raises(TimeoutError):  # the caller gives up on the trial (the peer takes 5 s)
            await asyncio.wait_for(client.get("/x"), 0.2)

        peer.mode = "ok"
        assert (await client.get("/x")).status_code == 200  # the next call is the trial, not refused for good
        assert breaker.state == "closed"
        await client.aclose()


async def stream_status(client: ServiceClient) -> int:
    async with client.stream("/x") as response:
        await response.aread()
        return response.status_code


async def test_a_stream_answering_500_counts_and_its_cancelled_trial_does_not_wedge_the_breaker() -> None:
    peer, clock = Peer(), Clock()
    name = f"peer-{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(failures=2, reset_after=10, clock=clock, name=name)
    async with served(peer.app) as url:
        client = ServiceClient(name, base_url=url, retries=0, breaker=breaker)
        peer.mode = "500"
        assert [await stream_status(client) for _ in range(2)] == [500, 500]
        assert breaker.state == "open" and breaker_state(name) == 2
        with pytest.raises(CircuitOpen):
            await stream_status(client)

        clock.t = 10
        peer.mode = "slow"
        with pytest.raises(TimeoutError):  # the caller gives up on the half-open trial
            await asyncio.wait_for(stream_status(client), 0.2)

        peer.mode = "ok"
        assert await stream_status(client) == 200  # the next stream is the trial, not refused for good
        assert breaker.state == "closed" and breaker_state(name) == 0
        await client.aclose()


class Echo:
    """Answers what it was sent: method, path, query, the headers that matter, the JSON body."""

    def __init__(self) -> None:
        self.app = Starlette(routes=[Route("/echo/{rest:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": sorted(request.query_params.multi_items()),
                "internal": request.headers.get("x-boxoffice-internal") is not None,
                "key": request.headers.get("idempotency-key"),
                "type": request.headers.get("content-type"),
                "json": json.loads(body) if body else None,
            },
            status_code=201,
            headers={"x-answer": "yes"},
        )


async def test_a_call_over_http_sends_and_answers_as_the_in_process_one() -> None:
    echo = Echo()
    headers = {"x-boxoffice-internal": "token"}
    call = {
        "json": {"name": "Zoë", "n": 2, "seats": ["A-1"]},
        "headers": {"Idempotency-Key": "k-1"},
        "params": {"q": "rock & roll", "limit": 5, "flag": True, "tags": ["a", "b"]},
    }
    async with served(echo.app) as url:
        remote = ServiceClient("echo", base_url=url, retries=0, headers=headers)
        local = ServiceClient("echo", app=echo.app, retries=0, headers=headers)
        over_http = await remote.post("/echo/x%2Fy", **call)
        in_process = await local.post("/echo/x%2Fy", **call)
        await remote.aclose()
        await local.aclose()
    assert over_http.status_code == in_process.status_code == 201
    assert over_http.json() == in_process.json()
    assert over_http.json()["query"] == [["flag", "true"], ["limit", "5"], ["q", "rock & roll"], ["tags", "a"], ["tags", "b"]]
    assert over_http.json()["internal"] and over_http.json()["key"] == "k-1"
    assert over_http.json()["type"] == "application/json" and over_http.json()["json"]["name"] == "Zoë"
    assert over_http.headers["x-answer"] == "yes" and over_http.raise_for_status() is over_http
    assert over_http.request.method == "POST" and str(over_http.request.url).startswith(f"{url}/echo/x%2Fy?")


@asynccontextmanager
async def hanging_up() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that reads each request's head and closes the connection without answering."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()
        await server.wait_closed()


async def test_a_call_cut_off_after_sending_is_sent_again_only_when_it_is_safe() -> None:
    name = f"hangs-{uuid.uuid4().hex[:8]}"
    async with hanging_up() as (url, heads):
        client = ServiceClient(name, base_url=url, retries=2, backoff_base=0.001, breaker=CircuitBreaker(failures=100))
        with pytest.raises(ServiceUnavailable):
            await client.post("/pay", json={"amount": 1})  # may have had its effect: sent once
        assert len(heads) == 1
        with pytest.raises(ServiceUnavailable):
            await client.request("DELETE", "/holds/h1")  # idempotent: the client's own two retries, no more
        assert len(heads) == 4
        assert client_retries(name, "connection") == 2
        await client.aclose()


async def test_a_refused_connection_is_retried_then_unavailable() -> None:
    name = f"refused-{uuid.uuid4().hex[:8]}"
    client = ServiceClient(name, base_url=f"http://127.0.0.1:{free_port()}", retries=1, backoff_base=0.001)
    with pytest.raises(ServiceUnavailable):
        await client.get("/x")
    assert client_retries(name, "connection") == 1
    await client.aclose()
