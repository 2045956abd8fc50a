"""Browser tests: Debian's chromium driven by Playwright against a real ``boxoffice run``.

Each module shares one server (journeys in it use their own users, so they do not conflict); each test gets
a fresh browser context, and the last page of every test is kept as a screenshot under test-artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.harness.server import Server, boxoffice_run

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-2026"
PASSWORD = "a-long-ticket-passphrase"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module: sync Playwright runs an event loop in this thread, which asyncio tests after it must not see."""
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (scripts/install-system-deps.sh installs it)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def start_server(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Iterator[Server]:
    full_env = {"BOXOFFICE_ADMIN_EMAIL": ADMIN_EMAIL, "BOXOFFICE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "BOXOFFICE_LOG_LEVEL": "WARNING", **env}
    with boxoffice_run(tmp_path_factory.mktemp("browser") / "var", env=full_env) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory)


@pytest.fixture
def context(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    viewport = getattr(request, "param", None) or {"width": 1280, "height": 900}
    context = browser.new_context(base_url=server.url, viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Error pages (a 401 for a wrong password) log "Failed to load resource"; that is the page doing its job.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if "/static/" in r.url and r.status >= 400
            else None)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    except Exception:  # the screenshot is a keepsake; a closed page must not fail the test
        pass
    # No script errors and no CSP violations on any page a journey visited.
    assert not errors, errors


# Users ----------------------------------------------------------------------------------------------------


def wait_for_code(server: Server, email: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while time.monotonic() < deadline:
            items = client.get("/api/dev/mailbox", params={"to": email}).json()["items"]
            if items:
                match = re.search(r"\b(\d{6})\b", items[0]["text"])
                assert match
                return match.group(1)
            time.sleep(0.1)
    raise TimeoutError(f"no code for {email} in the dev mailbox")


def create_user(server: Server, email: str, name: str = "Test Buyer") -> str:
    """A verified buyer, made over the API (the registration journey itself has its own test)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": name})
        assert response.status_code == 201, response.text
        code = wait_for_code(server, email)
        tokens = client.post("/api/auth/verify", json={"email": email, "code": code})
        assert tokens.status_code == 200, tokens.text
        return str(tokens.json()["access_token"])


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/account/login")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("nav-logout")).to_be_visible()


def pay(page: Page, card: str) -> None:
    page.get_by_test_id("card-number").fill(card)
    page.get_by_test_id("card-cvc").fill("123")
    page.get_by_test_id("pay").click()


def open_event(page: Page, server: Server, *, seating: str, category: str | None = None) -> str:
    """Opens the first upcoming event with this seating from the events list; its id."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        params = {"limit": 100, **({"category": category} if category else {})}
        events = client.get("/api/events", params=params).json()["items"]
    event = next(e for e in events if e["seating"] == seating and e["available"] > 10)
    page.goto(f"/events?category={event['category']}")
    page.locator(f"[data-testid=event-card][data-event-id='{event['id']}'] a").click()
    expect(page.locator("body")).to_have_attribute("data-page", "event")
    return str(event["id"])
