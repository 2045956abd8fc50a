"""The clickstream tracker in Debian's chromium against a real ``boxoffice run``, checked through the query API.

Each test finds its own events by the browser context's anonymous id (a fresh context has a fresh one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, log_in, start_server
from tests.harness.server import Server

pytestmark = pytest.mark.timeout(180)

NO_TRACKING = {
    "dnt": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});",
    "gpc": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});",
}


@pytest.fixture(scope="module")
def admin_api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        tokens = client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        yield client


def anonymous_id(page: Page) -> str:
    value = page.evaluate("localStorage.getItem('bo_aid')")
    assert value, "the tracker set no anonymous id"
    return str(value)


def events_of(api: httpx.Client, anonymous: str) -> list[dict[str, Any]]:
    response = api.get("/api/tracking/events", params={"anonymous_id": anonymous, "limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return list(reversed(items))  # oldest first


def wait_for_events(api: httpx.Client, anonymous: str, wanted: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = events_of(api, anonymous)
        if wanted(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"events never arrived as expected; got {[(e['type'], e['name']) for e in events]}")
        time.sleep(0.2)


def wait_until(page: Page, expression: str, timeout: float = 20.0) -> None:
    """Polls ``expression`` in the page until it is true.

    Not ``page.wait_for_function``: when its first try is false it polls through ``new Function``, which the
    shop's Content Security Policy (no 'unsafe-eval') refuses, and the refusal is logged as a page error.
    ``page.evaluate`` runs through the DevTools protocol, outside the page's CSP.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(100)


def test_e2e_browse_the_shop_then_find_the_events_through_the_query_api(
    page: Page, server: Server, admin_api: httpx.Client
) -> None:
    """Navigation, a click, a form submit and a page hide each arrive, enriched, with the user once logged in."""
    page.goto("/")
    anonymous = anonymous_id(page)
    page.get_by_test_id("nav-events").click()
    expect(page.locator("body")).to_have_attribute("data-page", "events")
    page.get_by_test_id("filter-q").fill("secret search words")
    page.get_by_test_id("filter-submit").click()
    page.wait_for_url("**/events?*q=*")
    page.goto("/events")  # the search may have found nothing; the full list has cards
    card = page.locator("[data-testid=event-card]").first
    event_id = card.get_attribute("data-event-id")
    card.locator("a").click()
    expect(page.locator("body")).to_have_attribute("data-page", "event")
    page.evaluate("boxoffice.track('hide-test', {step: 'last'})")
    page.close(run_before_unload=True)  # pagehide: only sendBeacon can carry the last event now

    events = wait_for_events(admin_api, anonymous, lambda evs: any(e["name"] == "hide-test" for e in evs))
    kinds = [(e["type"], e["url"].split("://", 1)[1].split("/", 1)[1]) for e in events]
    assert ("page_view", "") in kinds and ("page_view", "events") in kinds
    assert ("page_view", f"events/{event_id}") in kinds
    clicks = [e for e in events if e["type"] == "click"]
    assert any(c["element"]["track"] == "" and c["name"] == "Events" for c in clicks), clicks
    submit = next(e for e in events if e["type"] == "form_submit")
    assert submit["props"]["fields"] == ["q", "category", "from", "to"]
    assert "secret" not in str(submit)  # field names only, never what was typed
    view = next(e for e in events if e["url"].endswith(f"/events/{event_id}"))
    assert view["subject"] == {"type": "event", "id": event_id}
    assert view["referrer"].endswith("/events")
    assert view["browser"] == "HeadlessChrome" and view["is_bot"] is True  # headless browsers are bots to us
    hidden = next(e for e in events if e["name"] == "hide-test")
    assert hidden["props"] == {"step": "last"} and hidden["type"] == "custom"
    assert len({e["session_id"] for e in events}) == 1 and all(e["user_id"] is None for e in events)

    pages = admin_api.get("/api/tracking/pages").json()["items"]
    assert any(p["path"] == f"/events/{event_id}" for p in pages)


def test_a_logged_in_visitor_is_tracked_with_their_user_id(
    context: BrowserContext, server: Server, admin_api: httpx.Client
) -> None:
    page = context.new_page()
    email = "tracked@example.com"
    create_user(server, email)
    log_in(page, email)
    anonymous = anonymous_id(page)
    page.get_by_test_id("nav-trains").click()
    expect(page.locator("body")).to_have_attribute("data-page", "trains")
    page.evaluate("boxoffice.flush()")
    events = wait_for_events(admin_api, anonymous, lambda evs: any(e["user_id"] for e in evs))
    user_ids = {e["user_id"] for e in events if e["user_id"]}
    assert len(user_ids) == 1
    by_user = admin_api.get("/api/tracking/events", params={"user_id": user_ids.pop()}).json()["items"]
    assert by_user and all(e["anonymous_id"] == anonymous for e in by_user)


