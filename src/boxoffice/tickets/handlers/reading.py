"""What customers, gates and booking read: tickets, their PDFs, the signing keys, an order's audit trail."""

from __future__ import annotations

from boxoffice.platform import audit, pagination
from boxoffice.platform.audit import AuditEntry
from boxoffice.platform.auth import Principal
from boxoffice.tickets import domain, store
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import ListTickets, Ticket, TicketList
from boxoffice.tickets.handlers import issuing


def public_keys(deps: TicketsDeps) -> list[dict[str, str]]:
    """The public JWKs that verify ticket codes, for gates that check codes offline."""
    return [{name: str(value) for name, value in key.public_jwk.items()} for key in deps.keys.ring.keys]


async def list_tickets(deps: TicketsDeps, query: ListTickets, *, owner: Principal) -> TicketList:
    """The caller's tickets by id, a page at a time (``next_cursor`` is None on the last page)."""
    async with deps.db.read() as conn:
        found = await store.tickets_of_user(
            conn,
            owner.id,
            order_id=query.order_id,
            after=pagination.decode_id_cursor(query.cursor) if query.cursor else None,
            limit=query.limit + 1,
        )
    more = len(found) > query.limit
    page = found[: query.limit]
    return TicketList(items=page, next_cursor=pagination.encode_id_cursor(page[-1].id) if more else None)


async def order_tickets(deps: TicketsDeps, order_id: str) -> list[Ticket]:
    """For booking's ``GET /api/orders/{id}``: the order's tickets (none until they are issued)."""
    async with deps.db.read() as conn:
        return await store.tickets_of_order(conn, order_id)


async def ticket_pdf(deps: TicketsDeps, ticket_id: str, *, viewer: Principal) -> bytes:
    async with deps.db.read() as conn:
        ticket = await store.ticket_by_id(conn, ticket_id)
    if ticket is None:
        raise domain.TicketNotFound("No ticket with this id.")
    if ticket.user_id != viewer.id and not viewer.has_role("admin"):
        raise domain.NotYourTicket("This ticket belongs to someone else.")
    if ticket.status == domain.TicketStatus.VOIDED:  # a printout of it would look like a ticket: none is given
        raise domain.TicketVoided("This ticket was voided: its order was cancelled.")
    if ticket.pdf_key is None:  # the renderer has not reached it yet: rendered for this buyer now, and kept
        return await issuing.render_now(deps, ticket)
    return await deps.objects.get(ticket.pdf_key)


async def order_history(deps: TicketsDeps, order_id: str) -> list[AuditEntry]:
    """Tickets' audit entries of one order, oldest first (booking merges them into the order's history)."""
    async with deps.db.read() as conn:
        return await audit.order_history(conn, order_id)
