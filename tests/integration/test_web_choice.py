"""A buyer's choice survives logging in: held right after, only in the browser that made it, unaltered, once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running, wait_for

ADMIN = {"email": "admin@example.com", "password": "admin-password-2026"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path, demo=False)
    identity = IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"])
    async with running(settings, ["identity", "catalog", "booking", "web"], configs={"identity": identity}) as app:
        yield app


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def on_sale_event(client: httpx.AsyncClient) -> tuple[str, str]:
    """A general-admission event that booking can already sell; its id and its section's id."""
    token = (await client.post("/api/auth/login", json=ADMIN)).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    body = {"name": "Choice Night", "category": "concert", "venue": "Paradiso", "city": "Amsterdam",
            "starts_at": (datetime.now(UTC) + timedelta(days=9)).isoformat(), "currency": "EUR",
            "sections": [{"name": "Standing", "price": 3500, "capacity": 50}]}
    event = (await client.post("/api/events", json=body, headers=admin)).json()
    section = event["sections"][0]["id"]

    async def sellable() -> bool:
        hold = await client.post("/api/holds", json={"event_id": event["id"], "section_id": section, "quantity": 1},
                                 headers=admin)
        if hold.status_code != 201:
            return False
        await client.delete(f"/api/holds/{hold.json()['id']}", headers=admin)
        return True

    await wait_for(sellable)
    return event["id"], section


def browser(app: Running) -> httpx.AsyncClient:
    """Another browser: its own cookies (so its own CSRF token), the same site."""
    return httpx.AsyncClient(transport=app.client._transport, base_url="http://boxoffice.test")


async def test_a_choice_made_before_logging_in_is_held_right_after_it(app: Running) -> None:
    event_id, section_id = await on_sale_event(app.client)
    buyer = app.client
    page = await buyer.get(f"/events/{event_id}")
    pressed = await buyer.post(f"/events/{event_id}/hold",
                               data={"csrf_token": csrf_of(page), "section_id": section_id, "quantity": "3"})
    assert pressed.status_code == 303
    login = urlsplit(pressed.headers["location"])
    assert login.path == "/account/login"
    next_url = parse_qs(login.query)["next"][0]
    assert next_url.startswith(f"/events/{event_id}?choice=")

    # Anyone else's browser (and this one, altered) is shown the page; nothing is held for them.
    async with browser(app) as other:
        form = await other.get("/account/login")
        await other.post("/account/login", data={**ADMIN, "csrf_token": csrf_of(form)})
        elsewhere = await other.get(next_url)
        assert elsewhere.status_code == 200 and 'data-page="event"' in elsewhere.text
    altered = next_url.replace("choice=", "choice=x")
    logged_out = await buyer.get(next_url)
    assert logged_out.status_code == 200 and 'value="3"' in logged_out.text  # still picked, not held

    form = await buyer.get(login.path + "?" + login.query)
    assert f'value="{next_url}"' in form.text.replace("&amp;", "&")
    logged_in = await buyer.post("/account/login", data={**ADMIN, "csrf_token": csrf_of(form), "next": next_url})
    assert logged_in.status_code == 303 and logged_in.headers["location"] == next_url
    assert (await buyer.get(altered)).status_code == 200
    held = await buyer.get(next_url)
    assert held.status_code == 303 and held.headers["location"].startswith("/checkout/")
    # The same address again (a reload, the back button) finds the same hold, not a second one.
    again = await buyer.get(next_url)
    assert again.headers["location"] == held.headers["location"]

    token = (await buyer.post("/api/auth/login", json=ADMIN)).json()["access_token"]
    hold_id = held.headers["location"].rsplit("/", 1)[1]
    hold = await buyer.get(f"/api/holds/{hold_id}", headers={"Authorization": f"Bearer {token}"})
    assert hold.json()["status"] == "active" and len(hold.json()["items"]) == 3


async def test_after_login_only_same_site_addresses_are_followed(app: Running) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\t/evil.example", "/\\evil.example"):
        form = await app.client.get("/account/login")
        answer = await app.client.post("/account/login", data={**ADMIN, "csrf_token": csrf_of(form), "next": target})
        assert answer.status_code == 303 and answer.headers["location"] == "/", target
