"""Checkout and after: the hold with its countdown, payment, confirmation, my orders, tickets, cancelling."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

import segno
from fastapi import APIRouter, Request
from starlette.responses import Response

from boxoffice.web import domain, handlers
from boxoffice.web.handlers import ApiProblem, Visitor
from boxoffice.web.pages import VisitorDep, form, number, redirect, render, text

router = APIRouter(include_in_schema=False)
EXPIRED_SLUGS = {"hold-expired", "hold-not-active"}
# When a service behind checkout fails (down, too slow), the buyer learns which step to retry and that a retry
# is safe: the order is idempotent per hold, the payment per rendering of the form (kept for the retry).
RETRY = {
    "order": "We could not place your order: booking did not answer in time. Nothing was charged and your seats "
             "stay held until the timer runs out. Press “Pay” again to retry.",
    "payment": "The payment service did not answer in time, so your payment is not confirmed yet. Press “Pay” "
               "again to retry: the same payment is never taken twice.",
}


async def _hold_title(visitor: Visitor, hold: dict[str, Any]) -> tuple[str, str]:
    """A heading for the hold and the page to go back to for other seats."""
    if hold.get("run_id"):
        origin, destination = hold.get("origin", ""), hold.get("destination", "")
        back = f"/trains/runs/{hold['run_id']}?origin={origin}&destination={destination}"
        titles = await handlers.order_titles(visitor, [{"kind": "train", "event_id": hold["run_id"]}])
        return f"{titles[hold['run_id']]}, {origin} → {destination}", back
    titles = await handlers.order_titles(visitor, [{"kind": "event", "event_id": hold["event_id"]}])
    return titles[hold["event_id"]], f"/events/{hold['event_id']}"


@router.get("/checkout/{hold_id}")
async def checkout(request: Request, hold_id: str, visitor: VisitorDep) -> Response:
    visitor.require_user()
    hold = await visitor.call("booking", "GET", f"/api/holds/{hold_id}")
    if hold["status"] == "confirmed":
        orders = await visitor.call("booking", "GET", "/api/orders", params={"limit": 100})
        order = next((o for o in orders["items"] if o.get("hold_id") == hold_id), None)
        if order is not None:
            return redirect(f"/orders/{order['id']}", request)
    return await _checkout_page(request, visitor, hold)


async def _checkout_page(request: Request, visitor: Visitor, hold: dict[str, Any], *, error: str | None = None,
                         expired: bool = False, status: int = 200, attempt: str | None = None) -> Response:
    title, back = await _hold_title(visitor, hold)
    left = domain.seconds_left(hold["expires_at"], datetime.now(UTC))
    expired = expired or hold["status"] != "active" or left <= 0
    return render(
        request, "checkout.html", "checkout", hold=hold, title=title, back=back, error=error, status=status,
        expired=expired, ms_left=0 if expired else int(left * 1000), countdown=domain.countdown_label(left),
        attempt=attempt or secrets.token_urlsafe(12), test_cards=domain.TEST_CARDS, year=datetime.now(UTC).year,
    )


@router.post("/checkout/{hold_id}/pay")
async def pay(request: Request, hold_id: str, visitor: VisitorDep) -> Response:
    data = await form(request)
    user = visitor.require_user()
    hold = await visitor.call("booking", "GET", f"/api/holds/{hold_id}")
    card = {
        "card_number": "".join(ch for ch in text(data, "card_number") if ch.isdigit()),
        "exp_month": number(data, "exp_month"),
        "exp_year": number(data, "exp_year"),
        "cvc": text(data, "cvc"),
    }
    attempt = text(data, "attempt") or secrets.token_urlsafe(12)
    order_id: str | None = None
    try:
        # The same hold always makes the same order: a retry after a decline pays the order placed before.
        order = await visitor.call("booking", "POST", "/api/orders", json={"hold_id": hold_id},
                                   idempotency_key=domain.attempt_key("order", user.id, hold_id))
        order_id = str(order["id"])
        # One key per rendering of the form: a double click pays once, a new card after a decline is new.
        await visitor.call("payments", "POST", f"/api/orders/{order_id}/payment", json=card,
                           idempotency_key=domain.attempt_key("pay", order_id, attempt))
    except ApiProblem as exc:
        if exc.status in (401, 403):
            raise
        if exc.status >= 500:
            return await _checkout_page(request, visitor, hold, error=RETRY["payment" if order_id else "order"],
                                        status=503, attempt=attempt)
        if order_id and exc.slug == "order-not-payable" and order_confirmed(await _orders_for(visitor, hold_id)):
            return redirect(f"/orders/{order_id}", request)  # paid already (another tab, a resubmission)
        expired = exc.slug in EXPIRED_SLUGS
        message = domain.FRIENDLY["hold-expired"] if expired else exc.message
        return await _checkout_page(request, visitor, hold, error=message, expired=expired, status=exc.status)
    return redirect(f"/orders/{order_id}?confirmed=1", request)


async def _orders_for(visitor: Visitor, hold_id: str) -> list[dict[str, Any]]:
    orders = await visitor.call("booking", "GET", "/api/orders", params={"limit": 100})
    return [o for o in orders["items"] if o.get("hold_id") == hold_id]


def order_confirmed(orders: list[dict[str, Any]]) -> bool:
    return any(o["status"] == "confirmed" for o in orders)


@router.post("/checkout/{hold_id}/release")
async def release(request: Request, hold_id: str, visitor: VisitorDep) -> Response:
    await form(request)
    visitor.require_user()
    hold = await visitor.call("booking", "GET", f"/api/holds/{hold_id}")
    _, back = await _hold_title(visitor, hold)
    try:
        await visitor.call("booking", "DELETE", f"/api/holds/{hold_id}")
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
    return redirect(back, request)


# Orders and tickets ----------------------------------------------------------------------------------------


@router.get("/orders")
async def orders(request: Request, visitor: VisitorDep) -> Response:
    visitor.require_user()
    page = await visitor.call("booking", "GET", "/api/orders",
                              params={"limit": 20, "cursor": request.query_params.get("cursor")})
    titles = await handlers.order_titles(visitor, page["items"])
    next_url = f"/orders?cursor={page['next_cursor']}" if page.get("next_cursor") else None
    return render(request, "orders.html", "orders", orders=page["items"], titles=titles, next_url=next_url)


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str, visitor: VisitorDep) -> Response:
    visitor.require_user()
    order = await handlers.wait_for_tickets(visitor, order_id)
    titles = await handlers.order_titles(visitor, [order])
    return render(
        request, "order.html", "order", order=order, title=titles.get(order.get("event_id", ""), ""),
        qr=qr_codes(order), confirmed=request.query_params.get("confirmed") == "1",
        cancelled=request.query_params.get("cancelled") == "1",
    )


@router.get("/orders/{order_id}/tickets")
async def order_tickets(request: Request, order_id: str, visitor: VisitorDep) -> Response:
    """Polled by the order page until the tickets are issued."""
    visitor.require_user()
    order = await visitor.call("booking", "GET", f"/api/orders/{order_id}")
    return render(request, "_tickets.html", "order", order=order, qr=qr_codes(order))


def qr_codes(order: dict[str, Any]) -> dict[str, str]:
    """Each ticket's code as an inline SVG QR (what the gate scans)."""
    return {
        t["id"]: segno.make(t["code"], error="m").svg_inline(scale=3, border=2, title=f"Ticket {t['id']}")
        for t in order.get("tickets") or []
        if t.get("code")
    }


