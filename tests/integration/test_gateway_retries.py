"""The gateway retries connection errors (``platform.gateway``): against real upstreams on loopback that are
stopped, started late, or drop a connection after reading the request.

A request that could not be sent at all is sent again (to another instance, or the same after a back-off)
whatever its method; one whose connection broke after it was sent is sent again only if it is GET/HEAD or
carries an Idempotency-Key, so a POST without one reaches the upstream at most once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from prometheus_client import REGISTRY

from boxoffice.platform.gateway import Gateway, HttpProxy, Upstream, WeightedUpstreams
from tests.harness.net import free_port


@dataclass
class LoopbackUpstream:
    """A minimal HTTP/1.1 server: records each request it read; ``drop`` of them are answered by closing the
    connection instead (a process that died after reading), the rest with 200 and the server's name."""

    name: str
    port: int
    drop: int = 0
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    server: asyncio.Server | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.connections:
                writer.transport.abort()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = next((int(v) for k, _, v in (h.partition(": ") for h in lines[1:])
                               if k.lower() == "content-length"), 0)
                body = await reader.readexactly(length) if length else b""
                self.seen.append((method, path, body))
                if self.drop > 0:
                    self.drop -= 1
                    writer.transport.abort()  # a reset: no answer at all
                    return
                answer = self.name.encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
                             + str(len(answer)).encode() + b"\r\n\r\n" + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()


def retries(reason: str) -> float:
    return REGISTRY.get_sample_value("boxoffice_gateway_retries_total", {"reason": reason}) or 0.0


async def no_failures() -> dict[str, str]:
    return {}


@asynccontextmanager
async def gateway_to(target: HttpProxy | WeightedUpstreams) -> AsyncIterator[httpx.AsyncClient]:
    app = target.target if isinstance(target, WeightedUpstreams) else target
    gateway = Gateway([("/api/things", app)], check_ready=no_failures, owners={"/api/things": "things"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw", timeout=30) as c:
        yield c


async def test_a_post_to_a_stopped_upstream_waits_for_it_to_come_back_and_arrives_once() -> None:
    upstream = LoopbackUpstream("v2", free_port())
    await upstream.start()
    await upstream.stop()  # stopped: connections are refused
    proxy = HttpProxy(f"http://127.0.0.1:{upstream.port}", retry_seconds=20)
    before = retries("connect")
    try:
        async with gateway_to(proxy) as client:
            sent = asyncio.create_task(client.post("/api/things", content=b"buy one"))
            while retries("connect") < before + 2:  # the gateway is retrying the refused connection
                assert not sent.done(), sent.result()
                await asyncio.sleep(0.02)
            await upstream.start()  # the new process listens
            answer = await sent
        assert answer.status_code == 200 and answer.text == "v2"
        assert upstream.seen == [("POST", "/api/things", b"buy one")]
    finally:
        await upstream.stop()
        await proxy.aclose()


async def test_an_upstream_that_stays_down_is_a_503_once_the_budget_is_spent() -> None:
    port = free_port()  # nothing listens there
    proxy = HttpProxy(f"http://127.0.0.1:{port}", retry_seconds=0.5)
    before = retries("connect")
    try:
        async with gateway_to(proxy) as client:
            answer = await client.get("/api/things")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert retries("connect") > before
    finally:
        await proxy.aclose()


async def test_a_stopped_instance_is_skipped_for_a_running_one() -> None:
    live, stopped = LoopbackUpstream("live", free_port()), LoopbackUpstream("stopped", free_port())
    await live.start()
    await stopped.start()
    await stopped.stop()
    proxies = [HttpProxy(f"http://127.0.0.1:{u.port}", retry_seconds=5) for u in (live, stopped)]
    upstreams = WeightedUpstreams(
        [Upstream(p.base_url, u.name, 50, p) for p, u in zip(proxies, (live, stopped), strict=True)],
        retry_seconds=5,
    )
    try:
        async with gateway_to(upstreams) as client:
            answers = [await client.post("/api/things", content=f"order {i}".encode()) for i in range(20)]
        assert [a.status_code for a in answers] == [200] * 20
        assert {a.text for a in answers} == {"live"}
        assert sorted(body for _, _, body in live.seen) == sorted(f"order {i}".encode() for i in range(20))
    finally:
        await live.stop()
        for proxy in proxies:
            await proxy.aclose()


async def test_a_reset_after_sending_is_retried_only_when_sending_twice_is_harmless() -> None:
    upstream = LoopbackUpstream("up", free_port())
    await upstream.start()
    proxy = HttpProxy(f"http://127.0.0.1:{upstream.port}", retry_seconds=5)
    try:
        async with gateway_to(proxy) as client:
            before = retries("reset")
            upstream.drop = 1
            assert (await client.get("/api/things/1")).status_code == 200
            assert [m for m, _, _ in upstream.seen] == ["GET", "GET"]
            assert retries("reset") == before + 1

            upstream.seen.clear()
            upstream.drop = 1
            keyed = await client.post("/api/things", content=b"pay", headers={"Idempotency-Key": "k-1"})
            assert keyed.status_code == 200
            assert [m for m, _, _ in upstream.seen] == ["POST", "POST"]

            upstream.seen.clear()
            upstream.drop = 1
            plain = await client.post("/api/things", content=b"pay")
            assert plain.status_code == 503  # it may have acted on it: not sent a second time
            assert upstream.seen == [("POST", "/api/things", b"pay")]

            upstream.seen.clear()
            upstream.drop = 1  # idempotent in HTTP's terms (an HTTP client may resend it), not in boxoffice's:
            released = await client.delete("/api/things/1")  # a second release of a hold answers 409
            assert released.status_code == 503
            assert upstream.seen == [("DELETE", "/api/things/1", b"")]
    finally:
        await upstream.stop()
        await proxy.aclose()


async def test_a_draining_process_closes_every_connection_it_answers_on() -> None:
    async def hello(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"keep-alive")]})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"hi"})  # type: ignore[operator]

    gateway = Gateway([], check_ready=no_failures, fallback=hello)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
        assert (await client.get("/api/x")).headers.get("connection") == "keep-alive"
        gateway.draining = True
        assert (await client.get("/api/x")).headers.get("connection") == "close"


