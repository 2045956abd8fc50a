"""``boxoffice run --api-processes N``: the shape of the group and how it ends.

The buyer's journeys themselves run against this mode in ``test_purchase_flow.py``; here: N ``serve all``
processes and one ``worker all`` under the one command, every API process answering on the one port, and
a group that stops as a whole when one of its processes dies (a shop that half works is worse than none).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_purchase_flow import sign_up
from tests.harness.server import boxoffice_run


def started_and_frozen(log: Path) -> list[int]:
    """The ``frozen`` count of every "boxoffice started" line the group logged."""
    counts = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == "boxoffice started":
                counts.append(int(entry["frozen"]))
    return counts


@pytest.mark.timeout(240)
def test_api_processes_share_the_port_and_the_group_ends_together(tmp_path: Path) -> None:
    env = {"BOXOFFICE_WORKER_NICE": "7"}
    with boxoffice_run(tmp_path / "var", args=("--api-processes", "2"), env=env, timeout=120) as server:
        children = psutil.Process(server.process.pid).children()
        commands = sorted(" ".join(p.cmdline()[3:5]) for p in children)  # python -m boxoffice.cli serve all
        assert commands == ["serve all", "serve all", "worker all"]
        ours = psutil.Process().nice()  # the requests come first: the worker runs at a lower priority

        def priorities() -> list[tuple[str, int]]:
            return sorted((" ".join(p.cmdline()[3:5]), p.nice()) for p in children)

        wanted = [("serve all", ours), ("serve all", ours), ("worker all", min(19, ours + 7))]
        deadline = time.monotonic() + 60  # the worker lowers its own priority as it starts
        while priorities() != wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        assert priorities() == wanted
        port = int(server.url.rsplit(":", 1)[1])

        def ports() -> list[list[int]]:
            return [[c.laddr.port for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN] for p in children]

        expected = [[port] if p.cmdline()[3] == "serve" else [] for p in children]
        deadline = time.monotonic() + 60  # the first API process answering does not mean the second listens yet
        while ports() != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ports() == expected  # the API processes share the one port; the worker listens on none
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/readyz").json() == {"status": "ready"}
        # Each process froze what its start-up built out of later garbage collections (platform/heap.py).
        deadline = time.monotonic() + 60
        while len(frozen := started_and_frozen(tmp_path / "var" / "server.log")) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(frozen) == 3 and min(frozen) > 10_000, frozen

        worker = next(p for p in children if p.cmdline()[3] == "worker")
        worker.kill()
        assert server.process.wait(timeout=60) == 1  # the group stopped, and says it failed
        _, alive = psutil.wait_procs([p for p in children if p.pid != worker.pid], timeout=30)
        assert not alive


@pytest.mark.timeout(240)
def test_workers_apart_serve_the_api_from_one_process_and_work_in_another(tmp_path: Path) -> None:
    with boxoffice_run(tmp_path / "var", args=("--workers-apart",), timeout=120) as server:
        children = psutil.Process(server.process.pid).children()
        assert sorted(" ".join(p.cmdline()[3:5]) for p in children) == ["serve all", "worker all"]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/readyz").json() == {"status": "ready"}
            sign_up(client, "apart@example.com")  # its code arrives by e-mail: the worker process sent it
