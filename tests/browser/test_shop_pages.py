"""The shop as a new buyer meets it: a choice that survives signing up, event search, event pages, API docs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, log_in, open_event, wait_for_code
from tests.harness.server import Server


def test_a_train_choice_survives_signing_up(page: Page, server: Server) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    page.goto(f"/trains?origin=KOTA&destination=BRC&date={tomorrow}")
    page.get_by_test_id("train-result").first.get_by_test_id("choose-2A").click()
    expect(page.locator("body")).to_have_attribute("data-page", "run")
    # AC 2 Tier: bays of lower and upper berths with side berths, each marked.
    expect(page.get_by_test_id("berth-legend")).to_have_text(
        "LB lower berth · UB upper berth · SL side lower berth · SU side upper berth")
    expect(page.locator(".coach .seat[data-label$='-1']").first).to_have_attribute("data-note", "LB")
    expect(page.locator(".coach .seat[data-label$='-5']").first).to_have_attribute(
        "aria-label", re.compile("side lower berth"))
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


def test_the_home_page_finds_events_by_artist_city_and_date(page: Page, server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        events = client.get("/api/events", params={"category": "concert", "limit": 100}).json()["items"]
        concert = events[0]
        artists = client.get(f"/api/lineups/{concert['id']}").json()["artists"]
    assert artists, "the demo gives every concert a line-up"
    artist = artists[-1]["name"]

    page.goto("/")
    page.get_by_test_id("event-search-q").fill(artist)
    page.get_by_test_id("event-search-submit").click()
    expect(page.locator("body")).to_have_attribute("data-page", "events")
    card = page.locator(f"[data-testid=event-card][data-event-id='{concert['id']}']")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("event-card-note")).to_have_text(f"With {artist}")

    # A city and a date window: only that city's events in it.
    day = concert["starts_at"][:10]
    page.goto("/")
    page.get_by_test_id("event-search-q").fill(concert["city"])
    page.get_by_test_id("event-search-from").fill(day)
    page.get_by_test_id("event-search-to").fill(day)
    page.get_by_test_id("event-search-submit").click()
    cards = page.get_by_test_id("event-card")
    expect(cards.first).to_be_visible()
    for i in range(cards.count()):
        expect(cards.nth(i)).to_contain_text(concert["city"])
        assert (cards.nth(i).locator("time").get_attribute("datetime") or "").startswith(day)
    expect(page.locator(f"[data-testid=event-card][data-event-id='{concert['id']}']")).to_be_visible()
    page.get_by_test_id("filter-q").fill("no such event anywhere")
    page.get_by_test_id("filter-submit").click()
    expect(page.get_by_test_id("no-events")).to_be_visible()


@pytest.mark.parametrize("context", [{"width": 390, "height": 844}], indirect=True, ids=["phone"])
def test_an_event_page_tells_a_buyer_what_they_need_on_a_phone(page: Page, server: Server) -> None:
    event_id = open_event(page, server, seating="reserved", category="theatre")
    image = page.get_by_test_id("event-image")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")  # the picture is there, not a broken link
    expect(page.get_by_test_id("event-description")).not_to_be_empty()
    expect(page.get_by_test_id("event-doors")).to_have_text(re.compile(r"^\d\d:\d\d [A-Z]{3,5}$"))  # the venue's zone
    expect(page.get_by_test_id("event-address")).not_to_be_empty()

    # Prices by section, in the seats' colours, before the map and its Hold button.
    legend = page.get_by_test_id("price-legend")
    expect(legend.locator("li")).to_have_count(2)
    expect(legend).to_contain_text(re.compile(r"Stalls [£€$₹][\d,]+\.\d\d"))
    hold = page.get_by_test_id("hold-seats")
    assert legend.bounding_box()["y"] < hold.bounding_box()["y"]  # type: ignore[index]
    first = page.locator("#seatmap .seat.available").first
    swatch = legend.locator(".swatch").first
    assert first.evaluate("el => getComputedStyle(el).fill") == swatch.evaluate(
        "el => getComputedStyle(el).backgroundColor")
    expect(page.locator("#seatmap .seat-no").first).to_have_text("1")

    # The map keeps seats big enough to tap: narrower than the map, the box scrolls sideways.
    wrap = page.locator(".seatmap-wrap")
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    box = first.bounding_box()
    assert box is not None and box["width"] >= 24
    far = page.locator("#seatmap .seat.available[data-label$='-20']").first
    far.scroll_into_view_if_needed()
    far.click()
    expect(page.get_by_test_id("selection-summary")).to_contain_text(re.compile(r"1 seat picked: \w-20 · [£€$₹]"))
    expect(hold).to_be_enabled()
    assert event_id


def test_an_operator_gives_an_event_its_picture_doors_address_and_description(page: Page, server: Server) -> None:
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/admin/events/new")
    starts = (page.get_by_test_id("event-starts-at").input_value())  # the form's default start
    doors = (datetime.fromisoformat(starts) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_test_id("event-name-input").fill("Details Night")
    page.get_by_test_id("event-venue").fill("Details Hall")  # a new venue: its zone is UTC, like the form's times
    page.get_by_test_id("event-city").fill("Amsterdam")
    page.get_by_test_id("event-doors-at").fill(doors)
    page.get_by_test_id("event-venue-address").fill("Lijnbaansgracht 234A, 1017 PH Amsterdam")
    page.get_by_test_id("event-image-url").fill("/static/events/comedy-3.svg")
    page.get_by_test_id("event-description-input").fill("Two sets of new songs; the support act is Ivy Lane.")
    page.get_by_test_id("section-0-name").fill("Floor")
    page.get_by_test_id("section-0-price").fill("30")
    page.get_by_test_id("section-0-capacity").fill("100")
    page.get_by_test_id("create-event").click()

    expect(page.get_by_test_id("event-created")).to_be_visible()
    expect(page.get_by_test_id("event-doors")).to_have_text(f"{doors[11:]} UTC")
    expect(page.get_by_test_id("event-address")).to_have_text("Lijnbaansgracht 234A, 1017 PH Amsterdam")
    expect(page.get_by_test_id("event-description")).to_contain_text("Ivy Lane")
    expect(page.get_by_test_id("event-image")).to_have_attribute("src", "/static/events/comedy-3.svg")
    # Found by what its description says.
    page.goto("/events?q=Ivy+Lane")
    expect(page.get_by_test_id("event-card")).to_have_count(1)
    expect(page.get_by_test_id("event-card")).to_contain_text("Details Night")
