"""The waiting room as a buyer and an organiser see it: join the line, wait, get one's turn, buy."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, log_in
from tests.harness.server import Server


def queued_sale(server: Server, *, opens_in: float) -> str:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        login = client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        on_sale = (datetime.now(UTC) + timedelta(seconds=opens_in)).replace(microsecond=0)
        body = {
            "name": "Reunion Tour", "category": "concert", "venue": "Hydro", "city": "Glasgow", "currency": "GBP",
            "starts_at": (on_sale + timedelta(days=40)).isoformat(),
            "sections": [{"name": "Floor", "price": 8500, "capacity": 200}],
            "queue": {"on_sale_at": on_sale.isoformat(), "admit_per_minute": 600},
        }
        created = client.post("/api/events", json=body, headers=admin)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def test_a_buyer_waits_in_line_gets_a_turn_and_holds_tickets(page: Page, server: Server) -> None:
    event_id = queued_sale(server, opens_in=4)
    create_user(server, "liner@example.com", "Lee Liner")
    log_in(page, "liner@example.com")
    page.goto(f"/events/{event_id}")
    expect(page.get_by_test_id("queue-banner")).to_contain_text("waiting room")

    # Straight to "Get tickets" before one's turn: the shop sends the buyer to the line instead.
    page.get_by_test_id("hold-section-0").click()
    expect(page.locator("body")).to_have_attribute("data-page", "queue")
    page.get_by_test_id("join-queue").click()
    expect(page.get_by_test_id("queue-state")).to_have_text("You're in the line")
    page.reload()  # the place belongs to the account: a reload keeps it
    expect(page.get_by_test_id("queue-state")).to_have_text(re.compile("You're in the line|It's your turn"))

    expect(page.get_by_test_id("queue-state")).to_have_text("It's your turn", timeout=20_000)
    page.get_by_test_id("to-tickets").click()
    expect(page.locator("body")).to_have_attribute("data-page", "event")
    page.get_by_test_id("quantity-0").fill("2")
    page.get_by_test_id("hold-section-0").click()
    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
    expect(page.get_by_test_id("hold-total")).to_have_text("£170.00")


def test_the_organiser_watches_the_line(page: Page, server: Server) -> None:
    event_id = queued_sale(server, opens_in=600)
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"/admin/queue/{event_id}")
    expect(page.get_by_test_id("line-status")).to_have_text("scheduled")
    token = create_user(server, "early@example.com", "Early Bird")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        joined = client.post(f"/api/queue/{event_id}/join", headers={"Authorization": f"Bearer {token}"})
        assert joined.status_code == 200, joined.text
    expect(page.get_by_test_id("line-waiting")).to_have_text("1", timeout=10_000)  # the page updates itself


def test_the_waiting_page_fits_a_phone(page: Page, server: Server) -> None:
    event_id = queued_sale(server, opens_in=600)
    create_user(server, "phone@example.com", "Pat Phone")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, "phone@example.com")
    page.goto(f"/queue/{event_id}")
    page.get_by_test_id("join-queue").click()
    expect(page.get_by_test_id("queue-state")).to_have_text("You're in the line")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def queued_run(server: Server, *, opens_in: float) -> str:
    """A demo train's run tomorrow, its booking day queued behind the waiting room."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        login = client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        found = client.get("/api/trains/search", params={"origin": "KOTA", "destination": "BRC", "date": tomorrow})
        run_id = str(found.json()["items"][0]["run_id"])
        on_sale = (datetime.now(UTC) + timedelta(seconds=opens_in)).replace(microsecond=0)
        queued = client.put(f"/api/trains/runs/{run_id}/queue", headers=admin,
                            json={"on_sale_at": on_sale.isoformat(), "admit_per_minute": 600})
        assert queued.status_code == 200, queued.text
        return run_id


def test_a_train_booking_day_sends_the_buyer_through_the_line_to_a_seat(page: Page, server: Server) -> None:
    run_id = queued_run(server, opens_in=4)
    create_user(server, "rail-liner@example.com", "Rae Rail")
    log_in(page, "rail-liner@example.com")
    page.goto(f"/trains/runs/{run_id}")
    expect(page.get_by_test_id("queue-banner")).to_contain_text("waiting room")

    # A seat picked before one's turn: the train page sends the buyer to the line instead.
    page.locator(".coach .seat.available").first.click()
    page.get_by_test_id("hold-seats").click()
    expect(page.locator("body")).to_have_attribute("data-page", "queue")
    expect(page.get_by_test_id("event-name")).not_to_be_empty()
    page.get_by_test_id("join-queue").click()
    expect(page.get_by_test_id("queue-state")).to_have_text(re.compile("You're in the line|It's your turn"))

    expect(page.get_by_test_id("queue-state")).to_have_text("It's your turn", timeout=20_000)
    page.get_by_test_id("to-tickets").click()
    expect(page.locator("body")).to_have_attribute("data-page", "run")
    page.locator(".coach .seat.available").first.click()
    page.get_by_test_id("hold-seats").click()
    expect(page.locator("body")).to_have_attribute("data-page", "checkout")
