"""Operator journeys: create an event that is on sale at once, then check its ticket in twice."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, log_in, pay
from tests.harness.server import Server


def test_create_an_event_sell_a_ticket_and_check_it_in_twice(page: Page, server: Server) -> None:
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_test_id("nav-admin-new-event").click()
    expect(page.locator("body")).to_have_attribute("data-page", "admin-event-new")
    page.get_by_test_id("event-name-input").fill("Browser Test Quartet")
    page.get_by_test_id("event-category").select_option("concert")
    page.get_by_test_id("event-venue").fill("Muziekgebouw")
    page.get_by_test_id("event-city").fill("Amsterdam")
    page.get_by_test_id("seating-reserved").check()
    expect(page.get_by_test_id("section-0-capacity")).to_be_hidden()
    page.get_by_test_id("section-0-name").fill("Stalls")
    page.get_by_test_id("section-0-price").fill("35")
    page.get_by_test_id("section-0-rows").fill("A-C")
    page.get_by_test_id("section-0-seats").fill("8")
    page.get_by_test_id("section-1-name").fill("Balcony")
    page.get_by_test_id("section-1-price").fill("20.50")
    page.get_by_test_id("section-1-rows").fill("A")
    page.get_by_test_id("section-1-seats").fill("6")
    page.get_by_test_id("create-event").click()

    expect(page.get_by_test_id("event-created")).to_be_visible()
    event_id = page.url.split("/events/")[1].split("?")[0]
    expect(page.get_by_test_id("event-name")).to_have_text("Browser Test Quartet")
    expect(page.locator("#seatmap .seat")).to_have_count(30)
    # On sale at once: the seats can be held and bought right away.
    page.locator("#seatmap .seat.available").first.click()
    page.get_by_test_id("hold-seats").click()
    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("hold-total")).to_have_text("€35.00")
    pay(page, "4242424242424242")
    expect(page.get_by_test_id("order-confirmed")).to_be_visible()
    code = (page.get_by_test_id("ticket-code").text_content() or "").strip()
    assert code

    page.get_by_test_id("nav-admin-checkin").click()
    expect(page.locator("body")).to_have_attribute("data-page", "admin-checkin")
    # The gate first: staff pick the event and name the gate.
    page.get_by_test_id("gate-event").select_option(event_id)
    page.get_by_test_id("gate-name").fill("North 3")
    page.get_by_test_id("gate-open").click()
    expect(page.get_by_test_id("gate-current")).to_contain_text("Browser Test Quartet")
    expect(page.get_by_test_id("gate-current-name")).to_have_text("North 3")
    # No camera in a headless browser: the page says so instead of failing silently.
    scan = page.get_by_test_id("scan-camera")
    if scan.is_enabled():
        scan.click()
    expect(page.get_by_test_id("scan-note")).to_contain_text(re.compile("camera", re.I))

    nonce = page.get_by_test_id("checkin-nonce").input_value()
    page.get_by_test_id("checkin-code").fill(code)
    page.get_by_test_id("checkin-submit").click()
    result = page.get_by_test_id("checkin-result")
    expect(result).to_have_attribute("data-outcome", "admitted")
    expect(result).to_have_attribute("data-retry", "false")
    expect(page.get_by_test_id("checkin-holder")).not_to_be_empty()
    expect(page.get_by_test_id("checkin-event")).to_have_text("Browser Test Quartet")
    expect(page.get_by_test_id("checkin-section")).to_have_text("Stalls")
    expect(page.get_by_test_id("checkin-seat")).to_have_text(re.compile(r"^A-\d+$"))
    assert float(page.get_by_test_id("checkin-seat").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 28
    expect(page.get_by_test_id("checkin-code")).to_be_focused()
    expect(page.get_by_test_id("checkin-code")).to_have_value("")
    expect(page.get_by_test_id("checkin-nonce")).not_to_have_value(nonce)  # a new scan, a new nonce

    # The same scan retried (its answer was lost: same code, same nonce) is the same admission.
    page.get_by_test_id("checkin-nonce").evaluate("(e, n) => { e.value = n; }", nonce)
    page.get_by_test_id("checkin-code").fill(code)
    page.get_by_test_id("checkin-submit").click()
    expect(result).to_have_attribute("data-retry", "true")
    expect(result).to_have_attribute("data-outcome", "admitted")

    # A new scan of the same ticket is a second use.
    page.get_by_test_id("checkin-code").fill(code)
    page.get_by_test_id("checkin-submit").click()
    expect(result).to_have_attribute("data-outcome", "used")
    expect(result).to_contain_text(re.compile("already", re.I))

    page.get_by_test_id("checkin-code").fill(code[:-4] + "AAAA")
    page.get_by_test_id("checkin-submit").click()
    expect(result).to_have_attribute("data-outcome", "invalid")

    # At another event's gate the ticket is refused as for another event.
    page.get_by_test_id("gate-change").click()
    other = page.locator(f"[data-testid=gate-event] option:not([value='']):not([value='{event_id}'])").first
    page.get_by_test_id("gate-event").select_option(other.get_attribute("value"))
    page.get_by_test_id("gate-open").click()
    page.get_by_test_id("checkin-code").fill(code)
    page.get_by_test_id("checkin-submit").click()
    expect(result).to_have_attribute("data-outcome", "wrong-event")


def test_general_admission_event_and_operator_pages_are_for_admins_only(page: Page, server: Server) -> None:
    page.goto("/admin/checkin")
    expect(page.locator("body")).to_have_attribute("data-page", "login")
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/admin/events/new")
    page.get_by_test_id("event-name-input").fill("Open Air Test Day")
    page.get_by_test_id("event-category").select_option("festival")
    page.get_by_test_id("event-venue").fill("Westerpark")
    page.get_by_test_id("event-city").fill("Amsterdam")
    page.get_by_test_id("section-0-name").fill("Field")
    page.get_by_test_id("section-0-price").fill("not a price")
    page.get_by_test_id("section-0-capacity").fill("500")
    page.get_by_test_id("create-event").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("price for Field")
    page.get_by_test_id("section-0-price").fill("59.99")
    page.get_by_test_id("create-event").click()
    expect(page.get_by_test_id("event-created")).to_be_visible()
    expect(page.get_by_test_id("section")).to_have_count(1)
    expect(page.get_by_test_id("section")).to_contain_text("€59.99")
