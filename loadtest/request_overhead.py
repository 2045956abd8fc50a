"""What one API request costs around its handler: the gateway, the platform's middleware, FastAPI.

    .venv/bin/python loadtest/request_overhead.py [--requests 20000] [--rounds 10] [--log-level WARNING]

Builds a service app with ``Service.create_app`` whose route looks like the flash sale's hottest one
(``POST /api/holds``: a strict JSON body, the caller's access token, the service's dependencies, an
``Idempotency-Key`` header, a 201 JSON answer) among as many other routes as booking has, puts it behind a
``Gateway`` holding every service's route patterns, and calls it with raw ASGI messages, in one process,
alternating rounds of:

- ``gateway``: the whole path, as a buyer's request takes it in embedded mode;
- ``app``: the service app alone (no gateway);
- ``handler``: the same handler called directly with an already-parsed body and user (what is left).

It prints the median CPU microseconds per request of each (and the fastest round's) and the differences. The
handler does no I/O, so the figures are the platform's share of a request; compare two versions of the code
by running this script under each (``PYTHONPATH=<other tree>/src``). ``--log-level INFO`` writes the access
log (to /dev/null), as in production; ``WARNING`` drops it, as ``loadtest/flow_cpu.py`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import jwt
from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import Field

from boxoffice.cli import SERVICES, gateway_routes
from boxoffice.platform.app import Service, provide
from boxoffice.platform.auth import AUDIENCE, ISSUER, CurrentUser, Principal, TokenVerifier
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.gateway import Gateway
from boxoffice.platform.keys import generate_key
from boxoffice.platform.observability import configure_logging
from boxoffice.platform.requests import RequestBody
from boxoffice.platform.settings import Settings

KEY = generate_key()


class ItemIn(RequestBody):
    event_id: str = Field(min_length=1, max_length=64)
    section_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10)


@dataclass(frozen=True)
class BenchDeps:
    name: str


Deps = Annotated[BenchDeps, Depends(provide(BenchDeps))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def place(body: ItemIn, user: Principal, deps: BenchDeps, key: str | None) -> JSONResponse:
    answer = {"id": key, "owner": user.id, "service": deps.name, **body.model_dump()}
    return JSONResponse(answer, status_code=201)


def bench_router() -> APIRouter:
    router = APIRouter()
    for n in range(12):  # booking's public and internal routes come before and after the hot one
        router.add_api_route(f"/api/other{n}/{{item_id}}", _other, methods=["GET"])

    @router.post("/api/holds", status_code=201)
    async def place_hold(body: ItemIn, user: CurrentUser, deps: Deps, key: IdempotencyKey = None) -> JSONResponse:
        return await place(body, user, deps, key)

    for n in range(12, 24):
        router.add_api_route(f"/api/other{n}/{{item_id}}", _other, methods=["GET", "POST"])
    return router


async def _other(item_id: str) -> dict[str, str]:
    return {"id": item_id}


class Bench(Service):
    name = "booking"
    routes: ClassVar[tuple[str, ...]] = ("/api/holds", "/api/orders")
    has_database = False

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, bus=build_bus(settings), clients=ServiceClients(settings))
        self.deps = BenchDeps(self.name)

        async def jwks() -> dict[str, Any]:
            return {"keys": [KEY.public_jwk]}

        self.verifier = TokenVerifier(jwks)

    def routers(self) -> Sequence[APIRouter]:
        return [bench_router()]


def token() -> str:
    now = int(time.time())
    claims = {
        "sub": uuid.uuid4().hex, "email": "buyer@example.com", "name": "Buyer", "roles": ["customer"],
        "typ": "access", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600,
    }
    return jwt.encode(claims, KEY.private_key, algorithm="EdDSA", headers={"kid": KEY.kid})


def scope(bearer: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": "POST",
        "path": "/api/holds",
        "raw_path": b"/api/holds",
        "query_string": b"",
        "headers": [
            (b"host", b"boxoffice.test"),
            (b"accept", b"*/*"),
            (b"user-agent", b"python-httpx/0.28"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {bearer}".encode()),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
        ],
        "scheme": "http",
        "http_version": "1.1",
        "server": ("boxoffice.test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }


async def call(app: Any, bearer: str, body: bytes) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope(bearer, body), receive, send)
    return status


async def rate(app: Any, count: int, bearer: str, body: bytes) -> float:
    started = time.process_time()
    for _ in range(count):
        status = await call(app, bearer, body)
    if status != 201:
        raise SystemExit(f"the bench route answered {status}")
    return (time.process_time() - started) / count * 1e6


async def rate_handler(count: int, service: Bench, bearer: str, body: bytes) -> float:
    started = time.process_time()
    user = await service.verifier.verify(bearer)
    for _ in range(count):
        parsed = ItemIn.model_validate_json(body)
        await place(parsed, user, service.deps, uuid.uuid4().hex)
    return (time.process_time() - started) / count * 1e6


async def main(requests: int, rounds: int, profile: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        service = Bench(settings)
        app = service.create_app()
        patterns = [(p, app) for name, cls in SERVICES.items() if name != "booking" for p in gateway_routes(cls)]
        gateway = Gateway([*patterns, *((p, app) for p in gateway_routes(Bench))], check_ready=_ready)
        bearer, body = token(), json.dumps({"event_id": "e1", "section_id": "s1", "quantity": 1}).encode()
        per_round = requests // rounds
        await rate(gateway, 500, bearer, body), await rate(app, 500, bearer, body)  # warm up
        through_gateway, app_alone, handler = [], [], []
        for _ in range(rounds):
            through_gateway.append(await rate(gateway, per_round, bearer, body))
            app_alone.append(await rate(app, per_round, bearer, body))
            handler.append(await rate_handler(per_round, service, bearer, body))
        if profile:
            profiler = cProfile.Profile()
            with profiler:
                await rate(gateway, per_round, bearer, body)
            profiler.dump_stats(profile)
    g, a, h = (statistics.median(x) for x in (through_gateway, app_alone, handler))
    g_min, a_min, h_min = (min(x) for x in (through_gateway, app_alone, handler))
    return {
        "us_gateway": round(g, 1),
        "us_app": round(a, 1),
        "us_handler": round(h, 1),
        "us_gateway_share": round(g - a, 1),
        "us_app_share": round(a - h, 1),
        # The fastest round of each: other processes only ever add to a round, so on a busy machine these
        # vary less from run to run than the medians.
        "us_gateway_min": round(g_min, 1),
        "us_app_min": round(a_min, 1),
        "us_handler_min": round(h_min, 1),
    }


async def _ready() -> dict[str, str]:
    return {}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--profile", help="write a cProfile of one more round through the gateway to this file")
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        configure_logging(args.log_level, stream=sink)
        print(json.dumps(asyncio.run(main(args.requests, args.rounds, args.profile))))
