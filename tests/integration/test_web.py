"""The web front end in-process behind the real gateway: headers, CSRF, the cookie session and its refresh."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from boxoffice.cli import SERVICES, migrate_all
from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.settings import Settings
from boxoffice.web.handlers import SESSION_COOKIE
from tests.harness.app import Running, running

ADMIN = {"email": "admin@example.com", "password": "admin-password-2026"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path, demo=False)
    identity = IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"], access_token_ttl_seconds=1)
    names = ["identity", "catalog", "booking", "payments", "tickets", "web"]
    async with running(settings, names, configs={"identity": identity}) as app:
        yield app


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "every page with a form carries the CSRF token"
    return match.group(1)


async def log_in(client: httpx.AsyncClient) -> httpx.Response:
    page = await client.get("/account/login")
    return await client.post("/account/login", data={**ADMIN, "csrf_token": csrf_of(page), "next": "/orders"})


async def test_pages_are_served_with_security_headers_and_a_csrf_cookie(app: Running) -> None:
    page = await app.client.get("/account/login")
    assert page.status_code == 200
    assert 'data-page="login"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("bo_csrf=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    static = await app.client.get("/static/htmx.min.js")
    assert static.status_code == 200 and "max-age" in static.headers["cache-control"]


async def test_forms_without_our_token_or_from_another_site_are_refused(app: Running) -> None:
    page = await app.client.get("/account/login")
    missing = await app.client.post("/account/login", data=ADMIN)
    assert missing.status_code == 403 and 'data-page="error"' in missing.text
    forged = await app.client.post("/account/login", data={**ADMIN, "csrf_token": "nonce.0000"})
    assert forged.status_code == 403
    cross_site = await app.client.post("/account/login", data={**ADMIN, "csrf_token": csrf_of(page)},
                                       headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert SESSION_COOKIE not in app.client.cookies


async def test_login_sets_an_httponly_session_that_refreshes_itself(app: Running) -> None:
    response = await log_in(app.client)
    assert response.status_code == 303 and response.headers["location"] == "/orders"
    session = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in session and "SameSite=Lax" in session
    first_cookie = app.client.cookies[SESSION_COOKIE]
    assert (await app.client.get("/orders")).status_code == 200

    await asyncio.sleep(2.1)  # the access token (1 s here, at most 2 s: exp is whole seconds) expires
    # A page and its polls find the token expired at once: they share ONE refresh (identity treats a second
    # use of a refresh token as theft and would end the session).
    stale = {"Cookie": f"{SESSION_COOKIE}={first_cookie}"}
    pages = await asyncio.gather(*(app.client.get("/orders", headers=stale) for _ in range(3)))
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert all('data-page="orders"' in p.text for p in pages)
    renewed = {p.cookies.get(SESSION_COOKIE) for p in pages}
    assert len(renewed) == 1 and first_cookie not in renewed
    app.client.cookies.set(SESSION_COOKIE, renewed.pop() or "")
    again = await app.client.get("/orders")
    assert again.status_code == 200 and 'data-page="orders"' in again.text


async def test_pages_that_need_a_login_redirect_to_it_and_back(app: Running) -> None:
    response = await app.client.get("/orders")
    assert response.status_code == 303
    assert response.headers["location"] == "/account/login?next=%2Forders"
    admin = await app.client.get("/admin/checkin")
    assert admin.headers["location"].startswith("/account/login")


async def test_unknown_api_paths_still_answer_as_the_api_and_unknown_pages_as_pages(app: Running) -> None:
    api = await app.client.get("/api/nothing-here")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
    page = await app.client.get("/nothing-here")
    assert page.status_code == 404 and 'data-page="error"' in page.text
    assert (await app.client.get("/readyz")).json() == {"status": "ready"}


def test_web_keeps_no_database_so_migrate_skips_it(tmp_path: Path) -> None:
    assert "web" in SERVICES
    migrate_all(Settings(data_dir=tmp_path))
    assert not (tmp_path / "web.db").exists()
    assert (tmp_path / "identity.db").exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/events/%00"),
        ("GET", "/events/%01/availability"),
        ("GET", "/events/..%2F..%2Fapi%2Fstations"),
        ("GET", "/events/not-an-id"),
        ("POST", "/events/%00/hold"),
        ("GET", "/trains/runs/%01"),
        ("GET", "/trains/runs/%00/availability"),
        ("POST", "/trains/runs/%0a/hold"),
        ("GET", "/checkout/%00"),
        ("POST", "/checkout/%00/pay"),
        ("POST", "/checkout/%00/release"),
        ("GET", "/orders/%00"),
        ("GET", "/orders/%00/tickets"),
        ("GET", "/orders/%00/tickets/%00.pdf"),
        ("POST", "/orders/%00/cancel"),
    ],
)
async def test_an_address_whose_id_is_no_id_is_a_404_page_never_a_500(app: Running, method: str, path: str) -> None:
    await log_in(app.client)
    form = {"csrf_token": csrf_of(await app.client.get("/account/login"))} if method == "POST" else None
    response = await app.client.request(method, path, data=form)
    assert response.status_code == 404, response.text[:300]
    assert 'data-page="error"' in response.text and "text/html" in response.headers["content-type"]


async def test_an_id_of_nothing_is_the_services_404_as_a_page(app: Running) -> None:
    await log_in(app.client)
    for path in ("/events/0196b5c2-7d3e-7a10-8f00-1234567890ab", "/trains/runs/0196b5c2-7d3e-7a10-8f00-1234567890ab",
                 "/orders/0196b5c2-7d3e-7a10-8f00-1234567890ab", "/checkout/0196b5c2-7d3e-7a10-8f00-1234567890ab"):
        response = await app.client.get(path)
        assert response.status_code == 404 and 'data-page="error"' in response.text, path
