"""What the platform's per-request middleware costs: one service app, in-process, raw ASGI calls.

    .venv/bin/python loadtest/middleware_overhead.py --requests 20000

Calls ``GET /healthz`` of a service app built by ``Service.create_app`` (JSON access log written to
/dev/null, as in production minus the terminal) and of the same app without the platform's middleware
(``platform.ingress.PlatformMiddleware``: request id, access log, metrics, replay marker, security headers,
body limit, fault injection), alternating rounds, and prints the median microseconds per request of each.
``loadtest/request_overhead.py`` measures a whole API request (gateway, FastAPI, the platform's layer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from boxoffice.platform import app as platform_app
from boxoffice.platform.app import Service
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.observability import configure_logging
from boxoffice.platform.settings import Settings


class Bench(Service):
    name = "bench"


async def call(app: Any) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "scheme": "http",
        "http_version": "1.1",
        "server": ("bench", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    await app(scope, receive, send)


async def rate(app: Any, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await call(app)
    return (time.perf_counter() - started) / count * 1e6


def build(settings: Settings, *, bare: bool) -> Any:
    names = vars(platform_app)  # the name create_app looks up
    saved = names["PlatformMiddleware"]
    if bare:  # the app without the platform's per-request layer
        names["PlatformMiddleware"] = _passthrough
    try:
        service = Bench(settings, bus=build_bus(settings), clients=ServiceClients(settings))
        return service.create_app()
    finally:
        names["PlatformMiddleware"] = saved


def _passthrough(app: Any, **_: Any) -> Any:
    return app


async def main(requests: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        full, bare = build(settings, bare=False), build(settings, bare=True)
        await rate(full, 200), await rate(bare, 200)  # warm up
        with_mw, without = [], []
        for _ in range(rounds):
            with_mw.append(await rate(full, requests // rounds))
            without.append(await rate(bare, requests // rounds))
    return {
        "us_per_request_with_platform_middleware": round(statistics.median(with_mw), 1),
        "us_per_request_without": round(statistics.median(without), 1),
        "added_us": round(statistics.median(with_mw) - statistics.median(without), 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--log-level", default="INFO", help="WARNING: without the access log")
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        configure_logging(args.log_level, stream=sink)
        print(json.dumps(asyncio.run(main(args.requests, args.rounds))))
