"""``BOXOFFICE_FAULTS``: the fault rules a ``boxoffice run`` starts with, or the reason it does not start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from boxoffice.cli import SERVICES
from tests.e2e.test_purchase_flow import ADMIN, admin_headers
from tests.harness.net import free_port_range
from tests.harness.postgres import create_database
from tests.harness.server import boxoffice_run

RULES = [{"service": "music", "method": "GET", "path_prefix": "/api/tracks", "abort_status": 418,
          "abort_percent": 100}]


def test_rules_that_cannot_work_stop_start_up_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env |= {"BOXOFFICE_DATA_DIR": str(tmp_path),
            "BOXOFFICE_FAULTS": json.dumps({"rules": [{"service": "tickets", "abort_percent": 10}]})}
    done = subprocess.run([sys.executable, "-m", "boxoffice.cli", "run"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert ("boxoffice: invalid setting: BOXOFFICE_FAULTS: invalid fault rules: rules.0: abort_percent needs an "
            "abort_status") in done.stderr
    assert "Traceback" not in done.stderr


def test_a_run_starts_with_the_rules_and_an_admin_takes_them_away(tmp_path: Path) -> None:
    env = {"BOXOFFICE_FAULTS": json.dumps(RULES), "BOXOFFICE_ADMIN_EMAIL": ADMIN["email"],
           "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"], "BOXOFFICE_LOG_LEVEL": "WARNING"}
    with boxoffice_run(tmp_path, env=env, timeout=120) as server, httpx.Client(base_url=server.url,
                                                                              timeout=30) as client:
        aborted = client.get("/api/tracks")
        assert aborted.status_code == 418 and aborted.json()["type"].endswith("/injected-fault")
        assert client.get("/api/artists").status_code == 200  # another path of music
        admin = admin_headers(client)
        assert client.get("/api/admin/faults", headers=admin).json()["rules"][0]["abort_status"] == 418
        assert client.delete("/api/admin/faults", headers=admin).status_code == 204
        assert client.get("/api/tracks").status_code == 200


@pytest.mark.postgres
@pytest.mark.timeout(400)  # six processes to start on a shared machine
def test_every_replica_of_a_service_gets_the_rules(tmp_path: Path, postgres_admin_url: str) -> None:
    """``run --processes --replicas music=2``: two processes share music's port, so the gateway's push reaches
    one of them; the other takes the rules from the shared file. Each request below is a new connection
    straight to music's port, which the kernel spreads over both processes."""
    base_port = free_port_range(len(SERVICES))
    env = {"BOXOFFICE_ADMIN_EMAIL": ADMIN["email"], "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"],
           "BOXOFFICE_LOG_LEVEL": "WARNING", "BOXOFFICE_SERVICES_BASE_PORT": str(base_port),
           "BOXOFFICE_MUSIC_DATABASE_URL": create_database(postgres_admin_url, prefix="music")}
    music = f"http://127.0.0.1:{base_port + list(SERVICES).index('music')}"
    args = ("--processes", "--only", "identity,music", "--replicas", "music=2")

    def statuses() -> list[int]:
        return [httpx.get(f"{music}/api/tracks", params={"limit": 1}, timeout=30).status_code for _ in range(30)]

    def eventually(expected: int) -> None:
        deadline = time.monotonic() + 20
        while (seen := statuses()) != [expected] * 30:
            assert time.monotonic() < deadline, seen
            time.sleep(0.5)

    with boxoffice_run(tmp_path, env=env, args=args, timeout=240) as server, httpx.Client(base_url=server.url,
                                                                                         timeout=30) as client:
        admin = admin_headers(client)
        eventually(200)
        pushed = client.put("/api/admin/faults", json=RULES, headers=admin)
        assert pushed.status_code == 200 and pushed.json()["pushed"] == {"identity": "ok", "music": "ok"}
        eventually(418)
        assert client.delete("/api/admin/faults", headers=admin).status_code == 204
        eventually(200)
