"""The whole signup flow over real HTTP against ``boxoffice run``, as a user of the README would do it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.harness.server import boxoffice_run


def wait_for_code(client: httpx.Client, email: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = client.get("/api/dev/mailbox", params={"to": email}).json()["items"]
        if items:
            match = re.search(r"\b(\d{6})\b", items[0]["text"])
            assert match
            return match.group(1)
        time.sleep(0.1)
    raise TimeoutError("no code in the dev mailbox")


def test_signup_over_http(tmp_path: Path) -> None:
    env = {"BOXOFFICE_ADMIN_EMAIL": "admin@example.com", "BOXOFFICE_ADMIN_PASSWORD": "admin-password-2026"}
    with boxoffice_run(tmp_path / "var", env=env) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        registered = client.post(
            "/api/auth/register", json={"email": "fan@example.com", "password": "my-ticket-password", "name": "Fan"}
        )
        assert registered.status_code == 201, registered.text
        code = wait_for_code(client, "fan@example.com")
        tokens = client.post("/api/auth/verify", json={"email": "fan@example.com", "code": code}).json()
        me = client.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200 and me.json()["verified"] is True

        login = client.post("/api/auth/login", json={"email": "fan@example.com", "password": "my-ticket-password"})
        assert login.status_code == 200
        refreshed = client.post("/api/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
        assert refreshed.status_code == 200

        admin = client.post("/api/auth/login", json={"email": "admin@example.com", "password": "admin-password-2026"})
        admin_me = client.get("/api/me", headers={"Authorization": f"Bearer {admin.json()['access_token']}"})
        assert "admin" in admin_me.json()["roles"]

        assert client.get("/.well-known/jwks.json").json()["keys"][0]["alg"] == "EdDSA"
        assert client.get("/api/identity/openapi.json").status_code == 200
        assert "boxoffice_http_requests_total" in client.get("/metrics").text
        assert client.get("/readyz").json() == {"status": "ready"}
        # The server's own log is JSON lines with request ids.
    assert '"event"' in server.log.read_text()


def test_production_mode_refuses_default_secrets(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", "run"],
        env={"BOXOFFICE_MODE": "production", "BOXOFFICE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert b"BOXOFFICE_SECRET_KEY" in result.stderr and b"dev mailbox" in result.stderr


def test_data_dir_files_are_private_to_the_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with boxoffice_run(data_dir) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        registered = client.post(
            "/api/auth/register", json={"email": "fan@example.com", "password": "my-ticket-password", "name": "Fan"}
        )
        assert registered.status_code == 201
        wait_for_code(client, "fan@example.com")  # the mailbox file with the code exists now
    made = [p for p in data_dir.rglob("*") if p.name != "server.log"]  # the harness, not boxoffice, wrote the log
    assert any(p.suffix == ".db" for p in made) and any("mail" in str(p) for p in made)
    exposed = [f"{p.relative_to(data_dir)} {oct(p.stat().st_mode & 0o777)}" for p in made if p.stat().st_mode & 0o077]
    assert not exposed, exposed
