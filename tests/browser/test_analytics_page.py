"""The operator's live sales page: charts that change while tickets are bought, up to the sold-out moment.

The server's windows are 5 s long (``BOXOFFICE_ANALYTICS_WINDOW_SECONDS``) with a 1 s bound, so a bought
ticket reaches the charts in seconds; the page updates from the results stream without being reloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, log_in, start_server
from tests.harness.server import Server

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory, BOXOFFICE_ANALYTICS_WINDOW_SECONDS="5",
                            BOXOFFICE_ANALYTICS_MAX_OUT_OF_ORDER_SECONDS="1")


def small_event(server: Server, capacity: int) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        token = client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        starts = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        response = client.post("/api/events", headers={"Authorization": f"Bearer {token['access_token']}"}, json={
            "name": "Analytics Live Night", "category": "concert", "venue": "Paradiso", "city": "Amsterdam",
            "starts_at": starts, "currency": "EUR", "sections": [{"name": "Floor", "price": 3000, "capacity": capacity}],
        })
        assert response.status_code == 201, response.text
        return dict(response.json())


def buy(server: Server, token: str, event: dict[str, Any], quantity: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as client:
        hold = client.post("/api/holds", json={"event_id": event["id"], "section_id": event["sections"][0]["id"],
                                               "quantity": quantity})
        assert hold.status_code == 201, hold.text
        order = client.post("/api/orders", json={"hold_id": hold.json()["id"]})
        assert order.status_code == 201, order.text
        paid = client.post(f"/api/orders/{order.json()['id']}/payment", json=CARD,
                           headers={"Idempotency-Key": hold.json()["id"]})
        assert paid.status_code == 200, paid.text


def test_the_charts_follow_a_sale_live_to_the_sold_out_moment(page: Page, server: Server) -> None:
    event = small_event(server, capacity=4)
    buyer = create_user(server, "analytics-buyer@example.com")
    log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_test_id("nav-admin-analytics").click()
    expect(page.locator("body")).to_have_attribute("data-page", "admin-analytics")
    # The catalog announced the event to analytics; the picker offers it.
    expect(page.get_by_test_id("analytics-event").locator(f"option[value='{event['id']}']")).to_have_count(1)
    page.get_by_test_id("analytics-event").select_option(event["id"])
    page.get_by_test_id("analytics-show").click()
    expect(page.get_by_test_id("analytics-empty")).to_be_visible()
    expect(page.get_by_test_id("analytics-live-status")).to_contain_text("Live")

    buy(server, buyer, event, 1)
    charts = page.get_by_test_id("analytics-chart-set")
    expect(charts).to_be_visible(timeout=20_000)  # no reload: the stream brought it
    expect(page.get_by_test_id("stat-sold")).to_have_text("1 / 4")
    expect(page.get_by_test_id("stat-sell-through")).to_have_text("25.0%")
    expect(page.get_by_test_id("chart-tickets").get_by_test_id("bar")).to_have_count(1)
    expect(page.get_by_test_id("stat-sold-out")).to_have_text("not yet")
    expect(page.get_by_test_id("sold-out-marker")).to_have_count(0)

    buy(server, buyer, event, 3)
    expect(page.get_by_test_id("stat-sold")).to_have_text("4 / 4", timeout=20_000)
    expect(page.get_by_test_id("stat-sell-through")).to_have_text("100.0%")
    expect(page.get_by_test_id("stat-sold-out")).not_to_have_text("not yet")
    expect(page.get_by_test_id("chart-tickets").get_by_test_id("sold-out-marker")).to_have_count(1)
    expect(page.get_by_test_id("sell-through-line")).to_have_count(1)
    expect(page.get_by_test_id("chart-revenue").get_by_test_id("bar").last).to_have_attribute(
        "height", re.compile(r"^[1-9]"))
    assert page.get_by_test_id("analytics-live").get_attribute("data-updates") not in (None, "0")


def test_the_analytics_page_is_for_operators_only(page: Page, server: Server) -> None:
    page.goto("/admin/analytics")
    expect(page.locator("body")).to_have_attribute("data-page", "login")
    create_user(server, "curious-buyer@example.com")
    log_in(page, "curious-buyer@example.com")
    page.goto("/admin/analytics")
    expect(page.locator("h1")).to_have_text("Not allowed")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/admin/analytics/stream").status_code in (303, 307)
