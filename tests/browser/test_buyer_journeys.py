"""Buyer journeys in a real browser: register, buy a reserved seat, general admission, a train segment."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import httpx
import pypdf
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD, create_user, log_in, open_event, pay, wait_for_code
from tests.harness.server import Server

DECLINED = "4000000000000002"
GOOD = "4242424242424242"


def test_register_verify_with_the_emailed_code_log_out_and_in(page: Page, server: Server) -> None:
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-page", "home")
    page.get_by_test_id("nav-register").click()
    page.get_by_test_id("register-name").fill("Ann Fan")
    page.get_by_test_id("register-email").fill("ann@example.com")
    page.get_by_test_id("register-password").fill(PASSWORD)
    page.get_by_test_id("register-submit").click()

    expect(page.locator("body")).to_have_attribute("data-page", "verify")
    expect(page.get_by_test_id("code-sent")).to_contain_text("ann@example.com")
    # Dev mode: the e-mail is readable on the dev mailbox page the verify page links to.
    mailbox_url = page.get_by_test_id("dev-mailbox-link").get_attribute("href")
    assert mailbox_url
    wait_for_code(server, "ann@example.com")
    mailbox = page.context.new_page()
    mailbox.goto(mailbox_url)
    text = mailbox.get_by_test_id("mail-text").first.inner_text()
    mailbox.close()
    code = re.search(r"\b(\d{6})\b", text)
    assert code

    page.get_by_test_id("verify-code").fill("000000" if code.group(1) != "000000" else "111111")
    page.get_by_test_id("verify-submit").click()
    expect(page.get_by_test_id("form-error")).to_be_visible()
    page.get_by_test_id("verify-code").fill(code.group(1))
    page.get_by_test_id("verify-submit").click()
    expect(page.get_by_test_id("welcome")).to_be_visible()
    expect(page.get_by_test_id("nav-user")).to_have_text("Ann Fan")

    page.get_by_test_id("nav-logout").click()
    expect(page.get_by_test_id("nav-login")).to_be_visible()
    page.get_by_test_id("nav-login").click()
    page.get_by_test_id("login-email").fill("ann@example.com")
    page.get_by_test_id("login-password").fill("not-the-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("wrong")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("nav-user")).to_have_text("Ann Fan")


def test_buy_a_reserved_seat_from_the_seat_map(page: Page, server: Server) -> None:
    create_user(server, "seat@example.com")
    # Not logged in yet: holding seats sends the buyer to log in, and the same seat is held right after.
    event_id = open_event(page, server, seating="reserved", category="sports")
    seat = page.locator("#seatmap .seat.available").first
    label = seat.get_attribute("data-label")
    seat.click()
    expect(page.get_by_test_id("selection-summary")).to_contain_text(f"1 seat picked: {label}")
    page.get_by_test_id("hold-seats").click()
    expect(page.locator("body")).to_have_attribute("data-page", "login")
    page.get_by_test_id("login-email").fill("seat@example.com")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("hold-items")).to_contain_text(str(label))

    # Keyboard: focus a seat, Space picks it.
    page.goto(f"/events/{event_id}")
    seat = page.locator("#seatmap .seat.available").first
    label, seat_id = seat.get_attribute("data-label"), seat.get_attribute("data-seat-id")
    seat.focus()
    page.keyboard.press("Space")
    expect(seat).to_have_attribute("aria-checked", "true")
    page.get_by_test_id("hold-seats").click()

    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("hold-items")).to_contain_text(str(label))
    expect(page.get_by_test_id("hold-countdown")).to_contain_text(re.compile(r"\d+:\d\d"))
    expect(page.get_by_test_id("test-cards")).to_contain_text(GOOD)
    pay(page, GOOD)

    expect(page.locator("body")).to_have_attribute("data-page", "order")
    expect(page.get_by_test_id("order-confirmed")).to_be_visible()
    expect(page.get_by_test_id("order-status")).to_have_text("confirmed")
    ticket = page.get_by_test_id("ticket")
    expect(ticket).to_have_count(1)
    expect(ticket.locator("svg")).to_be_visible()
    # The PDF is rendered moments after the ticket (the first one also starts the renderer's worker process).
    expect(ticket.get_by_test_id("ticket-pdf")).to_be_visible(timeout=60_000)
    pdf_href = ticket.get_by_test_id("ticket-pdf").get_attribute("href")
    assert pdf_href
    pdf = page.request.get(pdf_href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # The seat now shows as sold to everyone.
    page.goto(f"/events/{event_id}")
    expect(page.locator(f"#seat-{seat_id}")).to_have_class(re.compile("sold"))
    page.get_by_test_id("nav-orders").click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    expect(page.get_by_test_id("order-row")).to_contain_text("confirmed")


@pytest.mark.parametrize("context", [{"width": 390, "height": 844}], indirect=True, ids=["phone"])
def test_general_admission_decline_then_pay_then_cancel(page: Page, server: Server) -> None:
    create_user(server, "ga@example.com")
    log_in(page, "ga@example.com")
    open_event(page, server, seating="general", category="comedy")
    page.get_by_test_id("quantity-0").fill("2")
    page.get_by_test_id("hold-section-0").click()

    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("hold-items").locator("tbody tr")).to_have_count(2)
    pay(page, DECLINED)
    expect(page.get_by_test_id("checkout-error")).to_contain_text("declined")
    expect(page.get_by_test_id("hold-countdown")).to_be_visible()
    pay(page, "4000000000009995")
    expect(page.get_by_test_id("checkout-error")).to_contain_text("insufficient funds")
    pay(page, GOOD)

    expect(page.get_by_test_id("order-confirmed")).to_be_visible()
    expect(page.get_by_test_id("ticket")).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("cancel-order").click()
    expect(page.get_by_test_id("order-cancelled")).to_be_visible()
    expect(page.get_by_test_id("order-status")).to_have_text("cancelled")
    expect(page.get_by_test_id("tickets-void")).to_be_visible()


@pytest.mark.timeout(300)  # the whole journey, its PDF and its e-mail: minutes on a loaded machine
def test_buy_a_train_seat_for_a_segment_with_a_passenger_name_in_local_time(page: Page, server: Server) -> None:
    create_user(server, "rail@example.com")
    log_in(page, "rail@example.com")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    page.goto("/")
    page.get_by_test_id("train-origin").fill("KOTA")
    page.get_by_test_id("train-destination").fill("Vadodara Junction")
    page.get_by_test_id("train-date").fill(tomorrow)
    page.get_by_test_id("train-search-submit").click()

    expect(page.locator("body")).to_have_attribute("data-page", "trains")
    result = page.get_by_test_id("train-result").first
    expect(result.get_by_test_id("duration")).to_have_text(re.compile(r"\d+h \d\dm"))
    # The Rajdhani leaves Kota at 16:05 UTC: shown as the time on the station clock in India.
    expect(result.get_by_test_id("departs")).to_have_text("21:35 IST")
    result.get_by_test_id("choose-3A").click()

    expect(page.locator("body")).to_have_attribute("data-page", "run")
    expect(page.get_by_test_id("run-departs")).to_have_text("21:35 IST")
    expect(page.get_by_test_id("class-tab-3A")).to_have_attribute("aria-current", "page")
    seat = page.locator(".coach .seat.available").first
    label = str(seat.get_attribute("data-label"))
    seat.click()
    page.get_by_test_id("hold-seats").click()

    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("checkout-title")).to_contain_text("KOTA → BRC")
    expect(page.get_by_test_id("purchase-from")).to_contain_text("Kota Junction (KOTA)")
    expect(page.get_by_test_id("purchase-departs")).to_contain_text("21:35 IST")
    expect(page.get_by_test_id("purchase-to")).to_contain_text("Vadodara Junction (BRC)")
    coach, number = label.rsplit("-", 1)
    expect(page.get_by_test_id("hold-items")).to_contain_text(f"Coach {coach}, seat {number}")
    # A train ticket is personal: no name, no payment.
    expect(page.get_by_test_id("passenger-0")).to_have_attribute("required", "")
    page.get_by_test_id("passenger-0").fill("   ")
    pay(page, GOOD)
    expect(page.get_by_test_id("checkout-error")).to_contain_text("name of who travels")
    page.get_by_test_id("passenger-0").fill("Asha Rao")
    pay(page, GOOD)

    expect(page.get_by_test_id("order-confirmed")).to_be_visible()
    expect(page.get_by_test_id("order-items")).to_contain_text(f"Coach {coach}, seat {number}")
    expect(page.get_by_test_id("order-passenger")).to_have_text("Asha Rao")
    expect(page.get_by_test_id("purchase-departs")).to_contain_text("21:35 IST")
    expect(page.get_by_test_id("ticket")).to_have_count(1)
    expect(page.get_by_test_id("ticket-passenger")).to_have_text("Asha Rao")
    order_number = page.get_by_test_id("order-number").inner_text()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", order_number), order_number
    expect(page.get_by_test_id("ticket-pdf")).to_be_visible(timeout=60_000)  # rendered moments after the ticket
    pdf_href = page.get_by_test_id("ticket-pdf").get_attribute("href")
    assert pdf_href
    printed = pypdf.PdfReader(io.BytesIO(page.request.get(pdf_href).body())).pages[0].extract_text()
    for expected in ("Asha Rao", "Kota Junction (KOTA)", "21:35 IST", order_number, "photo ID"):
        assert expected in printed, expected

    # The confirmation e-mail is in the dev mailbox, with the number and the local time.
    page.goto("/dev/mailbox?to=rail@example.com")
    confirmation = page.get_by_test_id("mail").filter(has_text=order_number)
    for _ in range(30):  # the confirmation is sent moments after the last PDF is stored
        if confirmation.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(confirmation.get_by_test_id("mail-subject")).to_contain_text(f"order {order_number}")
    expect(confirmation.get_by_test_id("mail-text")).to_contain_text("21:35 IST")
    expect(confirmation.get_by_test_id("mail-text")).to_contain_text("passenger Asha Rao")

    # The buyer finds the order by the number as read out on the phone.
    page.goto("/orders")
    page.get_by_test_id("order-search-number").fill(f"{order_number[:4]}-{order_number[4:]}".lower())
    page.get_by_test_id("order-search-submit").click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    expect(page.get_by_test_id("order-row-number")).to_have_text(order_number)
    page.get_by_test_id("order-search-number").fill("ZZZZ-ZZZZ")
    page.get_by_test_id("order-search-submit").click()
    expect(page.get_by_test_id("no-orders")).to_be_visible()


def test_event_times_are_shown_where_the_event_happens(page: Page, server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        events = client.get("/api/events", params={"q": "AR Rahman", "limit": 5}).json()["items"]
    [rahman] = events
    assert rahman["timezone"] == "Asia/Kolkata" and rahman["starts_at"].endswith("T13:30:00Z")
    page.goto(f"/events/{rahman['id']}")
    expect(page.get_by_test_id("event-when")).to_contain_text("19:00 IST")  # 13:30 UTC in New Delhi
    expect(page.get_by_test_id("event-address")).to_contain_text("Lodhi Road")
    page.goto("/events?category=concert")
    card = page.locator(f"[data-testid=event-card][data-event-id='{rahman['id']}']")
    expect(card).to_contain_text("19:00 IST")


def test_a_seat_taken_meanwhile_leaves_the_picks_and_cannot_be_held(page: Page, server: Server) -> None:
    rival = create_user(server, "rival@example.com")
    create_user(server, "late@example.com")
    log_in(page, "late@example.com")
    event_id = open_event(page, server, seating="reserved", category="theatre")
    seat_id = page.locator("#seatmap .seat.available").nth(3).get_attribute("data-seat-id")
    seat = page.locator(f"#seat-{seat_id}")
    label = seat.get_attribute("data-label")
    seat.click()
    expect(seat).to_have_attribute("aria-checked", "true")

    with httpx.Client(base_url=server.url, timeout=10) as client:
        held = client.post("/api/holds", json={"event_id": event_id, "seat_ids": [seat_id]},
                           headers={"Authorization": f"Bearer {rival}"})
        assert held.status_code == 201, held.text
    # The map polls: the seat turns held and leaves this buyer's picks.
    expect(seat).to_have_class(re.compile("held"))
    expect(page.get_by_test_id("seat-notice")).to_contain_text(f"{label} was just taken")
    expect(page.get_by_test_id("hold-seats")).to_be_disabled()
