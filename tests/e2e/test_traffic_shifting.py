"""Traffic shifting between two versions of music, each its own process, under steady load.

The gateway is ``boxoffice run --processes`` (identity, catalog and music each their own processes); music v1
and v2 are two more ``boxoffice serve music`` processes with different ``BOXOFFICE_VERSION`` on music's one
PostgreSQL database (as two deployments of one service would be). The operator
shifts 100/0 -> 90/10 -> 50/50 -> 0/100 while clients keep browsing: no request fails, and in each step the
share that v2 served (``X-Boxoffice-Version``) is within 5 points of its weight.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from boxoffice.cli import SERVICES as ALL_SERVICES
from tests.browser.conftest import create_user
from tests.e2e.test_purchase_flow import ADMIN, admin_headers
from tests.harness.net import free_port, free_port_range
from tests.harness.postgres import create_database
from tests.harness.server import Server, boxoffice_run

STEPS = ((100, 0), (90, 10), (50, 50), (0, 100))
PER_STEP = 200
WORKERS = 6
SERVICES = ("identity", "catalog", "music")
"""What browsing music needs (``run --processes --only``)."""


@contextmanager
def music_instance(version: str, data_dir: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}, **env,
                "BOXOFFICE_VERSION": version, "BOXOFFICE_DATA_DIR": str(data_dir), "BOXOFFICE_LOG_LEVEL": "WARNING"}
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "boxoffice.cli", "serve", "music", "--port", str(port)],
                               env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (data_dir / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "music instance not ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class Load:
    """Steady browsing by ``WORKERS`` clients; each answer is counted in the step that was on for all of it."""

    step: int = -1
    served: dict[int, Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    total: int = 0
    stop: bool = False

    async def worker(self, client: httpx.AsyncClient, paths: list[tuple[str, dict[str, str]]], offset: int) -> None:
        i = offset
        while not self.stop and self.total < 4000:
            path, headers = paths[i % len(paths)]
            i += 1
            started = self.step
            response = await client.get(path, headers=headers)
            self.total += 1
            if response.status_code != 200:
                self.failures.append(f"{response.status_code} {path}: {response.text[:200]}")
            elif started == self.step and started >= 0:
                self.served.setdefault(started, Counter())[response.headers.get("x-boxoffice-version", "?")] += 1


@pytest.mark.postgres
@pytest.mark.timeout(600)  # eight processes to start on a shared machine, then ~900 requests
def test_shift_music_from_v1_to_v2_under_load(tmp_path: Path, postgres_admin_url: str) -> None:
    music_db = create_database(postgres_admin_url, prefix="music")
    env = {"BOXOFFICE_ADMIN_EMAIL": ADMIN["email"], "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"],
           "BOXOFFICE_MUSIC_DATABASE_URL": music_db, "BOXOFFICE_LOG_LEVEL": "WARNING",
           "BOXOFFICE_SERVICES_BASE_PORT": str(free_port_range(len(ALL_SERVICES)))}
    args = ("--processes", "--only", ",".join(SERVICES))
    with boxoffice_run(tmp_path / "gateway", env=env, args=args, timeout=240) as server:
        instance_env = {"BOXOFFICE_MUSIC_DATABASE_URL": music_db, "BOXOFFICE_IDENTITY_URL": server.url}
        with (
            music_instance("v1", tmp_path / "v1", instance_env) as v1,
            music_instance("v2", tmp_path / "v2", instance_env) as v2,
        ):
            load = asyncio.run(_shift_under_load(server, v1, v2))
    print(f"requests: {load.total}, failed: {len(load.failures)}, served per step: {load.served}")
    assert not load.failures, load.failures[:5]
    for step, (w1, w2) in enumerate(STEPS):
        counts = load.served[step]
        n = counts["v1"] + counts["v2"]
        assert n >= PER_STEP and n == sum(counts.values()), counts
        assert abs(100 * counts["v2"] / n - w2) <= 5, (STEPS[step], counts)
        assert abs(100 * counts["v1"] / n - w1) <= 5, (STEPS[step], counts)


async def _shift_under_load(server: Server, v1: str, v2: str) -> Load:
    with httpx.Client(base_url=server.url, timeout=15) as sync_client:
        admin = admin_headers(sync_client)
    fan = {"Authorization": f"Bearer {create_user(server, 'shifted@example.com')}"}
    paths = [("/api/artists?q=jazz", {}), ("/api/tracks?genre=rock&limit=5", {}), ("/api/playlists", fan),
             ("/api/artists?genre=pop", {}), ("/api/tracks?q=golden", {})]
    load = Load()
    limits = httpx.Limits(max_connections=WORKERS * 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        workers = [asyncio.create_task(load.worker(client, paths, n)) for n in range(WORKERS)]
        try:
            await asyncio.sleep(0.5)  # the load is on before the first shift
            for step, (w1, w2) in enumerate(STEPS):
                body = {"upstreams": [{"url": v1, "version": "v1", "weight": w1},
                                      {"url": v2, "version": "v2", "weight": w2}]}
                shifted = await client.put("/api/admin/routes/music", json=body, headers=admin)
                assert shifted.status_code == 200, shifted.text
                load.step = step
                deadline = time.monotonic() + 60
                while sum(load.served.get(step, Counter()).values()) < PER_STEP:
                    assert time.monotonic() < deadline and not load.failures, load.failures[:3]
                    await asyncio.sleep(0.05)
        finally:
            load.stop = True
            await asyncio.gather(*workers)
        routes = (await client.get("/api/admin/routes", headers=admin)).json()["items"]
        music = next(r for r in routes if r["service"] == "music")
        assert [u["weight"] for u in music["upstreams"]] == [0, 100]

        # Faults set at the gateway reach the music processes (pushed to their /internal/faults).
        rules = {"rules": [{"service": "music", "path_prefix": "/api/tracks", "abort_status": 503,
                            "abort_percent": 100}]}
        pushed = await client.put("/api/admin/faults", json=rules, headers=admin)
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["pushed"] == {**{name: "ok" for name in SERVICES}, "music@v1": "ok", "music@v2": "ok"}
        aborted = await client.get("/api/tracks")
        assert aborted.status_code == 503 and aborted.headers["x-boxoffice-version"] == "v2"
        assert aborted.json()["type"].endswith("/injected-fault")
        assert (await client.get("/api/artists")).status_code == 200
        assert (await client.delete("/api/admin/faults", headers=admin)).status_code == 204
        assert (await client.get("/api/tracks")).status_code == 200
    return load
