"""CPU per proxied request of the gateway's upstream client: ``HttpProxy`` (aiohttp) against an httpx client
(what ``HttpProxy`` used before, then over a connection pool of our own, since removed), side by side, alternated.

    .venv/bin/python loadtest/gateway_client.py --requests 4000 --rounds 2

An upstream in a process of its own (uvicorn, a JSON answer of 300 bytes) on 127.0.0.1; 16 requests in
flight, each a POST with a bearer token and an Idempotency-Key as a hold's, its answer read to the end. The
figure is this process's CPU time (user + system) per request: the client's work, what the gateway pays.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boxoffice.platform.gateway import HttpProxy  # noqa: E402
from tests.harness.net import free_port  # noqa: E402

UPSTREAM = """
import sys, uvicorn
BODY = b'{"id":"0192f0b2-0000-7000-8000-000000000000","status":"active","items":[1,2,3]}' * 4
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop="asyncio", http="httptools")
"""
HEADERS = [
    (b"authorization", b"Bearer " + b"x" * 300),
    (b"content-type", b"application/json"),
    (b"idempotency-key", b"k" * 32),
    (b"accept", b"*/*"),
]
BODY = b'{"event_id":"e1","section_id":"s1","quantity":2}'


async def measure(one: Callable[[], Awaitable[None]], requests: int) -> float:
    """µs of CPU per request, 16 in flight (after 200 to warm up)."""
    slots = asyncio.Semaphore(16)

    async def sent() -> None:
        async with slots:
            await one()

    await asyncio.gather(*(sent() for _ in range(200)))
    started = time.process_time()
    await asyncio.gather(*(sent() for _ in range(requests)))
    return (time.process_time() - started) * 1e6 / requests


async def aiohttp_proxy(base: str, requests: int) -> float:
    proxy = HttpProxy(base)

    async def one() -> None:
        answer = await proxy.send("POST", "/api/holds", HEADERS, BODY)
        async for _ in answer.content.iter_any():
            pass
        answer.release()

    try:
        return await measure(one, requests)
    finally:
        await proxy.aclose()


async def httpx_client(base: str, requests: int) -> float:
    client = httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=500))

    async def one() -> None:
        request = client.build_request("POST", "/api/holds", headers=HEADERS, content=BODY)
        answer = await client.send(request, stream=True)
        async for _ in answer.aiter_raw():
            pass
        await answer.aclose()

    try:
        return await measure(one, requests)
    finally:
        await client.aclose()


@contextmanager
def upstream() -> Iterator[str]:
    """The upstream above in a process of its own on 127.0.0.1, ready: its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with upstream() as base:
        for round_ in range(1, args.rounds + 1):
            for name, run in (("httpx", httpx_client), ("HttpProxy (aiohttp)", aiohttp_proxy)):
                print(f"round {round_}: {name:<22} {asyncio.run(run(base, args.requests)):6.0f} µs of CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
