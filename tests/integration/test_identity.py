"""Identity against real databases (SQLite and PostgreSQL), through the gateway, with the real workers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest

from boxoffice.identity import handlers
from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.settings import Settings
from tests.harness.app import FakeClock, Running, running, wait_for

PASSWORD = "a-long-ticket-password"


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    identity = IdentitySettings(
        database_url=db_url, admin_email="boss@example.com", admin_password="boss-password-2026"
    )
    async with running(Settings(data_dir=tmp_path), ["identity"], configs={"identity": identity}) as app:
        yield app


async def latest_code(client: httpx.AsyncClient, email: str) -> str:
    async def fetch() -> str | None:
        items = (await client.get("/api/dev/mailbox", params={"to": email})).json()["items"]
        return items[0]["text"] if items else None

    text = await wait_for(fetch)
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


async def register(client: httpx.AsyncClient, email: str = "fan@example.com") -> dict[str, object]:
    response = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Fan"})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def signed_up(client: httpx.AsyncClient, email: str = "fan@example.com") -> dict[str, str]:
    await register(client, email)
    code = await latest_code(client, email)
    response = await client.post("/api/auth/verify", json={"email": email, "code": code})
    assert response.status_code == 200, response.text
    return dict(response.json())


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"])


async def test_signup_verify_and_profile(app: Running) -> None:
    body = await register(app.client, "Ann@Example.com")
    assert body["email"] == "ann@example.com" and body["verified"] is False
    tokens = await signed_up_after_register(app.client, "ann@example.com")
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    me = await app.client.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {
        "id": body["id"],
        "email": "ann@example.com",
        "name": "Fan",
        "roles": ["customer"],
        "verified": True,
    }


async def signed_up_after_register(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    code = await latest_code(client, email)
    response = await client.post("/api/auth/verify", json={"email": email, "code": code})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_access_token_is_eddsa_and_verifies_with_the_published_jwks(app: Running) -> None:
    tokens = await signed_up(app.client)
    jwks = (await app.client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "EdDSA"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and "d" not in key
    claims = jwt.decode(tokens["access_token"], jwt.PyJWK(key), algorithms=["EdDSA"], audience="boxoffice")
    assert 900 <= claims["exp"] - claims["iat"] <= 901  # at least its TTL: ``exp`` is rounded up, ``iat`` down


async def test_tampered_or_missing_tokens_are_refused(app: Running) -> None:
    tokens = await signed_up(app.client)
    head, payload, signature = tokens["access_token"].split(".")
    forged = f"{head}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic abc"}):
        response = await app.client.get("/api/me", headers=headers)
        assert response.status_code == 401, headers
        assert problem_type(response).startswith("/problems/")


async def test_wrong_codes_lock_the_code_after_five_tries(app: Running) -> None:
    await register(app.client)
    code = await latest_code(app.client, "fan@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        response = await app.client.post("/api/auth/verify", json={"email": "fan@example.com", "code": wrong})
        assert response.status_code == 400 and problem_type(response) == "/problems/invalid-code"
    response = await app.client.post("/api/auth/verify", json={"email": "fan@example.com", "code": code})
    assert response.status_code == 400 and problem_type(response) == "/problems/code-locked"


async def test_code_expires_after_ten_minutes_and_resend_is_limited(app: Running) -> None:
    clock = FakeClock()
    app.service("identity").clock = clock
    await register(app.client)
    code = await latest_code(app.client, "fan@example.com")
    resend = await app.client.post("/api/auth/resend", json={"email": "fan@example.com"})
    assert resend.status_code == 429 and int(resend.headers["Retry-After"]) > 0
    clock.advance(minutes=10, seconds=1)
    response = await app.client.post("/api/auth/verify", json={"email": "fan@example.com", "code": code})
    assert response.status_code == 400 and problem_type(response) == "/problems/code-expired"
    assert (await app.client.post("/api/auth/resend", json={"email": "fan@example.com"})).status_code == 202

    async def new_code() -> str | None:
        # One read: the newest of exactly two messages is the code the resend sent.
        items = (await app.client.get("/api/dev/mailbox", params={"to": "fan@example.com"})).json()["items"]
        match = re.search(r"\b(\d{6})\b", items[0]["text"]) if len(items) == 2 else None
        return match.group(1) if match else None

    fresh = await wait_for(new_code)
    assert (
        await app.client.post("/api/auth/verify", json={"email": "fan@example.com", "code": fresh})
    ).status_code == 200


async def test_resend_for_unknown_address_says_nothing(app: Running) -> None:
    response = await app.client.post("/api/auth/resend", json={"email": "nobody@example.com"})
    assert response.status_code == 202
    await asyncio.sleep(0.2)
    assert (await app.client.get("/api/dev/mailbox", params={"to": "nobody@example.com"})).json()["items"] == []


async def test_login_rules(app: Running) -> None:
    await register(app.client)
    unverified = await app.client.post("/api/auth/login", json={"email": "fan@example.com", "password": PASSWORD})
    assert unverified.status_code == 403 and problem_type(unverified) == "/problems/not-verified"
    await signed_up_after_register(app.client, "fan@example.com")
    wrong_password = await app.client.post(
        "/api/auth/login", json={"email": "fan@example.com", "password": "nope-nope-nope"}
    )
    unknown_user = await app.client.post("/api/auth/login", json={"email": "ghost@example.com", "password": PASSWORD})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json()["detail"] == unknown_user.json()["detail"]  # says not which part was wrong
    ok = await app.client.post("/api/auth/login", json={"email": "FAN@example.com", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json()["access_token"]


async def test_repeated_failures_are_throttled(app: Running) -> None:
    await signed_up(app.client)
    for _ in range(5):
        response = await app.client.post(
            "/api/auth/login", json={"email": "fan@example.com", "password": "wrong-password-x"}
        )
        assert response.status_code == 401
    throttled = await app.client.post("/api/auth/login", json={"email": "fan@example.com", "password": PASSWORD})
    assert throttled.status_code == 429 and problem_type(throttled) == "/problems/login-throttled"
    assert int(throttled.headers["Retry-After"]) > 0
    clock = FakeClock()
    app.service("identity").clock = clock
    clock.advance(minutes=6)
    assert (
        await app.client.post("/api/auth/login", json={"email": "fan@example.com", "password": PASSWORD})
    ).status_code == 200


async def test_concurrent_wrong_logins_check_at_most_five_passwords(app: Running) -> None:
    await signed_up(app.client)
    wrong = {"email": "fan@example.com", "password": "wrong-password-x"}
    results = await asyncio.gather(*[app.client.post("/api/auth/login", json=wrong) for _ in range(12)])
    statuses = sorted(r.status_code for r in results)
    assert statuses == [401] * 5 + [429] * 7, statuses
    assert all(problem_type(r) == "/problems/login-throttled" for r in results if r.status_code == 429)
    # The limit holds for the right password too until the lock ends.
    right = await app.client.post("/api/auth/login", json={"email": "fan@example.com", "password": PASSWORD})
    assert right.status_code == 429


async def test_refresh_rotates_and_reuse_revokes_the_family(app: Running) -> None:
    first = await signed_up(app.client)
    second = await app.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reuse = await app.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and problem_type(reuse) == "/problems/invalid-refresh-token"
    # The thief's replay ended the family: the legitimate newer token no longer works either.
    after = await app.client.post("/api/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert after.status_code == 401


async def test_concurrent_refreshes_of_one_token_yield_one_pair(app: Running) -> None:
    tokens = await signed_up(app.client)
    results = await asyncio.gather(
        *[app.client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(4)]
    )
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401]


async def test_password_policy(app: Running) -> None:
    for password, reason in [
        ("short", "at least 10"),
        ("password1234", "commonly used"),
        ("fan@example.com", "e-mail"),
    ]:
        response = await app.client.post(
            "/api/auth/register", json={"email": "fan@example.com", "password": password, "name": "Fan"}
        )
        assert response.status_code == 422 and problem_type(response) == "/problems/weak-password"
        assert reason in response.json()["detail"]
    await register(app.client)
    again = await app.client.post(
        "/api/auth/register", json={"email": "fan@example.com", "password": PASSWORD, "name": "F"}
    )
    assert again.status_code == 409 and problem_type(again) == "/problems/email-taken"


async def test_admin_from_settings_exists_verified(app: Running) -> None:
    response = await app.client.post(
        "/api/auth/login", json={"email": "boss@example.com", "password": "boss-password-2026"}
    )
    assert response.status_code == 200
    me = await app.client.get("/api/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert "admin" in me.json()["roles"] and me.json()["verified"] is True


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 400, "/problems/malformed-json"),
        (
            b'{"email": "a@example.com", "password": "long-enough-pw", "name": "A", "role": "admin"}',
            422,
            "/problems/validation-error",
        ),
        (b'{"email": "not-an-email", "password": "long-enough-pw", "name": "A"}', 422, "/problems/validation-error"),
        (b"[]", 422, "/problems/validation-error"),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_changes_nothing(app: Running, body: bytes, status: int, kind: str) -> None:
    response = await app.client.post("/api/auth/register", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert problem_type(response) == kind
    assert "Traceback" not in response.text
    assert (await app.client.get("/api/dev/mailbox")).json()["items"] == []


async def test_too_large_body_is_413(app: Running) -> None:
    response = await app.client.post(
        "/api/auth/register", content=b"{" + b" " * 2_000_000 + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and problem_type(response) == "/problems/payload-too-large"


async def test_unknown_api_path_is_a_problem_404(app: Running) -> None:
    response = await app.client.get("/api/nothing-here")
    assert response.status_code == 404 and problem_type(response) == "/problems/not-found"


async def test_health_readiness_and_metrics(app: Running) -> None:
    assert (await app.client.get("/healthz")).json() == {"status": "ok"}
    assert (await app.client.get("/readyz")).json() == {"status": "ready"}
    await register(app.client)
    metrics = (await app.client.get("/metrics")).text
    assert (
        'boxoffice_http_requests_total{method="POST",route="/api/auth/register",service="identity",status="201"}'
        in metrics
    )
    assert "boxoffice_users_registered_total" in metrics


# Forgot password, change password, log out everywhere.
async def reset_code(client: httpx.AsyncClient, email: str) -> str:
    async def fetch() -> str | None:
        items = (await client.get("/api/dev/mailbox", params={"to": email})).json()["items"]
        resets = [m["text"] for m in items if "reset" in m["subject"].lower()]
        match = re.search(r"\b(\d{6})\b", resets[0]) if resets else None
        return match.group(1) if match else None

    code: str = await wait_for(fetch)
    return code


def login_body(password: str) -> dict[str, str]:
    return {"email": "fan@example.com", "password": password}


NEW_PASSWORD = "a-brand-new-ticket-secret"


async def test_forgot_password_sets_a_new_one_and_ends_every_session(app: Running) -> None:
    phone = await signed_up(app.client)
    laptop = (await app.client.post("/api/auth/login", json=login_body(PASSWORD))).json()
    asked = await app.client.post("/api/auth/password/forgot", json={"email": "FAN@example.com"})
    assert asked.status_code == 202
    code = await reset_code(app.client, "fan@example.com")
    reset = await app.client.post(
        "/api/auth/password/reset", json={"email": "fan@example.com", "code": code, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text
    assert (await app.client.get("/api/me", headers={"Authorization": f"Bearer {reset.json()['access_token']}"})).json()[
        "email"
    ] == "fan@example.com"
    assert (await app.client.post("/api/auth/login", json=login_body(PASSWORD))).status_code == 401
    assert (await app.client.post("/api/auth/login", json=login_body(NEW_PASSWORD))).status_code == 200
    for session in (phone, laptop):  # both devices were logged out
        refreshed = await app.client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 401 and problem_type(refreshed) == "/problems/invalid-refresh-token"
    again = await app.client.post(
        "/api/auth/password/reset", json={"email": "fan@example.com", "code": code, "new_password": NEW_PASSWORD}
    )
    assert again.status_code == 400 and problem_type(again) == "/problems/invalid-code"  # a code works once


async def test_reset_codes_are_checked_counted_and_expire(app: Running) -> None:
    clock = FakeClock()
    app.service("identity").clock = clock
    await signed_up(app.client)
    assert (await app.client.post("/api/auth/password/forgot", json={"email": "fan@example.com"})).status_code == 202
    code = await reset_code(app.client, "fan@example.com")
    too_soon = await app.client.post("/api/auth/password/forgot", json={"email": "fan@example.com"})
    assert too_soon.status_code == 429 and problem_type(too_soon) == "/problems/resend-too-soon"
    assert int(too_soon.headers["Retry-After"]) > 0
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    body = {"email": "fan@example.com", "code": wrong, "new_password": NEW_PASSWORD}
    refused = await app.client.post("/api/auth/password/reset", json=body)
    assert refused.status_code == 400 and problem_type(refused) == "/problems/invalid-code"
    clock.advance(minutes=10, seconds=1)
    expired = await app.client.post("/api/auth/password/reset", json={**body, "code": code})
    assert expired.status_code == 400 and problem_type(expired) == "/problems/code-expired"
    assert (await app.client.post("/api/auth/login", json=login_body(PASSWORD))).status_code == 200  # unchanged
    # A sign-up code never resets a password, and an unknown address learns nothing.
    unknown = await app.client.post("/api/auth/password/forgot", json={"email": "ghost@example.com"})
    assert unknown.status_code == 202
    weak = await app.client.post("/api/auth/password/reset", json={**body, "code": code, "new_password": "short"})
    assert weak.status_code == 422 and problem_type(weak) == "/problems/weak-password"


async def test_concurrent_wrong_reset_codes_check_at_most_five(app: Running) -> None:
    await signed_up(app.client)
    await app.client.post("/api/auth/password/forgot", json={"email": "fan@example.com"})
    code = await reset_code(app.client, "fan@example.com")
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 13)]
    results = await asyncio.gather(*[
        app.client.post(
            "/api/auth/password/reset", json={"email": "fan@example.com", "code": g, "new_password": NEW_PASSWORD}
        )
        for g in guesses
    ])
    kinds = sorted(problem_type(r) for r in results)
    assert kinds == ["/problems/code-locked"] * 7 + ["/problems/invalid-code"] * 5, kinds
    right = await app.client.post(
        "/api/auth/password/reset", json={"email": "fan@example.com", "code": code, "new_password": NEW_PASSWORD}
    )
    assert right.status_code == 400 and problem_type(right) == "/problems/code-locked"


async def test_change_password_and_log_out_everywhere(app: Running) -> None:
    phone = await signed_up(app.client)
    laptop = (await app.client.post("/api/auth/login", json=login_body(PASSWORD))).json()
    auth = {"Authorization": f"Bearer {laptop['access_token']}"}
    wrong = await app.client.post(
        "/api/me/password", json={"current_password": "not-my-password", "new_password": NEW_PASSWORD}, headers=auth
    )
    assert wrong.status_code == 403 and problem_type(wrong) == "/problems/wrong-password"
    anonymous = await app.client.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert anonymous.status_code == 401
    changed = await app.client.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=auth
    )
    assert changed.status_code == 204, changed.text
    assert (await app.client.post("/api/auth/login", json=login_body(PASSWORD))).status_code == 401
    for old in (phone, laptop):  # no session can renew itself with a token from before the change
        assert (await app.client.post("/api/auth/refresh", json={"refresh_token": old["refresh_token"]})).status_code == 401
    # Log out everywhere: every session, this one included, can no longer renew itself.
    first = (await app.client.post("/api/auth/login", json=login_body(NEW_PASSWORD))).json()
    second = (await app.client.post("/api/auth/login", json=login_body(NEW_PASSWORD))).json()
    assert (await app.client.post("/api/auth/logout-all")).status_code == 401
    ended = await app.client.post("/api/auth/logout-all", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert ended.status_code == 204
    for session in (first, second):
        refreshed = await app.client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 401


async def test_the_admin_is_made_once_when_processes_start_together(app: Running) -> None:
    """``run --processes`` starts identity's API and worker at once; both make sure the admin exists."""
    deps = app.service("identity").deps
    starts = [handlers.ensure_admin(deps, email="Chief@Example.com", password="chief-password-2026") for _ in range(4)]
    await asyncio.gather(*starts)
    login = await app.client.post("/api/auth/login", json={"email": "chief@example.com",
                                                          "password": "chief-password-2026"})
    assert login.status_code == 200, login.text
    claims = jwt.decode(login.json()["access_token"], options={"verify_signature": False})
    assert "admin" in claims["roles"]
