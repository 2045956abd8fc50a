"""The dev mailbox: in dev mode it shows everyone's mail (and the page says so); in production it does not exist."""

from __future__ import annotations

from pathlib import Path

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.settings import Settings
from tests.harness.app import running, wait_for

SIGN_UP = {"password": "a-long-ticket-password", "name": "Fan"}


async def test_dev_mode_lists_everyones_codes_and_the_page_says_so(tmp_path: Path, db_url: str) -> None:
    configs = {"identity": IdentitySettings(database_url=db_url)}
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "web"], configs=configs) as app:
        for email in ("ann@example.com", "bob@example.com"):
            assert (await app.client.post("/api/auth/register", json={**SIGN_UP, "email": email})).status_code == 201

        async def everyone() -> list[str] | None:
            items = (await app.client.get("/api/dev/mailbox")).json()["items"]
            return sorted(m["to"] for m in items) if len(items) == 2 else None

        assert await wait_for(everyone) == ["ann@example.com", "bob@example.com"]
        page = await app.client.get("/dev/mailbox")
        assert page.status_code == 200
        assert "every message sent to anyone" in page.text and "one-time codes" in page.text
        assert "ann@example.com" in page.text and "bob@example.com" in page.text
        assert "never exists in production" in page.text


async def test_production_has_no_dev_mailbox(tmp_path: Path, db_url: str) -> None:
    settings = Settings(data_dir=tmp_path, mode="production", secret_key="s" * 40, mail_backend="smtp", demo=False)
    configs = {"identity": IdentitySettings(database_url=db_url)}
    async with running(settings, ["identity", "web"], configs=configs, workers=False) as app:
        assert (await app.client.post("/api/auth/register", json={**SIGN_UP, "email": "ann@example.com"})).status_code == 201
        for path in ("/api/dev/mailbox", "/api/dev/mailbox?to=ann@example.com"):
            response = await app.client.get(path)
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "ann@example.com" not in response.text
        page = await app.client.get("/dev/mailbox")
        assert page.status_code == 404 and "ann@example.com" not in page.text
