"""A rolling update under load: ``boxoffice run --processes`` on PostgreSQL and Kafka (Tansu), buyers purchasing
steadily through the gateway while booking and then payments get a new version, one process at a time.
(Only the services a purchase needs run: ``--only``.)

For each of ``serve`` and ``worker``, the way a rolling update does it: the new process starts (its service
port is shared with SO_REUSEPORT, as a Service address is shared by its pods), the test waits until it
answers (its ``X-Boxoffice-Version`` is the new one) or has started its workers, and only then sends SIGTERM
to the old one, which drains (``serve --drain-seconds``; a worker finishes its batch) and exits.

Every request the buyers make must succeed: 0 failed requests. Every paid order must get its ticket, once:
0 lost orders, and the event's availability goes down by exactly the tickets sold. Purchases carry an
Idempotency-Key, as the web client's do, so the gateway may send them again after a broken connection.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxoffice.cli import SERVICES
from tests.e2e.test_purchase_flow import ADMIN, CARD, eventually, sign_up
from tests.harness.net import free_port_range
from tests.harness.postgres import create_database
from tests.harness.server import boxoffice_run

BUYERS = 3
MAX_PURCHASES = 400
"""Per buyer: the load is bounded in count as well as in time."""
NEW_VERSION = "rollout-2"
PURCHASE_SERVICES = ("identity", "catalog", "booking", "payments", "tickets")
"""What a purchase needs (``run --processes --only``): half the processes of the whole of boxoffice."""


@dataclass
class Load:
    """Buyers purchasing one ticket at a time until told to stop; every request that failed, kept."""

    client_url: str
    buyers: list[dict[str, str]]
    event_id: str
    section_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    orders: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    """Every order paid for, with its buyer's headers."""
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, buyer: dict[str, str]) -> None:
        with httpx.Client(base_url=self.client_url, timeout=60) as client:
            for _ in range(MAX_PURCHASES):
                if self.stop.is_set():
                    return
                try:
                    order_id = self._purchase(client, buyer)
                except httpx.HTTPError as exc:
                    self._failed(f"{type(exc).__name__}: {exc}")
                    continue
                if order_id is not None:
                    with self._lock:
                        self.orders.append((order_id, buyer))

    def _purchase(self, client: httpx.Client, buyer: dict[str, str]) -> str | None:
        key = uuid.uuid4().hex
        body = {"event_id": self.event_id, "section_id": self.section_id, "quantity": 1}
        hold = self._call(client, "POST", "/api/holds", 201, json=body, headers={**buyer, "Idempotency-Key": f"h{key}"})
        if hold is None:
            return None
        order = self._call(client, "POST", "/api/orders", 201, json={"hold_id": hold["id"]},
                           headers={**buyer, "Idempotency-Key": f"o{key}"})
        if order is None:
            return None
        paid = self._call(client, "POST", f"/api/orders/{order['id']}/payment", 200, json=CARD,
                          headers={**buyer, "Idempotency-Key": f"p{key}"})
        if paid is None or paid.get("status") != "confirmed":
            self._failed(f"payment of {order['id']} not confirmed: {paid}")
            return None
        self._call(client, "GET", f"/api/orders/{order['id']}", 200, headers=buyer)
        return str(order["id"])

    def _call(self, client: httpx.Client, method: str, path: str, expected: int, **kwargs: Any) -> dict[str, Any] | None:
        response = client.request(method, path, **kwargs)
        with self._lock:
            self.requests += 1
        if response.status_code != expected:
            self._failed(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return None
        return dict(response.json())

    def _failed(self, what: str) -> None:
        with self._lock:
            self.failures.append(what)


@dataclass
class Child:
    pid: int
    args: list[str]
    env: dict[str, str]


def children_of(parent: int) -> list[Child]:
    """The processes ``run --processes`` started: their command lines and environments, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            args = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
            env = dict(item.split("=", 1) for item in (entry / "environ").read_bytes().decode().split("\0") if "=" in item)
        except (OSError, IndexError, ValueError):
            continue
        found.append(Child(int(entry.name), args, env))
    return found


def the_child(children: list[Child], command: str, service: str) -> Child:
    [child] = [c for c in children if c.args[3:5] == [command, service]]
    return child


def wait_exit(pid: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
        assert time.monotonic() < deadline, f"process {pid} did not stop after SIGTERM"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def logged(log: Path, event: str) -> bool:
    for line in log.read_text().splitlines():
        try:
            if json.loads(line).get("event") == event:
                return True
        except ValueError:
            continue
    return False


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def roll(parent: int, service: str, port: int, logs: Path, stack: list[subprocess.Popen[bytes]]) -> None:
    """Replace ``service``'s serve and then its worker process by new ones of NEW_VERSION, one at a time."""
    children = children_of(parent)
    old_serve, old_worker = the_child(children, "serve", service), the_child(children, "worker", service)
    env = {**old_serve.env, "BOXOFFICE_VERSION": NEW_VERSION}

    stack.append(start([sys.executable, *old_serve.args[1:]], env, logs / f"{service}-serve.log"))

    def answers_new() -> bool:
        try:  # a fresh connection each time: the kernel spreads new connections over both listeners
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.headers.get("x-boxoffice-version") == NEW_VERSION

    eventually(answers_new, timeout=600)  # a process boots in seconds; on a starved machine, minutes
    os.kill(old_serve.pid, signal.SIGTERM)  # it drains, then stops
    wait_exit(old_serve.pid, timeout=120)

    worker_log = logs / f"{service}-worker.log"
    stack.append(start([sys.executable, *old_worker.args[1:]], {**old_worker.env, "BOXOFFICE_VERSION": NEW_VERSION},
                       worker_log))
    eventually(lambda: logged(worker_log, "boxoffice started"), timeout=600)
    os.kill(old_worker.pid, signal.SIGTERM)  # it finishes its batch, then stops
    wait_exit(old_worker.pid, timeout=120)


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.timeout(1500)  # 11 processes start, then 4 more; on a loaded machine that alone takes minutes
def test_rolling_update_of_booking_and_payments_under_load(
    tmp_path: Path, postgres_admin_url: str, kafka_bootstrap: str
) -> None:
    base_port = free_port_range(len(SERVICES))
    ports = {name: base_port + index for index, name in enumerate(SERVICES)}
    env = {
        "BOXOFFICE_ADMIN_EMAIL": ADMIN["email"],
        "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"],
        "BOXOFFICE_BUS": "kafka",
        "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BOXOFFICE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "BOXOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "BOXOFFICE_KAFKA_REBALANCE_TIMEOUT_MS": "6000",
        "BOXOFFICE_SERVICES_BASE_PORT": str(base_port),
        "BOXOFFICE_BOOKING_MAX_TICKETS_PER_EVENT": "100000",
        "BOXOFFICE_GATEWAY_RETRY_SECONDS": "20",
        **{
            f"BOXOFFICE_{name.upper()}_DATABASE_URL": create_database(postgres_admin_url, prefix=name)
            for name in PURCHASE_SERVICES
        },
    }
    replacements: list[subprocess.Popen[bytes]] = []
    with (
        boxoffice_run(tmp_path / "var", env=env, args=("--processes", "--only", ",".join(PURCHASE_SERVICES)),
                      timeout=600) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        try:
            buyers = [sign_up(client, f"rollout-{i}@example.com") for i in range(BUYERS)]
            events = client.get("/api/events", params={"category": "festival", "limit": 50}).json()["items"]
            event = max((e for e in events if e["seating"] == "general"), key=lambda e: e["available"])
            section = max(client.get(f"/api/events/{event['id']}").json()["sections"], key=lambda s: s["available"])
            assert section["available"] >= BUYERS * MAX_PURCHASES

            def on_sale() -> bool:  # the catalog's demo events reach booking over Kafka
                body = {"event_id": event["id"], "section_id": section["id"], "quantity": 1}
                hold = client.post("/api/holds", json=body, headers=buyers[0])
                if hold.status_code != 201:
                    return False
                assert client.delete(f"/api/holds/{hold.json()['id']}", headers=buyers[0]).status_code == 204
                return True

            eventually(on_sale, timeout=300)
            available = client.get(f"/api/events/{event['id']}").json()["sections"]
            before = next(s for s in available if s["id"] == section["id"])["available"]

            load = Load(server.url, buyers, event["id"], section["id"])
            threads = [threading.Thread(target=load.run, args=(b,), daemon=True) for b in buyers]
            for thread in threads:
                thread.start()
            eventually(lambda: len(load.orders) >= BUYERS, timeout=300)  # the load runs before the first restart
            rolled: dict[str, float] = {}
            for name in ("booking", "payments"):
                sold = len(load.orders)
                started = time.monotonic()
                roll(server.process.pid, name, ports[name], tmp_path, replacements)
                rolled[name] = time.monotonic() - started  # reported, never asserted
                eventually(lambda sold=sold: len(load.orders) > sold, timeout=300)  # still buying
            load.stop.set()
            for thread in threads:
                thread.join(timeout=120)

            assert load.failures == [], f"{len(load.failures)} of {load.requests} requests failed: {load.failures[:5]}"
            assert len(load.orders) >= BUYERS

            waiting = list(load.orders)

            def tickets_issued() -> bool:
                while waiting:
                    order_id, buyer = waiting[-1]
                    order = client.get(f"/api/orders/{order_id}", headers=buyer).json()
                    if order["status"] != "confirmed" or len(order["tickets"]) != 1:
                        return False
                    waiting.pop()
                return True

            eventually(tickets_issued, timeout=300)  # 0 lost orders: every paid order has its one ticket
            after = client.get(f"/api/events/{event['id']}").json()["sections"]
            available = next(s for s in after if s["id"] == section["id"])["available"]
            assert available == before - len(load.orders)  # each sale counted once: no event lost or applied twice
            for name in ("booking", "payments"):  # the new versions answer now
                assert httpx.get(f"http://127.0.0.1:{ports[name]}/readyz").headers["x-boxoffice-version"] == NEW_VERSION
            retried = [line for line in client.get("/metrics").text.splitlines()
                       if line.startswith("boxoffice_gateway_retries_total{")]
            print(f"rollout: {load.requests} requests by {BUYERS} buyers, 0 failed; {len(load.orders)} orders paid, "
                  f"each with exactly 1 ticket; availability {before} -> {available} (-{before - available}); "
                  f"replacing serve+worker took booking {rolled['booking']:.1f} s, payments {rolled['payments']:.1f} s; "
                  f"gateway retries: {retried or 'none'}")
        finally:
            for process in replacements:
                process.terminate()
            for process in replacements:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
