"""The shop as a new buyer meets it: a choice that survives signing up, event search, event pages, API docs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import PASSWORD, wait_for_code
from tests.harness.server import Server


def test_a_train_choice_survives_signing_up(page: Page, server: Server) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    page.goto(f"/trains?origin=KOTA&destination=BRC&date={tomorrow}")
    page.get_by_test_id("train-result").first.get_by_test_id("choose-2A").click()
    expect(page.locator("body")).to_have_attribute("data-page", "run")
    seats = page.locator(".coach .seat.available")
    labels = [seats.nth(i).get_attribute("data-label") for i in (0, 1)]
    seats.nth(0).click()
    seats.nth(1).click()
    expect(page.get_by_test_id("selection-summary")).to_contain_text("2 seats picked")
    page.get_by_test_id("hold-seats").click()

    # Not a customer yet: log in, or create an account, and type the e-mailed code; then the seats are held.
    expect(page.locator("body")).to_have_attribute("data-page", "login")
    page.get_by_test_id("register-link").click()
    page.get_by_test_id("register-name").fill("Ravi Traveller")
    page.get_by_test_id("register-email").fill("ravi@example.com")
    page.get_by_test_id("register-password").fill(PASSWORD)
    page.get_by_test_id("register-submit").click()
    expect(page.locator("body")).to_have_attribute("data-page", "verify")
    page.get_by_test_id("verify-code").fill(wait_for_code(server, "ravi@example.com"))
    page.get_by_test_id("verify-submit").click()

    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("checkout-title")).to_contain_text("KOTA → BRC")
    for label in labels:
        expect(page.get_by_test_id("hold-items")).to_contain_text(str(label))
    expect(page.get_by_test_id("nav-user")).to_have_text("Ravi Traveller")


def test_api_docs_work_without_internet(page: Page, server: Server) -> None:
    leaving: list[str] = []

    def loopback_only(route: Route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            leaving.append(route.request.url)
            route.abort()

    page.route("**/*", loopback_only)
    page.goto("/api/docs")
    expect(page.get_by_role("heading", name="boxoffice API docs")).to_be_visible()
    page.get_by_role("link", name="catalog", exact=True).click()
    expect(page).to_have_url(re.compile("/api/catalog/docs$"))
    # Swagger UI itself drew the operations: its script and styles came from this server.
    expect(page.locator(".opblock-summary-path", has_text="/api/events").first).to_be_visible()
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("boxoffice catalog")
    assert leaving == []