async def test_an_event_stream_passes_through_as_it_arrives() -> None:
    """Server-sent events (live sales, the waiting room) reach the browser event by event through the gateway
    of ``run --processes``, not once the upstream has finished."""
    go_on = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await go_on.wait()
        writer.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    proxy = HttpProxy(f"http://127.0.0.1:{port}", retry_seconds=1)
    gateway = Gateway([("/api/things", proxy)], check_ready=no_failures, owners={"/api/things": "things"})
    arrived: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        await arrived.put(message)

    scope = {"type": "http", "method": "GET", "path": "/api/things/stream", "raw_path": b"/api/things/stream",
             "query_string": b"", "headers": [(b"accept", b"text/event-stream")], "client": ("127.0.0.1", 1),
             "scheme": "http", "server": ("gw", 80), "http_version": "1.1", "root_path": ""}
    answering = asyncio.create_task(gateway(scope, receive, send))  # type: ignore[arg-type]
    try:
        start = await asyncio.wait_for(arrived.get(), 10)
        assert start["type"] == "http.response.start" and start["status"] == 200
        first = await asyncio.wait_for(arrived.get(), 10)  # while the upstream still holds the second event
        assert first["body"] == b"data: first\n\n" and first["more_body"] is True
        assert not answering.done()
        go_on.set()
        rest = b""
        while True:
            message = await asyncio.wait_for(arrived.get(), 10)
            rest += message["body"]  # type: ignore[operator]
            if not message.get("more_body"):
                break
        assert rest == b"data: second\n\n"
        await asyncio.wait_for(answering, 10)
    finally:
        answering.cancel()
        server.close()
        await proxy.aclose()
