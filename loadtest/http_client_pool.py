"""CPU per request of an httpx client as its concurrency grows: httpcore's pool against ``LeanTransport``.

    .venv/bin/python loadtest/http_client_pool.py --concurrency 16,64,256 --requests 6000

Starts a trivial uvicorn server on 127.0.0.1 (its own process), then, for each concurrency and each pool,
sends ``--requests`` GETs from that many concurrent tasks through one ``httpx.AsyncClient`` and prints the
client's CPU microseconds per request (process time, so the server's share is not counted) and requests/s.
This is the client the gateway and the service clients use (``platform/httppool.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from boxoffice.platform.httppool import LeanTransport  # noqa: E402
from tests.harness.net import free_port, wait_for_port  # noqa: E402

SERVER = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})
"""


async def drive(client: httpx.AsyncClient, concurrency: int, requests: int) -> tuple[float, float]:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            response = await client.get("/")
            response.raise_for_status()

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return time.process_time() - cpu, time.perf_counter() - began


async def main(args: argparse.Namespace, url: str) -> None:
    limits = httpx.Limits(max_connections=500, keepalive_expiry=4.0)
    print(f"{'pool':10} {'concurrency':>11} {'CPU µs/request':>15} {'requests/s':>11}")
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        for name in ("httpcore", "lean"):
            transport = LeanTransport(limits) if name == "lean" else httpx.AsyncHTTPTransport(limits=limits)
            async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as client:
                await drive(client, concurrency, concurrency * 4)  # open the connections first
                cpu, wall = await drive(client, concurrency, args.requests)
            print(f"{name:10} {concurrency:>11} {cpu * 1e6 / args.requests:>15.0f} {args.requests / wall:>11.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="16,64,256")
    parser.add_argument("--requests", type=int, default=6000)
    arguments = parser.parse_args()
    port = free_port()
    server_file = Path(f"/tmp/boxoffice-http-pool-bench-{port}.py")
    server_file.write_text(SERVER)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(server_file.parent), f"{server_file.stem}:app",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--loop", "uvloop"],
    )
    try:
        wait_for_port(port, timeout=20)
        asyncio.run(main(arguments, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(timeout=10)
        server_file.unlink(missing_ok=True)
