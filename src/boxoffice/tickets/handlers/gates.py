"""Check-in at the gate: a genuine code admits its ticket once."""

from __future__ import annotations

from boxoffice.platform.auth import Principal
from boxoffice.platform.metrics import counter
from boxoffice.tickets import domain, store
from boxoffice.tickets.codes import InvalidTicketCode
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import CheckIn, Ticket
from boxoffice.tickets.handlers import TICKETS_TOPIC

CHECKINS = counter("boxoffice_checkins_total", "Check-in attempts", ("outcome",))


async def check_in(deps: TicketsDeps, cmd: CheckIn, *, gate: Principal) -> Ticket:
    """Admit the ticket the code names, once; returns it as admitted."""
    try:
        claims = deps.keys.ring.verify(cmd.code)
    except InvalidTicketCode:
        CHECKINS.labels("invalid").inc()
        raise
    now = deps.now()
    async with deps.db.uow() as uow:
        if await store.admit_ticket(uow.conn, claims.ticket_id, version=claims.version, by=gate.id, now=now):
            ticket = await store.ticket_by_id(uow.conn, claims.ticket_id)
            if ticket is not None:  # it was just admitted in this transaction
                await store.record_audit(
                    uow.conn,
                    entity="ticket",
                    entity_id=ticket.id,
                    action="ticket.checked-in",
                    actor=f"staff:{gate.id}",
                    at=now,
                    order_id=ticket.order_id,
                    detail={"version": ticket.version},
                )
                data = {"ticket_id": ticket.id, "order_id": ticket.order_id, "event_id": ticket.subject_id}
                data |= {"user_id": ticket.user_id, "gate_user": gate.id}
                uow.publish(TICKETS_TOPIC, "tickets.checked-in", key=ticket.order_id, data=data)
                await uow.commit()
                CHECKINS.labels("admitted").inc()
                return ticket
        ticket = await store.ticket_by_id(uow.conn, claims.ticket_id)
    refusal = domain.refusal(ticket, cmd.code)
    CHECKINS.labels(refusal.slug).inc()
    raise refusal
