"""An httpx transport whose connection pool costs the same per request however many connections it holds.

httpcore 1.0's pool (under every ``httpx.AsyncClient``) walks all its connections and all waiting requests on
every request and every answer, and asks each idle socket whether it was closed (a ``poll`` system call each):
its CPU per request grows with the connections in use. A flash sale's 64 buyers cost the load generator 2 ms
of CPU per request on httpx, four times what 16 buyers cost, and the service clients hold as
many connections as there are requests in flight (known upstream: encode/httpcore#1035, pydantic/httpx2#1169).

This pool keeps the idle HTTP/1.1 connections of each origin in a stack and checks only the one it takes:
O(1) per request. The connections are httpcore's own (``AsyncHTTPConnection``: the HTTP/1.1 protocol, the
timeouts and the exceptions httpx maps), and ``LeanTransport`` is httpx's ``AsyncHTTPTransport`` with this
pool in place of httpcore's, so callers keep httpx's API, its errors and streamed bodies. Plain HTTP/1.1 only:
what the services speak to each other on the inside. (The gateway's upstream client is aiohttp's: see
``platform/gateway.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator

import httpcore
import httpx


class LeanPool:
    """At most ``max_connections`` requests in flight (the others wait in line for a slot, up to the request's
    pool timeout); idle connections kept per origin, at most ``max_keepalive`` of them, each for at most
    ``keepalive_expiry`` seconds."""

    def __init__(self, *, max_connections: int, max_keepalive: int, keepalive_expiry: float) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._max_keepalive = max_keepalive
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[bytes, bytes, int], list[tuple[float, httpcore.AsyncHTTPConnection]]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if self._slots.locked():  # wait in line (wait_for makes a task: only when there is a line)
            timeout = request.extensions.get("timeout", {}).get("pool")
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout)
            except TimeoutError:
                raise httpcore.PoolTimeout("no connection slot within the pool timeout") from None
        else:
            await self._slots.acquire()
        try:
            while True:
                connection, reused = await self._connection(request.url.origin)
                try:
                    response = await connection.handle_async_request(request)
                except httpcore.ConnectionNotAvailable:
                    await connection.aclose()
                    if reused:
                        continue  # the server closed it meanwhile: another one
                    raise
                except BaseException:
                    await connection.aclose()
                    raise
                break
        except BaseException:
            self._slots.release()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Released(response.stream, self, connection, request.url.origin),
            extensions=response.extensions,
        )

    async def _connection(self, origin: httpcore.Origin) -> tuple[httpcore.AsyncHTTPConnection, bool]:
        """The most recently used idle connection to ``origin`` that is still good, or a new one."""
        idle = self._idle.get(_key(origin))
        now = time.monotonic()
        while idle:
            since, connection = idle.pop()
            if now - since < self._keepalive_expiry and connection.is_idle() and not connection.has_expired():
                return connection, True
            await connection.aclose()
        return httpcore.AsyncHTTPConnection(origin=origin, keepalive_expiry=self._keepalive_expiry), False

    async def _release(self, connection: httpcore.AsyncHTTPConnection, origin: httpcore.Origin) -> None:
        """A request is done with ``connection``: keep it for the next one if it can serve another."""
        self._slots.release()
        idle = self._idle.setdefault(_key(origin), [])
        if self._closed or not connection.is_idle() or len(idle) >= self._max_keepalive:
            await connection.aclose()
            return
        idle.append((time.monotonic(), connection))

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, connection in connections:
                with contextlib.suppress(Exception):
                    await connection.aclose()

    async def __aenter__(self) -> LeanPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port  # an Origin compares by value but does not hash


class _Released:
    """An answer's body; once read or closed, its connection goes back to the pool."""

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        pool: LeanPool,
        connection: httpcore.AsyncHTTPConnection,
        origin: httpcore.Origin,
    ) -> None:
        self._stream, self._pool, self._connection, self._origin = stream, pool, connection, origin
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if hasattr(self._stream, "aclose"):
                await asyncio.shield(self._stream.aclose())
        finally:
            await self._pool._release(self._connection, self._origin)


class LeanTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` (its request mapping and its exceptions) over ``LeanPool``."""

    def __init__(self, limits: httpx.Limits) -> None:
        # Not the parent's __init__ (its only state is its pool): it builds httpcore's pool and an SSL context
        # (reading the CA bundle), about 30 ms per client, for a pool replaced at once. Plain HTTP/1.1 inside.
        self._pool = LeanPool(  # type: ignore[assignment]
            max_connections=limits.max_connections or 1000,
            max_keepalive=limits.max_keepalive_connections or limits.max_connections or 1000,
            keepalive_expiry=limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0,
        )
