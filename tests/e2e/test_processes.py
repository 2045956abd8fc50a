"""Distributed mode end to end: ``boxoffice run --processes`` on PostgreSQL and Kafka (Tansu).

Each service runs as its own ``serve`` and ``worker`` processes behind the gateway, with one PostgreSQL
database per service and the kafka bus; the buyer's journey works exactly as in embedded mode, with booking's API served by two processes.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

from boxoffice.cli import SERVICES
from tests.e2e.test_purchase_flow import ADMIN, admin_headers, pay, place_hold, sign_up, tickets_of
from tests.harness.net import free_port_range
from tests.harness.postgres import create_database
from tests.harness.server import boxoffice_run


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.timeout(420)  # ~19 processes start on two cores; on a loaded machine that alone takes minutes
def test_buyer_journey_on_separate_processes(tmp_path: Path, postgres_admin_url: str, kafka_bootstrap: str) -> None:
    env = {
        "BOXOFFICE_ADMIN_EMAIL": ADMIN["email"],
        "BOXOFFICE_ADMIN_PASSWORD": ADMIN["password"],
        "BOXOFFICE_BUS": "kafka",
        "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BOXOFFICE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "BOXOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "BOXOFFICE_KAFKA_REBALANCE_TIMEOUT_MS": "6000",
        "BOXOFFICE_SERVICES_BASE_PORT": str(free_port_range(len(SERVICES))),
        **{
            f"BOXOFFICE_{name.upper()}_DATABASE_URL": create_database(postgres_admin_url, prefix=name)
            for name in SERVICES
        },
    }
    with (
        boxoffice_run(tmp_path / "var", env=env, args=("--processes", "--replicas", "booking=2"), timeout=240) as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
    ):
        buyer = sign_up(client, "distributed@example.com")
        events = client.get("/api/events", params={"category": "concert", "limit": 50}).json()["items"]
        event = next(e for e in events if e["seating"] == "general")
        section = client.get(f"/api/events/{event['id']}").json()["sections"][0]
        hold = place_hold(client, {"event_id": event["id"], "section_id": section["id"], "quantity": 1}, buyer)
        paid = pay(client, hold, buyer)
        [ticket] = tickets_of(client, paid["order_id"], buyer, 1)
        gate = admin_headers(client)
        assert client.post("/api/checkin", json={"code": ticket["code"]}, headers=gate).status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}
        commands = [p.cmdline() for p in psutil.Process(server.process.pid).children()]
        assert sum(c[3:5] == ["serve", "booking"] for c in commands) == 2  # python -m boxoffice.cli serve booking
