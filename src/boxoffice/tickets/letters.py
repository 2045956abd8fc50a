"""The e-mails tickets sends a buyer: the order confirmation with the tickets, and the refund after a
cancellation. Pure composition, no I/O: the handlers queue what these return (``handlers/mail.py``).

Tickets sends both because it holds what they need: it knows when every PDF of an order is stored (the
confirmation goes out then, with the PDFs attached), and it keeps the order's number, details and e-mail
address from ``ticket-bookings``; the refunded amount comes from payments' ``payments.refunded``.
"""

from __future__ import annotations

from collections.abc import Sequence

from boxoffice.tickets.domain import Letter, OrderSummary, Ticket
from boxoffice.tickets.pdf import TicketDocument, describe, instructions

CONFIRMATION = "confirmation"
REFUND = "refund"


def money(amount_minor: int, currency: str) -> str:
    """``45.00 EUR``: every currency sold here has two decimals."""
    return f"{amount_minor / 100:,.2f} {currency}".strip()


def _title(order: OrderSummary) -> str:
    d = order.details
    if order.kind == "train":
        train = " ".join(str(p) for p in (d.get("train_number"), d.get("name")) if p) or "your train"
        route = f"{d.get('origin_name') or d.get('origin')} to {d.get('destination_name') or d.get('destination')}"
        return f"{train}, {route}"
    return str(d.get("name") or "your event")


def _document(order: OrderSummary, ticket: Ticket) -> TicketDocument:
    return TicketDocument(
        ticket_id=ticket.id,
        order_id=order.id,
        kind=order.kind,
        holder=ticket.holder_name,
        code=ticket.code,
        label=ticket.label,
        section=ticket.section,
        details=order.details,
        order_number=order.number,
    )


def _block(lines: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    width = max(len(label) for label, _ in lines) + 1
    return [f"{indent}{label + ':':<{width}} {value}" for label, value in lines]


def _seat(kind: str, ticket: Ticket) -> str:
    """"Coach B1, seat 7" for a train ("B1-7"); "Stalls, seat A-12" or "Floor" for an event."""
    if kind == "train" and "-" in ticket.label:
        coach, number = ticket.label.rsplit("-", 1)
        return f"Coach {coach}, seat {number}"
    return ticket.label if ticket.section in (None, ticket.label) else f"{ticket.section}, seat {ticket.label}"


def ticket_file(ticket: Ticket) -> str:
    return f"ticket-{ticket.line_no}-{ticket.id}.pdf"


def confirmation(order: OrderSummary, tickets: Sequence[Ticket], *, site: str) -> Letter:
    """The order confirmation: what was bought, in local time, each ticket (attached as PDF and linked)."""
    number = order.number or order.id
    first = tickets[0]
    what = [(label, value) for label, value in describe(_document(order, first)) if label != "Coach / seat"]
    what = [(label, value) for label, value in what if label != "Section / row / seat"]
    body = [
        f"Hello {order.holder_name},",
        "",
        f"Thank you for your order {number}. Your tickets are attached to this e-mail as PDF files.",
        "",
        *_block(what),
        "",
        f"Tickets ({len(tickets)}):",
    ]
    for ticket in tickets:
        seat = _seat(order.kind, ticket)
        who = f" - passenger {ticket.holder_name}" if order.kind == "train" else ""
        body.append(f"  {ticket.line_no}. {seat}{who}")
        body.append(f"     {site}/orders/{order.id}/tickets/{ticket.id}.pdf")
    body += [
        "",
        f"Total paid: {money(order.amount_minor, order.currency)}",
        f"Order number: {number} (quote it when you contact us)",
        f"Your order online: {site}/orders/{order.id}",
        "",
        instructions(_document(order, first)),
        "",
        "boxoffice",
    ]
    return Letter(
        order_id=order.id,
        kind=CONFIRMATION,
        recipient=order.email,
        subject=f"Your tickets for {_title(order)} - order {number}",
        body="\n".join(body) + "\n",
        attachments=tuple((ticket_file(t), t.pdf_key) for t in tickets if t.pdf_key),
    )


def refund(order: OrderSummary, *, amount_minor: int, currency: str, site: str) -> Letter:
    """After a cancellation: the amount refunded, and that the tickets no longer admit anyone."""
    number = order.number or order.id
    what = describe(
        TicketDocument("", order.id, order.kind, order.holder_name, "", "", None, order.details, order.number)
    )
    what = [(label, value) for label, value in what if label not in ("Coach / seat", "Section / row / seat")]
    body = [
        f"Hello {order.holder_name},",
        "",
        f"Your order {number} is cancelled and its tickets are void: they no longer admit anyone.",
        "",
        *_block(what),
        "",
        f"Refunded: {money(amount_minor, currency)} to the card you paid with.",
        "Your bank may take a few days to show it.",
        f"Your order online: {site}/orders/{order.id}",
        "",
        "boxoffice",
    ]
    return Letter(
        order_id=order.id,
        kind=REFUND,
        recipient=order.email,
        subject=f"Refund of {money(amount_minor, currency)} for order {number} - {_title(order)}",
        body="\n".join(body) + "\n",
    )
