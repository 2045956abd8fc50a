"""Check-in at the gate: a genuine code for the gate's event admits its ticket once."""

from __future__ import annotations

from boxoffice.platform.auth import Principal
from boxoffice.platform.metrics import counter
from boxoffice.tickets import domain, store
from boxoffice.tickets.codes import InvalidTicketCode
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import Admission, CheckIn
from boxoffice.tickets.handlers import TICKETS_TOPIC

CHECKINS = counter("boxoffice_checkins_total", "Check-in attempts", ("outcome",))


async def check_in(deps: TicketsDeps, cmd: CheckIn, *, gate: Principal) -> Admission:
    """Admit the ticket the code names, once; returns it as admitted, with what the gate shows.

    A code for another event than the gate's is refused before anything is read (the event is in the signed
    code). A scan that repeats the nonce of the scan that admitted the ticket (a gate retrying after a lost
    answer) is answered as that admission again, marked ``retry``.
    """
    try:
        claims = deps.keys.ring.verify(cmd.code)
    except InvalidTicketCode:
        CHECKINS.labels("invalid").inc()
        raise
    if cmd.event_id is not None and claims.subject_id != cmd.event_id:
        CHECKINS.labels("wrong-event").inc()
        raise domain.WrongEvent("This ticket is for another event or train; it does not admit here.")
    now = deps.now()
    async with deps.db.uow() as uow:
        admitted = await store.admit_ticket(
            uow.conn, claims.ticket_id, version=claims.version, by=gate.id, now=now, gate=cmd.gate, nonce=cmd.nonce
        )
        ticket = await store.ticket_by_id(uow.conn, claims.ticket_id)
        if admitted and ticket is not None:  # it was just admitted in this transaction
            await store.record_audit(
                uow.conn,
                entity="ticket",
                entity_id=ticket.id,
                action="ticket.checked-in",
                actor=f"staff:{gate.id}",
                at=now,
                order_id=ticket.order_id,
                detail={"version": ticket.version, "gate": cmd.gate},
            )
            data = {"ticket_id": ticket.id, "order_id": ticket.order_id, "event_id": ticket.subject_id}
            data |= {"user_id": ticket.user_id, "gate_user": gate.id}
            uow.publish(TICKETS_TOPIC, "tickets.checked-in", key=ticket.order_id, data=data)
        details = await store.order_details(uow.conn, ticket.order_id) if ticket is not None else {}
        await uow.commit()
    if ticket is not None and (admitted or domain.is_retry(ticket, cmd, gate_user=gate.id)):
        CHECKINS.labels("admitted" if admitted else "retry").inc()
        return Admission(ticket, domain.subject_name(ticket.kind, details), retry=not admitted)
    refusal = domain.refusal(ticket, cmd.code)
    CHECKINS.labels(refusal.slug).inc()
    raise refusal
