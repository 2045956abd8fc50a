"""A lean HTTP/1.1 client for the load generators: one keep-alive connection over asyncio streams.

An HTTP client library costs more CPU than the server it measures, on the same cores: ``flash_sale.py`` on
httpx spent about 24 ms of CPU per complete flow at 64 buyers, as much as the server, and so took a core
from it. This costs a few hundred microseconds a request.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol


class Tally(Protocol):
    """Where a connection counts what happened (a load process's outcome)."""

    requests: int
    timeouts: int
    server_errors: int


class Answer(Exception):
    """A buyer's final answer other than a ticket or "sold out" (an error, a timeout)."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One buyer's HTTP/1.1 keep-alive connection over asyncio streams: an HTTP client library costs more CPU
    than the server it measures, on the same cores. Reconnects when idle longer than the server keeps it."""

    IDLE = 4.0  # under any server's keep-alive (uvicorn's own default is 5 s; boxoffice keeps 65 s)

    def __init__(self, host: str, port: int, timeout: float, out: Tally, deadline: float = math.inf) -> None:
        self.host, self.port, self.timeout, self.out, self.deadline = host, port, timeout, out, deadline
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # not wait_closed(): a peer that never answers must not hold the buyer
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> Reply:
        if time.time() > self.deadline:  # the run is bounded, even if a cancellation was lost in wait_for
            raise Answer("no answer (run bounded)")
        for attempt in range(2):
            fresh = self.writer is None or time.monotonic() - self.used > self.IDLE
            try:
                return await asyncio.wait_for(self._once(method, path, headers, body, fresh), self.timeout)
            except TimeoutError:
                await self.close()
                self.out.timeouts += 1
                raise Answer("timeout") from None
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                await self.close()
                # A GET is safe to send again on a new connection; so is a POST the old one never delivered.
                if attempt or (method != "GET" and fresh):
                    raise Answer(f"connection: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    async def _once(self, method: str, path: str, headers: dict[str, str], body: Any, fresh: bool) -> Reply:
        if fresh:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(payload)}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await self.writer.drain()
        self.out.requests += 1
        status_line = await self.reader.readuntil(b"\r\n")
        raw = await self.reader.readuntil(b"\r\n\r\n")
        found: dict[str, str] = {}
        for line in raw.decode("latin-1").split("\r\n"):
            if ":" in line:
                key, value = line.split(":", 1)
                found[key.strip().lower()] = value.strip()
        if found.get("transfer-encoding", "").lower() == "chunked":  # the gateway streams what it proxies
            content = await self._chunks()
        else:
            content = await self.reader.readexactly(int(found.get("content-length", "0")))
        self.used = time.monotonic()
        if found.get("connection", "").lower() == "close":
            await self.close()
        status = int(status_line.split()[1])
        if status >= 500:
            self.out.server_errors += 1
        return Reply(status, found, content)

    async def _chunks(self) -> bytes:
        """A chunked body: hex size, CRLF, the bytes, CRLF; a chunk of size 0 (and the trailers) ends it."""
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
