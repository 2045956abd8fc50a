"""The hold runs out at checkout (holds last 3 seconds on this server): the buyer is told, nothing is charged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import create_user, log_in, open_event, pay, start_server
from tests.harness.server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, BOXOFFICE_BOOKING_HOLD_TTL_SECONDS="3")


def test_an_expired_hold_cannot_be_paid_and_says_so(page: Page, server: Server) -> None:
    create_user(server, "slow@example.com")
    log_in(page, "slow@example.com")
    open_event(page, server, seating="general")
    page.get_by_test_id("hold-section-0").click()
    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    # A declined card first: the order exists, waiting for a payment that must beat the hold's expiry.
    pay(page, "4000000000000002")
    expect(page.get_by_test_id("checkout-error")).to_contain_text("declined")
    page.get_by_test_id("card-number").fill("4242424242424242")
    page.get_by_test_id("card-cvc").fill("123")

    # The countdown reaches zero in the page: the expiry message shows and the form can no longer be sent.
    expect(page.get_by_test_id("hold-expired")).to_be_visible()
    expect(page.get_by_test_id("hold-countdown")).to_be_hidden()
    expect(page.get_by_test_id("pay")).to_be_disabled()

    # A payment that reaches the server anyway (a slow network, a device clock behind) is refused there too.
    page.evaluate("document.querySelectorAll('form.payment [disabled]').forEach(e => e.disabled = false)")
    page.get_by_test_id("pay").click()
    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("hold-expired")).to_be_visible()
    expect(page.get_by_test_id("payment-form")).to_have_count(0)

    page.get_by_test_id("choose-again").click()
    expect(page.locator("body")).to_have_attribute("data-page", "event")
    page.get_by_test_id("nav-orders").click()
    expect(page.locator("[data-testid=order-row] .status")).to_have_text("expired")
