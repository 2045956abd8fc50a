"""What the order page's ticket list and the footer tell a buyer (the templates rendered alone)."""

from __future__ import annotations

from boxoffice.web.pages import templates
from boxoffice.web.resources import Order

ORDER_ID = "01a223bb-30bc-757a-8a5c-535bd9325ce2"


def tickets_html(status: str, *, pdf_url: str | None, ticket_status: str = "valid") -> str:
    order = Order.model_validate({
        "id": ORDER_ID, "number": "NKRNKKEA", "status": status, "currency": "EUR",
        "items": [{"seat_id": "s1", "label": "Floor", "price": 2500, "section": "Floor"}],
        "tickets": [{"id": "t1", "status": ticket_status, "code": "code-1", "pdf_url": pdf_url}],
    })
    return templates().get_template("_tickets.html").render(order=order, qr={"t1": "<svg></svg>"})


def test_a_valid_tickets_pdf_downloads_before_the_renderer_stored_it() -> None:
    # The PDF route renders a ticket the renderer has not reached yet: the page offers it at once.
    for pdf_url in (None, "/api/tickets/t1/pdf"):
        html = tickets_html("confirmed", pdf_url=pdf_url)
        assert f'href="/orders/{ORDER_ID}/tickets/t1.pdf"' in html
        assert "Preparing" not in html
        assert "hx-trigger" not in html  # nothing to wait for once the tickets exist


def test_a_train_ticket_names_its_coach_and_seat_as_the_order_does() -> None:
    order = Order.model_validate({
        "id": ORDER_ID, "status": "confirmed", "kind": "train", "currency": "INR",
        "items": [{"seat_id": "s1", "label": "B1-3", "price": 269480, "section": "AC 3 Tier", "passenger": "Ann"}],
        "tickets": [{"id": "t1", "status": "valid", "code": "c", "pdf_url": None}],
        "train": {"run_id": "r", "train_number": "12952", "name": "Mumbai Rajdhani Express", "class_code": "3A",
                  "class_name": "AC 3 Tier", "origin": {"station": "NDLS", "name": "New Delhi"},
                  "destination": {"station": "BCT", "name": "Mumbai Central"}},
    })
    html = templates().get_template("_tickets.html").render(order=order, qr={"t1": ""})
    assert "Coach B1, seat 3" in html and "Passenger" in html


def test_a_voided_ticket_offers_no_pdf() -> None:
    html = tickets_html("confirmed", pdf_url=None, ticket_status="voided")
    assert "t1.pdf" not in html


def test_the_footer_does_not_say_times_are_utc() -> None:
    source = (templates().env.loader.get_source(templates().env, "base.html"))[0]  # type: ignore[union-attr]
    assert "All times are UTC" not in source
    assert "local" in source
