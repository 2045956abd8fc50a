"""HTTP edges every service shares: body limits for chunked bodies, security headers, unexpected errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Running]:
    async with running(Settings(data_dir=tmp_path, demo=False, max_body_bytes=1024), ["identity", "web"]) as app:
        yield app


async def chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


async def test_a_chunked_body_over_the_limit_is_413_not_400(app: Running) -> None:
    # No Content-Length: the limit is only found while the body streams in.
    response = await app.client.post(
        "/api/auth/register", content=chunks(4096), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    small = await app.client.post("/api/auth/register", content=chunks(100), headers={"Content-Type": "application/json"})
    assert small.status_code in (400, 422), small.text  # within the limit: judged on its content


async def test_api_answers_are_never_sniffed_and_hsts_is_for_production_only(app: Running) -> None:
    for response in (await app.client.get("/api/me"), await app.client.get("/.well-known/jwks.json")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in response.headers  # dev mode speaks plain HTTP


async def test_production_responses_carry_hsts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mode="production", secret_key="s" * 40, mail_backend="smtp", demo=False)
    async with running(settings, ["identity"]) as app:
        response = await app.client.get("/.well-known/jwks.json")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_unexpected_error_page_carries_the_security_headers_of_every_page(app: Running) -> None:
    web = app.runtime.apps["web"]

    async def broken() -> None:
        raise RuntimeError("a defect the page did not expect")

    web.add_api_route("/test-broken-page", broken)  # type: ignore[attr-defined]
    page = await app.client.get("/test-broken-page")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "a defect" not in page.text and "Traceback" not in page.text
    normal = await app.client.get("/account/login")
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"):
        if header in normal.headers:
            assert page.headers.get(header) == normal.headers[header], header
    assert "content-security-policy" in page.headers


async def test_an_unexpected_api_error_is_problem_json_with_the_request_id(app: Running) -> None:
    identity = app.runtime.apps["identity"]

    async def broken() -> None:
        raise RuntimeError("secret internals")

    identity.add_api_route("/api/auth/test-broken", broken)  # type: ignore[attr-defined]
    response = await app.client.get("/api/auth/test-broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get("x-request-id")