@router.get("/orders/{order_id}/tickets/{ticket_id}.pdf")
async def ticket_pdf(request: Request, order_id: str, ticket_id: str, visitor: VisitorDep) -> Response:
    visitor.require_user()
    response = await visitor.raw("tickets", "GET", f"/api/tickets/{ticket_id}/pdf")
    for _ in range(10):  # a PDF is rendered moments after its ticket: wait a little rather than fail
        if domain.problem_from_body(response.status_code, _json_or_none(response)).slug != "pdf-not-ready":
            break
        await asyncio.sleep(0.3)
        response = await visitor.raw("tickets", "GET", f"/api/tickets/{ticket_id}/pdf")
    if response.status_code != 200:
        raise ApiProblem(domain.problem_from_body(response.status_code, _json_or_none(response)))
    return Response(
        response.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="ticket-{ticket_id}.pdf"'},
    )


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, order_id: str, visitor: VisitorDep) -> Response:
    await form(request)
    visitor.require_user()
    try:
        await visitor.call("booking", "POST", f"/api/orders/{order_id}/cancel")
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        order = await visitor.call("booking", "GET", f"/api/orders/{order_id}")
        titles = await handlers.order_titles(visitor, [order])
        return render(request, "order.html", "order", order=order, title=titles.get(order.get("event_id", ""), ""),
                      qr=qr_codes(order), error=exc.message, status=exc.status)
    return redirect(f"/orders/{order_id}?cancelled=1", request)
