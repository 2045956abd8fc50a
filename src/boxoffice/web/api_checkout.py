"""Checkout and after: the hold with its countdown, payment, confirmation, my orders, tickets, cancelling."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import segno
from fastapi import APIRouter, Request
from starlette.responses import Response

from boxoffice.web import domain, handlers
from boxoffice.web.handlers import ApiProblem, Visitor, page_id
from boxoffice.web.pages import VisitorDep, form, number, redirect, render, text
from boxoffice.web.resources import Card, Hold, Order, Passenger

router = APIRouter(include_in_schema=False)
EXPIRED_SLUGS = {"hold-expired", "hold-not-active"}
# When a service behind checkout fails (down, too slow), the buyer learns what to retry and that a retry is
# safe: the order is idempotent per hold, the payment per rendering of the form (kept for the retry).
RETRY_PAY = ("Your payment did not go through: a service did not answer in time. Your seats stay held until the "
             "timer runs out. Press “Pay” again to retry: the same payment is never taken twice.")


@router.get("/checkout/{hold_id}")
async def checkout(request: Request, hold_id: str, visitor: VisitorDep) -> Response:
    hold_id = page_id(hold_id)
    visitor.require_user()
    hold = await visitor.booking.hold(hold_id)
    if hold.status == "confirmed":
        order = next(iter(await handlers.orders_for_hold(visitor, hold_id)), None)
        if order is not None:
            return redirect(f"/orders/{order.id}", request)
    return await _checkout_page(request, visitor, hold)


async def _checkout_page(request: Request, visitor: Visitor, hold: Hold, *, error: str | None = None,
                         expired: bool = False, status: int = 200, attempt: str | None = None,
                         passengers: dict[str, str] | None = None) -> Response:
    title, back = await handlers.hold_title(visitor, hold)
    left = domain.seconds_left(hold.expires_at, datetime.now(UTC))
    expired = expired or hold.status != "active" or left <= 0
    return render(
        request, "checkout.html", "checkout", hold=hold, title=title, back=back, error=error, status=status,
        expired=expired, ms_left=0 if expired else int(left * 1000), countdown=domain.countdown_label(left),
        attempt=attempt or secrets.token_urlsafe(12), test_cards=domain.TEST_CARDS, year=datetime.now(UTC).year,
        passengers=passengers or {},
    )


@router.post("/checkout/{hold_id}/pay")
async def pay(request: Request, hold_id: str, visitor: VisitorDep) -> Response:
    hold_id = page_id(hold_id)
    data = await form(request)
    user = visitor.require_user()
    hold = await visitor.booking.hold(hold_id)
    card = Card(
        card_number="".join(ch for ch in text(data, "card_number") if ch.isdigit()),
        exp_month=number(data, "exp_month"),
        exp_year=number(data, "exp_year"),
        cvc=text(data, "cvc"),
    )
    attempt = text(data, "attempt") or secrets.token_urlsafe(12)
    # A train ticket is personal: one name per seat, as typed (booking checks them).
    names = {i.seat_id: text(data, f"passenger_{i.seat_id}") for i in hold.items if i.seat_id} if hold.run_id else {}
    passengers = [Passenger(seat_id=seat, name=name) for seat, name in names.items()]
    if any(not name.strip() for name in names.values()):
        message = "Give the name of who travels on each seat, as on their photo ID."
        return await _checkout_page(request, visitor, hold, error=message, status=422, attempt=attempt,
                                    passengers=names)
    try:
        paid = await handlers.pay_for_hold(visitor, user.id, hold_id, card, attempt=attempt, passengers=passengers)
    except ApiProblem as exc:
        if exc.status in (401, 403):
            raise
        if exc.status >= 500:
            return await _checkout_page(request, visitor, hold, error=RETRY_PAY, status=503, attempt=attempt,
                                        passengers=names)
        expired = exc.slug in EXPIRED_SLUGS
        message = domain.FRIENDLY["hold-expired"] if expired else exc.message
        return await _checkout_page(request, visitor, hold, error=message, expired=expired, status=exc.status,
                                    passengers=names)
    if paid.earlier:
        return redirect(f"/orders/{paid.order_id}", request)  # paid already (another tab, a resubmission)
    return redirect(f"/orders/{paid.order_id}?confirmed=1", request)


@router.post("/checkout/{hold_id}/release")
async def release(request: Request, hold_id: str, visitor: VisitorDep) -> Response:
    hold_id = page_id(hold_id)
    await form(request)
    visitor.require_user()
    hold = await visitor.booking.hold(hold_id)
    _, back = await handlers.hold_title(visitor, hold)
    try:
        await visitor.booking.release_hold(hold_id)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
    return redirect(back, request)


# Orders and tickets ----------------------------------------------------------------------------------------


@router.get("/orders")
async def orders(request: Request, visitor: VisitorDep) -> Response:
    visitor.require_user()
    number = (request.query_params.get("number") or "").strip()[:20] or None
    page = await visitor.booking.orders(limit=20, cursor=request.query_params.get("cursor"), number=number)
    titles = await handlers.order_titles(visitor, page.items)
    next_url = f"/orders?cursor={page.next_cursor}" if page.next_cursor else None
    return render(
        request, "orders.html", "orders", orders=page.items, titles=titles, next_url=next_url, number=number
    )


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str, visitor: VisitorDep) -> Response:
    order_id = page_id(order_id)
    visitor.require_user()
    order = await handlers.wait_for_tickets(visitor, order_id)
    titles = await handlers.order_titles(visitor, [order])
    return render(
        request, "order.html", "order", order=order, title=titles.get(order.event_id or "", ""),
        qr=qr_codes(order), confirmed=request.query_params.get("confirmed") == "1",
        cancelled=request.query_params.get("cancelled") == "1",
    )


@router.get("/orders/{order_id}/tickets")
async def order_tickets(request: Request, order_id: str, visitor: VisitorDep) -> Response:
    """Polled by the order page until the tickets are issued."""
    order_id = page_id(order_id)
    visitor.require_user()
    order = await visitor.booking.order(order_id)
    return render(request, "_tickets.html", "order", order=order, qr=qr_codes(order))


def qr_codes(order: Order) -> dict[str, str]:
    """Each ticket's code as an inline SVG QR (what the gate scans)."""
    return {
        t.id: segno.make(t.code, error="m").svg_inline(scale=3, border=2, title=f"Ticket {t.id}")
        for t in order.tickets
        if t.code
    }


@router.get("/orders/{order_id}/tickets/{ticket_id}.pdf")
async def ticket_pdf(request: Request, order_id: str, ticket_id: str, visitor: VisitorDep) -> Response:
    page_id(order_id)
    ticket_id = page_id(ticket_id)
    visitor.require_user()
    pdf = await handlers.ticket_pdf(visitor, ticket_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="ticket-{ticket_id}.pdf"'},
    )


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, order_id: str, visitor: VisitorDep) -> Response:
    order_id = page_id(order_id)
    await form(request)
    visitor.require_user()
    try:
        await visitor.booking.cancel_order(order_id)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        order = await visitor.booking.order(order_id)
        titles = await handlers.order_titles(visitor, [order])
        return render(request, "order.html", "order", order=order, title=titles.get(order.event_id or "", ""),
                      qr=qr_codes(order), error=exc.message, status=exc.status)
    return redirect(f"/orders/{order_id}?cancelled=1", request)
