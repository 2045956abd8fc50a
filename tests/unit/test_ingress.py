"""The platform's one per-request middleware (platform.ingress), on a service app of its own, in-process."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import structlog
from fastapi import APIRouter
from prometheus_client import REGISTRY
from pydantic import Field

from boxoffice.platform.app import Service
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.faults import FaultRule, registry
from boxoffice.platform.idempotency import mark_replayed
from boxoffice.platform.internal import INTERNAL_HEADER, internal_token
from boxoffice.platform.observability import configure_logging
from boxoffice.platform.requests import RequestBody
from boxoffice.platform.settings import Settings

SECRET = "ingress-test-secret-" + "x" * 32


class ThingIn(RequestBody):
    name: str = Field(min_length=1, max_length=100)
    replay: bool = False


def things() -> APIRouter:
    router = APIRouter()

    @router.post("/api/things", status_code=201)
    async def create(body: ThingIn) -> dict[str, str]:
        if body.replay:
            mark_replayed()
        return {"name": body.name}

    @router.post("/api/uploads/{name}", status_code=201)
    async def upload(name: str, body: ThingIn) -> dict[str, str]:
        return {"name": name}

    @router.get("/api/things/{name}/boom")
    async def boom(name: str) -> dict[str, str]:
        raise RuntimeError(f"{name} went wrong")

    return router


class Things(Service):
    name = "things"
    routes: ClassVar[tuple[str, ...]] = ("/api/things",)
    body_limits: ClassVar[dict[str, int]] = {"/api/uploads/": 10_000}
    has_database = False

    def routers(self) -> Sequence[APIRouter]:
        return [things()]


def client_for(tmp_path: Path, *, mode: str = "dev") -> httpx.AsyncClient:
    settings = Settings(data_dir=tmp_path, mode=mode, secret_key=SECRET, mail_backend="smtp", max_body_bytes=1000)
    app = Things(settings, bus=build_bus(settings), clients=ServiceClients(settings)).create_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://things.test")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(tmp_path) as client:
        yield client


@pytest.fixture
def no_faults() -> Iterator[None]:
    registry().clear()
    yield
    registry().clear()


def answered(method: str, route: str, status: int) -> float:
    labels = {"service": "things", "method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("boxoffice_http_requests_total", labels) or 0.0


async def test_an_answer_carries_the_request_id_nosniff_and_is_counted_by_route(client: httpx.AsyncClient) -> None:
    before = answered("POST", "/api/things", 201)
    response = await client.post("/api/things", json={"name": "a"}, headers={"X-Request-ID": "r" * 80})
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "r" * 64
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers and "idempotent-replayed" not in response.headers
    assert answered("POST", "/api/things", 201) == before + 1
    made = (await client.post("/api/things", json={"name": "b"})).headers["x-request-id"]
    assert len(made) == 32 and made != (await client.post("/api/things", json={"name": "b"})).headers["x-request-id"]


async def test_a_replayed_answer_says_so(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/things", json={"name": "a", "replay": True})
    assert response.status_code == 201 and response.headers["idempotent-replayed"] == "true"


async def test_a_declared_body_over_the_limit_is_413_with_every_header(client: httpx.AsyncClient) -> None:
    before = answered("POST", "unmatched", 413)
    response = await client.post("/api/things", content=b'{"name": "' + b"a" * 2000 + b'"}',
                                 headers={"content-type": "application/json", "X-Request-ID": "big"})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/payload-too-large") and "1000 bytes" in response.json()["detail"]
    assert response.headers["x-request-id"] == "big" and response.headers["x-content-type-options"] == "nosniff"
    assert answered("POST", "unmatched", 413) == before + 1


async def test_a_streamed_body_over_the_limit_is_413_and_a_path_may_have_its_own_limit(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(30):
            yield b"a" * 100
        yield b'"}'

    response = await client.post("/api/things", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.headers["x-request-id"]
    body = b'{"name": "' + b"a" * 2000 + b'"}'
    response = await client.post("/api/uploads/x", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422  # past the size check (10,000 bytes there): the name is too long


async def test_an_unexpected_error_is_problem_json_through_every_step(client: httpx.AsyncClient) -> None:
    before = answered("GET", "/api/things/{name}/boom", 500)
    response = await client.get("/api/things/x/boom", headers={"X-Request-ID": "oops"})
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "oops" and response.headers["x-content-type-options"] == "nosniff"
    assert answered("GET", "/api/things/{name}/boom", 500) == before + 1


async def test_production_answers_carry_hsts(tmp_path: Path) -> None:
    async with client_for(tmp_path, mode="production") as client:
        response = await client.post("/api/things", json={"name": "a"})
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.usefixtures("no_faults")
async def test_an_injected_abort_answers_instead_of_the_service_and_its_control_path_is_served(
    client: httpx.AsyncClient,
) -> None:
    registry().replace([FaultRule(service="things", path_prefix="/api/things", abort_status=503, abort_percent=100)])
    response = await client.post("/api/things", json={"name": "a"}, headers={"X-Request-ID": "faulty"})
    assert response.status_code == 503 and response.json()["type"].endswith("/injected-fault")
    assert response.headers["x-request-id"] == "faulty" and response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/api/things/x/boom")).status_code == 503
    forbidden = await client.get("/internal/faults")
    assert forbidden.status_code == 403 and forbidden.headers["x-request-id"]
    token = internal_token(SECRET.encode())
    cleared = await client.delete("/internal/faults", headers={INTERNAL_HEADER: token})
    assert cleared.status_code == 204 and registry().rules == ()
    assert (await client.post("/api/things", json={"name": "a"})).status_code == 201


async def test_the_access_log_line_names_the_request_and_structlog_context_is_merged(tmp_path: Path) -> None:
    lines = io.StringIO()
    saved = structlog.get_config(), logging.getLogger().handlers[:], logging.getLogger().level, sys.excepthook
    configure_logging("INFO", stream=lines)
    try:
        async with client_for(tmp_path) as client:
            await client.post("/api/things", json={"name": "a"}, headers={"X-Request-ID": "logged"})
            structlog.contextvars.bind_contextvars(tenant="t1")
            structlog.get_logger("test").info("bound")
            structlog.contextvars.clear_contextvars()
            structlog.get_logger("test").info("cleared")
    finally:
        config, handlers, level, sys.excepthook = saved
        structlog.configure(**config)
        logging.getLogger().handlers[:] = handlers
        logging.getLogger().setLevel(level)
        logging.captureWarnings(False)
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    access = next(r for r in records if r["event"] == "request")
    assert access["request_id"] == "logged" and access["route"] == "/api/things" and access["status"] == 201
    assert access["service"] == "things" and access["method"] == "POST" and access["duration_ms"] >= 0
    bound = next(r for r in records if r["event"] == "bound")
    assert bound["tenant"] == "t1"
    assert "tenant" not in next(r for r in records if r["event"] == "cleared")


async def test_the_documents_routes_are_counted_by_their_own_template_and_unknown_paths_as_unmatched(
    client: httpx.AsyncClient,
) -> None:
    """FastAPI's own routes (the OpenAPI document) are Starlette routes, which name no route in the scope."""
    document = answered("GET", "/api/things/openapi.json", 200)
    unmatched = answered("GET", "unmatched", 404)
    assert (await client.get("/api/things/openapi.json")).status_code == 200
    assert (await client.get("/api/nothing-here")).status_code == 404
    assert answered("GET", "/api/things/openapi.json", 200) == document + 1
    assert answered("GET", "unmatched", 404) == unmatched + 1
