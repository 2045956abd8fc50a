"""Fault injection at the services' ingress and the gateway's operator API, in one process (embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from boxoffice.catalog.deps import CatalogSettings
from boxoffice.identity.deps import IdentitySettings
from boxoffice.music.deps import MusicSettings
from boxoffice.platform import faults
from boxoffice.platform.gateway import Upstream, WeightedUpstreams
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running
from tests.integration.test_catalog import ADMIN, admin_headers, customer_headers


@pytest.fixture(autouse=True)
def clean_faults() -> Iterator[None]:
    """The registry is the process's: no test leaves its faults to the next."""
    faults.registry().clear()
    yield
    faults.registry().clear()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Running]:
    configs = {
        "music": MusicSettings(),
        "catalog": CatalogSettings(),
        "identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"]),
    }
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "catalog", "music"],
                       configs=configs) as app:
        yield app


def injected(service: str, kind: str) -> float:
    return REGISTRY.get_sample_value("boxoffice_faults_injected_total", {"service": service, "kind": kind}) or 0.0


async def test_faults_are_set_at_run_time_by_admins_only_and_hit_only_their_target(app: Running) -> None:
    client = app.client
    admin, fan = await admin_headers(client), await customer_headers(client)
    rules = {"rules": [{"service": "music", "method": "GET", "path_prefix": "/api/artists", "abort_status": 503,
                        "abort_percent": 100}]}
    assert (await client.put("/api/admin/faults", json=rules)).status_code == 401
    assert (await client.put("/api/admin/faults", json=rules, headers=fan)).status_code == 403
    bad = {"rules": [{"service": "music", "abort_percent": 50}]}
    refused = await client.put("/api/admin/faults", json=bad, headers=admin)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/admin/faults", headers=admin)).json() == {"rules": []}

    before = injected("music", "abort")
    assert (await client.put("/api/admin/faults", json=rules, headers=admin)).status_code == 200
    aborted = await client.get("/api/artists")
    assert aborted.status_code == 503 and aborted.json()["type"].endswith("/injected-fault")
    assert injected("music", "abort") == before + 1
    assert (await client.get("/api/tracks")).status_code == 200  # another path of music
    assert (await client.get("/api/events")).status_code == 200  # another service
    assert (await client.post("/api/artists", json={}, headers=admin)).status_code == 422  # another method
    assert (await client.get("/api/admin/faults", headers=admin)).json()["rules"][0]["path_prefix"] == "/api/artists"

    assert (await client.delete("/api/admin/faults", headers=admin)).status_code == 204
    assert (await client.get("/api/artists")).status_code == 200


async def test_percentages_delays_and_the_metric(app: Running) -> None:
    client = app.client
    admin = await admin_headers(client)
    rules = [{"service": "*", "path_prefix": "/api/tracks", "delay_ms": 5, "delay_percent": 100,
              "abort_status": 500, "abort_percent": 50}]
    assert (await client.put("/api/admin/faults", json=rules, headers=admin)).status_code == 200
    delays, aborts = injected("music", "delay"), injected("music", "abort")
    statuses = [(await client.get("/api/tracks", params={"limit": 1})).status_code for _ in range(300)]
    failed = statuses.count(500)
    assert set(statuses) == {200, 500}
    assert 90 <= failed <= 210  # 50 % of 300; far outside this is a broken dice, not bad luck (p < 1e-9)
    assert injected("music", "delay") == delays + 300
    assert injected("music", "abort") == aborts + failed
    # Health, readiness and the control path are never faulted.
    everything = [{"service": "*", "abort_status": 503, "abort_percent": 100}]
    assert (await client.put("/api/admin/faults", json=everything, headers=admin)).status_code == 200
    assert (await client.get("/api/tracks")).status_code == 503
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.delete("/api/admin/faults", headers=admin)).status_code == 204


def test_boxoffice_faults_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_registry", None)
    monkeypatch.setenv("BOXOFFICE_FAULTS", '[{"service": "booking", "delay_ms": 2000, "delay_percent": 50}]')
    [rule] = faults.registry().rules
    assert (rule.service, rule.delay_ms, rule.delay_percent, rule.abort_status) == ("booking", 2000, 50, None)
    assert rule.matches("booking", "GET", "/api/holds") and not rule.matches("tickets", "GET", "/api/holds")
    monkeypatch.setattr(faults, "_registry", None)
    monkeypatch.setenv("BOXOFFICE_FAULTS", '{"rules": [{"service": "tickets", "abort_percent": 10}]}')
    with pytest.raises(ValueError, match="abort_status"):
        faults.registry()
    monkeypatch.setattr(faults, "_registry", None)


