"""``LeanTransport``'s pool against a real HTTP/1.1 server on loopback: connections reused, a connection the
server closed replaced, never more requests in flight than slots, and a body left unread not reused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from boxoffice.platform.httppool import LeanTransport

pytestmark = pytest.mark.timeout(60)

BODY = b"x" * 100_000  # larger than one read: an answer left unread leaves bytes on the connection


@dataclass
class Upstream:
    """A minimal HTTP/1.1 server: ``/`` answers at once, ``/slow`` after ``delay``, ``/big`` a large body,
    ``/bye`` answers and then closes the connection without saying so (as an idle timeout does)."""

    delay: float = 0.2
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                if path == b"/slow":
                    await asyncio.sleep(self.delay)
                body = BODY if path == b"/big" else b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                self.in_flight -= 1
                if path == b"/bye":
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        for writer in state.writers:
            writer.close()
        server.close()


def client(url: str, *, slots: int = 10, pool_timeout: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=slots, keepalive_expiry=4.0)
    return httpx.AsyncClient(
        base_url=url, transport=LeanTransport(limits), timeout=httpx.Timeout(5.0, pool=pool_timeout)
    )


async def test_requests_one_after_another_share_one_connection(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    async with client(url) as http:
        for _ in range(5):
            assert (await http.get("/")).text == "ok"
    assert state.connections == 1


async def test_a_connection_the_server_closed_is_replaced_without_an_error(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    async with client(url) as http:
        assert (await http.get("/bye")).text == "ok"  # the server closes this connection after answering
        await asyncio.sleep(0.1)
        assert (await http.post("/", content=b"{}")).text == "ok"  # a POST too: it was never sent on the dead one
    assert state.connections == 2


async def test_requests_beyond_the_slots_wait_for_one_or_time_out(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    async with client(url, slots=2) as http:
        answers = await asyncio.gather(*[http.get("/slow") for _ in range(6)])
        assert [a.status_code for a in answers] == [200] * 6
        assert state.most_in_flight == 2 and state.connections == 2

    async with client(url, slots=1, pool_timeout=0.05) as http:
        first = asyncio.ensure_future(http.get("/slow"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await http.get("/")
        assert (await first).status_code == 200
        assert (await http.get("/")).text == "ok"  # the slot came back


async def test_a_body_left_unread_is_not_reused_and_its_slot_comes_back(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    async with client(url, slots=1) as http:
        async with http.stream("GET", "/big") as response:
            assert response.status_code == 200  # closed without reading the body
        assert (await http.get("/")).text == "ok"
        assert state.connections == 2  # a new one
        async with http.stream("GET", "/big") as response:
            assert len(await response.aread()) == len(BODY)
        assert (await http.get("/")).text == "ok"
        assert state.connections == 2  # a body read to its end leaves its connection for the next request