def test_a_batch_sent_while_the_collector_is_unreachable_arrives_after_it_returns(
    page: Page, admin_api: httpx.Client
) -> None:
    page.route("**/collect", lambda route: route.abort())
    page.goto("/trains")
    anonymous = anonymous_id(page)
    page.evaluate("boxoffice.track('while-down', {n: 1}); boxoffice.flush()")
    wait_until(page, "JSON.parse(localStorage.getItem('bo_queue') || '[]').length >= 2")
    assert events_of(admin_api, anonymous) == []
    page.unroute("**/collect")
    events = wait_for_events(admin_api, anonymous, lambda evs: any(e["name"] == "while-down" for e in evs), 40)
    assert [e["type"] for e in events][:2] == ["page_view", "custom"]
    wait_until(page, "JSON.parse(localStorage.getItem('bo_queue') || '[]').length === 0")


@pytest.mark.parametrize("signal", ["dnt", "gpc"])
def test_do_not_track_and_global_privacy_control_send_nothing(browser: Browser, server: Server, signal: str) -> None:
    context = browser.new_context(base_url=server.url)
    context.add_init_script(NO_TRACKING[signal])
    sent: list[str] = []
    context.on("request", lambda request: sent.append(request.url) if "/collect" in request.url else None)
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_test_id("nav-events").click()
        expect(page.locator("body")).to_have_attribute("data-page", "events")
        page.evaluate("boxoffice.track('should-not-go', {}); boxoffice.flush()")
        expect(page.get_by_test_id("footer-consent")).to_be_disabled()
        expect(page.get_by_test_id("footer-consent")).not_to_be_checked()
        page.goto("/trains")
        time.sleep(1.0)
        assert sent == []
        assert page.evaluate("[localStorage.getItem('bo_aid'), localStorage.getItem('bo_queue')]") == [None, None]
    finally:
        context.close()


def test_the_footer_switch_withdraws_and_gives_consent(page: Page, admin_api: httpx.Client) -> None:
    page.goto("/")
    anonymous = anonymous_id(page)
    switch = page.get_by_test_id("footer-consent")
    expect(switch).to_be_checked()
    switch.uncheck()
    page.evaluate("boxoffice.track('after-withdrawal', {}); boxoffice.flush()")
    page.goto("/events")
    page.evaluate("boxoffice.flush()")
    page.get_by_test_id("footer-consent").check()  # consent again: this page's view is recorded at once
    page.evaluate("boxoffice.track('after-consent', {}); boxoffice.flush()")
    events = wait_for_events(admin_api, anonymous, lambda evs: any(e["name"] == "after-consent" for e in evs))
    assert not any(e["name"] == "after-withdrawal" for e in events)
    assert sum(1 for e in events if e["type"] == "page_view" and e["url"].endswith("/events")) == 1


@pytest.fixture(scope="module")
def consent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, BOXOFFICE_WEB_TRACKER_REQUIRE_CONSENT="1")


def test_where_consent_is_required_nothing_is_sent_before_it(browser: Browser, consent_server: Server) -> None:
    context = browser.new_context(base_url=consent_server.url)
    sent: list[str] = []
    context.on("request", lambda request: sent.append(request.url) if "/collect" in request.url else None)
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_test_id("nav-events").click()
        expect(page.locator("body")).to_have_attribute("data-page", "events")
        page.evaluate("boxoffice.track('too-early', {}); boxoffice.flush()")
        time.sleep(0.5)
        assert sent == []
        expect(page.get_by_test_id("footer-consent")).not_to_be_checked()
        page.get_by_test_id("footer-consent").check()
        page.evaluate("boxoffice.flush()")
        wait_until(page, "localStorage.getItem('bo_aid') !== null")
        deadline = time.monotonic() + 10
        while not sent and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(sent) == 1
    finally:
        context.close()


def test_admins_inspect_every_database_on_one_page(page: Page, server: Server) -> None:
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_test_id("nav-admin-db").click()
    expect(page.locator("body")).to_have_attribute("data-page", "admin-db")
    expect(page.locator("[data-testid=db-service][data-service=tracking]")).to_be_visible()
    services = page.locator("[data-testid=db-service]")
    names = [services.nth(i).get_attribute("data-service") for i in range(services.count())]
    assert {"identity", "catalog", "booking", "payments", "tickets", "tracking"} <= set(names)
    assert "web" not in names  # web keeps no data
    users = page.locator("[data-service=identity] [data-table=users]")
    expect(users.locator("td.num")).not_to_have_text("0")

    page.get_by_test_id("db-console-service").select_option("tracking")
    page.get_by_test_id("db-console-sql").fill("SELECT type, count(*) AS n FROM tracking_events GROUP BY type")
    page.get_by_test_id("db-console-run").click()
    expect(page.get_by_test_id("db-console-result")).to_contain_text("page_view")

    page.get_by_test_id("db-console-service").select_option("identity")
    page.get_by_test_id("db-console-sql").fill("DELETE FROM users")
    page.get_by_test_id("db-console-run").click()
    expect(page.get_by_test_id("db-console-error")).to_contain_text("refused")

    page.goto("/admin/db/identity/users?where_column=email&where_value=admin@")
    rows = page.get_by_test_id("db-rows")
    expect(rows).to_contain_text(ADMIN_EMAIL)
    expect(rows).to_contain_text("••••••")
    expect(rows).not_to_contain_text("$argon2")


def test_customers_cannot_open_the_database_page(page: Page, server: Server) -> None:
    email = "curious@example.com"
    create_user(server, email)
    log_in(page, email)
    response = page.goto("/admin/db")
    assert response is not None and response.status == 403