async def test_internal_fault_push_needs_the_internal_token(app: Running) -> None:
    music = app.runtime.apps["music"]
    transport = httpx.ASGITransport(app=music)
    async with httpx.AsyncClient(transport=transport, base_url="http://music") as direct:
        body = [{"service": "music", "abort_status": 502, "abort_percent": 100}]
        assert (await direct.put("/internal/faults", json=body)).status_code == 403
        token = app.runtime.clients.get("music")._http.headers
        pushed = await direct.put("/internal/faults", json=body, headers=dict(token))
        assert pushed.status_code == 200 and pushed.json()["rules"][0]["abort_status"] == 502
        assert (await app.client.get("/api/artists")).status_code == 502
        assert (await direct.delete("/internal/faults", headers=dict(token))).status_code == 204
    assert (await app.client.get("/api/artists")).status_code == 200


async def test_routes_api_and_the_version_header(app: Running) -> None:
    client = app.client
    admin, fan = await admin_headers(client), await customer_headers(client)
    for response in (await client.get("/api/artists"), await client.get("/healthz"), await client.get("/nowhere")):
        assert response.headers["x-boxoffice-version"]
    assert (await client.get("/api/admin/routes", headers=fan)).status_code == 403
    routes = (await client.get("/api/admin/routes", headers=admin)).json()["items"]
    assert {r["service"] for r in routes} == {"identity", "catalog", "music"}
    assert all(not r["shifted"] and r["upstreams"][0]["weight"] == 100 for r in routes)
    assert (await client.put("/api/admin/routes/nothing", json={"upstreams": []}, headers=admin)).status_code == 404
    bad = {"upstreams": [{"url": "ftp://x", "version": "v2", "weight": 10}]}
    assert (await client.put("/api/admin/routes/music", json=bad, headers=admin)).status_code == 422
    zero = {"upstreams": [{"url": "http://127.0.0.1:9", "version": "v2", "weight": 0}]}
    assert (await client.put("/api/admin/routes/music", json=zero, headers=admin)).status_code == 400
    # Shifted to a process that is not there: a clear 503, and back to normal with DELETE.
    gone = {"upstreams": [{"url": "http://127.0.0.1:9", "version": "v9", "weight": 100}]}
    shifted = await client.put("/api/admin/routes/music", json=gone, headers=admin)
    assert shifted.status_code == 200 and shifted.json()["shifted"] is True
    assert (await client.get("/api/artists")).status_code == 503
    assert (await client.delete("/api/admin/routes/music", headers=admin)).json()["shifted"] is False
    assert (await client.get("/api/artists")).status_code == 200


def test_smooth_weighted_round_robin_gives_exact_shares() -> None:
    def ups(*weights: int) -> WeightedUpstreams:
        return WeightedUpstreams([Upstream(f"http://u{i}", f"v{i}", w, None) for i, w in enumerate(weights)])  # type: ignore[arg-type]

    for weights in ((90, 10), (50, 50), (0, 100), (100, 0), (1, 2, 7)):
        picks = [ups_.pick().version for ups_ in [ups(*weights)] for _ in range(sum(weights) * 3)]
        for i, weight in enumerate(weights):
            assert picks.count(f"v{i}") == weight * 3
    spread = ups(90, 10)
    first_ten = [spread.pick().version for _ in range(10)]
    assert first_ten.count("v1") == 1


async def test_an_exhausted_connection_pool_is_a_503_to_retry_not_a_500() -> None:
    from fastapi import FastAPI
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from boxoffice.platform.problem_http import install_problem_handlers

    api = FastAPI()
    install_problem_handlers(api)

    @api.get("/busy")
    async def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 4 overflow 4 reached, connection timed out, timeout 30.00")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as client:
        response = await client.get("/busy")
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert response.json()["type"].endswith("/overloaded")


async def test_a_database_connection_lost_mid_request_is_a_503_to_retry_and_the_next_request_reconnects(
    pg_url: str,
) -> None:
    """The backend dies under a request (here it terminates itself, as a PostgreSQL restart would): on
    SQLAlchemy's path and on the hot path straight on asyncpg, the answer is a 503 with Retry-After, the
    connection is dropped, and the next request is served on a new one."""
    from fastapi import FastAPI
    from sqlalchemy import func, select, text

    from boxoffice.platform import hotsql
    from boxoffice.platform.db import Database
    from boxoffice.platform.problem_http import install_problem_handlers

    db = Database(pg_url, name="lost")
    suicide = select(func.pg_terminate_backend(func.pg_backend_pid()))
    api = FastAPI()
    install_problem_handlers(api)

    died: list[int] = []

    @api.get("/die/{path}")
    async def die(path: str) -> None:
        async with db.uow() as uow:
            died.append(int((await uow.conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            if path == "hot":
                await hotsql.run(uow.conn, suicide, {})
            else:
                await uow.conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            await uow.commit()

    @api.get("/pid")
    async def pid() -> int:
        async with db.uow() as uow:
            return int((await uow.conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as client:
            for path in ("hot", "sqlalchemy"):
                response = await client.get(f"/die/{path}")
                assert response.status_code == 503 and response.headers["retry-after"] == "1", response.text
                assert response.json()["type"].endswith("/database-unavailable")
                after = await client.get("/pid")
                assert after.status_code == 200 and after.json() != died[-1]
    finally:
        await db.dispose()
