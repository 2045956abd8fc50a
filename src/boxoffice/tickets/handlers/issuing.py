"""Issuing: a confirmed order's tickets (with signed codes), voiding a cancelled order's, and their PDFs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.audit import SYSTEM
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.bus.tables import claim_inbox_many
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.metrics import counter
from boxoffice.platform.objectstore import announce_object_created
from boxoffice.tickets import domain, store
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import Booking, Ticket, TicketStatus, TicketToRender, VoidOrder
from boxoffice.tickets.handlers import TICKETS_TOPIC
from boxoffice.tickets.handlers.mail import queue_confirmations
from boxoffice.tickets.pdf import TicketDocument

log = structlog.get_logger("boxoffice.tickets")

ISSUED = counter("boxoffice_tickets_issued_total", "Tickets issued (PDF stored)")
VOIDED = counter("boxoffice_tickets_voided_total", "Tickets voided by a cancelled order")


async def load_keys(deps: TicketsDeps, *, secret: bytes) -> None:
    await deps.keys.load(deps.db, secret, now=deps.now())


async def apply_booking(deps: TicketsDeps, booking: Booking | None, *, inbox: tuple[str, str]) -> None:
    """Issue a confirmed order's tickets, or void a cancelled order's, exactly once per event. ``booking`` is
    None for a malformed event (skipped, once); ``inbox``: (consumer group, event id)."""
    await apply_bookings(deps, [(booking, inbox[1])], group=inbox[0])


async def apply_bookings(deps: TicketsDeps, bookings: Sequence[tuple[Booking | None, str]], *, group: str) -> None:
    """``apply_booking`` of several events (booking, event id), in their order, in ONE transaction: the inbox
    claims, the orders' statuses, and the new orders, tickets and audit entries take one statement each
    (the consumer's batch under load). Every ticket has its signed code when this commits; its PDF follows.
    A cancellation among them is applied where it stands (after what came before it)."""
    issued = 0
    async with deps.db.uow() as uow:
        claimed = await claim_inbox_many(uow.conn, group, [event_id for _, event_id in bookings])
        todo: list[Booking] = []
        for booking, event_id in bookings:
            if event_id not in claimed:
                continue  # handled before (or earlier in this batch): redelivery is a no-op
            claimed.discard(event_id)
            if booking is None:
                log.error("malformed ticket-bookings event skipped", event_id=event_id)
            else:
                todo.append(booking)
        known = await store.order_statuses(uow.conn, {b.order_id for b in todo})
        now = deps.now()
        confirmed: list[Booking] = []
        for booking in todo:
            if booking.status == "confirmed":
                # Known already: confirmed again under another event id (a re-sent confirmation), or cancelled
                # before the confirmation arrived. Either way no second set, no tickets for a cancelled order.
                if booking.order_id not in known:
                    known[booking.order_id] = "confirmed"
                    confirmed.append(booking)
                continue
            issued += await _issue_tickets(deps, uow.conn, confirmed, now)  # what came before, first
            confirmed = []
            await _void_tickets(deps, uow, booking)
            known[booking.order_id] = "cancelled"
        issued += await _issue_tickets(deps, uow.conn, confirmed, now)
        await uow.commit()
    if issued:
        deps.pdf_wanted.set()


async def _issue_tickets(deps: TicketsDeps, conn: AsyncConnection, bookings: list[Booking], now: datetime) -> int:
    """The tickets of orders tickets knew nothing of, with their orders and audit entries."""
    if not bookings:
        return 0
    await store.insert_orders(conn, bookings, status="confirmed", now=now)
    ring = deps.keys.ring
    tickets = []
    for booking in bookings:
        for line in domain.plan_tickets(booking.data):
            ticket_id = uuid7()
            holder = line.passenger or booking.holder_name  # a train ticket is the passenger's
            code = ring.sign(
                ticket_id=ticket_id, subject_id=booking.subject_id, seat=line.label, holder=holder, version=1
            )
            tickets.append(
                Ticket(
                    id=ticket_id,
                    order_id=booking.order_id,
                    line_no=line.line_no,
                    user_id=booking.user_id,
                    kind=booking.kind,
                    subject_id=booking.subject_id,
                    seat_id=line.seat_id,
                    label=line.label,
                    section=line.section,
                    holder_name=holder,
                    version=1,
                    code=code,
                    status=TicketStatus.VALID,
                    created_at=now,
                )
            )
    await store.insert_tickets(conn, tickets)
    details = [(t, {"line_no": t.line_no, "label": t.label, "seat_id": t.seat_id}) for t in tickets]
    await store.record_ticket_audits(conn, details, action="ticket.issued", actor=SYSTEM)
    return len(tickets)


async def _void_tickets(deps: TicketsDeps, uow: UnitOfWork, booking: Booking) -> None:
    now = deps.now()
    if await store.order_status(uow.conn, booking.order_id) is None:
        # The cancellation overtook the confirmation: remember it, so none are issued later.
        await store.insert_order(uow.conn, booking, status="cancelled", now=now)
        return
    await store.set_order_status(uow.conn, booking.order_id, "cancelled", now=now)
    await _void_valid(uow, booking.order_id, now)


async def _void_valid(uow: UnitOfWork, order_id: str, now: datetime) -> int:
    voided = await store.void_tickets(uow.conn, order_id, now)
    for ticket in voided:
        await _audit(uow.conn, ticket, "ticket.voided", SYSTEM, {"reason": "order cancelled"})
        data = {"ticket_id": ticket.id, "order_id": ticket.order_id, "event_id": ticket.subject_id}
        uow.publish(TICKETS_TOPIC, "tickets.voided", key=ticket.order_id, data={**data, "user_id": ticket.user_id})
    VOIDED.inc(len(voided))
    return len(voided)


async def void_order(deps: TicketsDeps, cmd: VoidOrder) -> int:
    """Booking's refund fence (docs/contracts.md): in ONE transaction, void every ticket of the order unless
    one of them was used, and remember the order as cancelled so that none is issued for it later. Returns
    how many tickets this call voided (0 on a repeat, or before any were issued); raises
    ``TicketUsedNoRefund`` and changes nothing when a ticket was admitted at a gate.

    The order's row and its tickets' rows are locked (PostgreSQL) or the database is (SQLite's writer), so a
    check-in (a conditional UPDATE of one ticket, ``store.admit_ticket``) either comes first and this call
    refuses, or comes after and finds the ticket voided: never both. Issuance inserts the order's row; a
    fence that meets an issuance in flight loses the insert race once and then sees the issued tickets.
    """
    for attempt in (1, 2):
        try:
            async with deps.db.uow() as uow:
                now = deps.now()
                if await store.lock_order(uow.conn, cmd.order_id) is None:
                    await store.insert_order(uow.conn, cmd.as_booking(), status="cancelled", now=now)
                else:
                    await store.set_order_status(uow.conn, cmd.order_id, "cancelled", now=now)
                tickets = await store.lock_tickets_of_order(uow.conn, cmd.order_id)
                used = [t for t in tickets if t.status == TicketStatus.USED]
                if used:
                    when = used[0].used_at.isoformat() if used[0].used_at else "earlier"
                    raise domain.TicketUsedNoRefund(
                        "A ticket of this order was admitted at the gate; the order cannot be cancelled.",
                        ticket_id=used[0].id,
                        used_at=when,
                    )
                voided = await _void_valid(uow, cmd.order_id, now)
                await uow.commit()
                return voided
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("refund fence met an issuance in flight; trying again", order_id=cmd.order_id)
    raise AssertionError("unreachable")


async def _audit(conn: AsyncConnection, ticket: Ticket, action: str, actor: str, detail: dict[str, object]) -> None:
    at = ticket.voided_at or ticket.used_at or ticket.created_at
    await store.record_audit(
        conn,
        entity="ticket",
        entity_id=ticket.id,
        action=action,
        actor=actor,
        at=at,
        order_id=ticket.order_id,
        detail=detail,
    )


# PDFs.
def _document(pending: TicketToRender) -> TicketDocument:
    ticket = pending.ticket
    return TicketDocument(
        ticket_id=ticket.id,
        order_id=ticket.order_id,
        kind=ticket.kind,
        holder=ticket.holder_name,
        code=ticket.code,
        label=ticket.label,
        section=ticket.section,
        details=pending.details,
        order_number=pending.number,
    )


async def render_pending_pdfs(deps: TicketsDeps, *, batch: int) -> int:
    """Render and store the PDFs of tickets that have none; returns how many it looked at.

    Object first, then the row and the events in one transaction (see ``platform.objectstore``): a crash in
    between leaves a PDF that the next round overwrites under the same key. Two renderers (or a renderer
    and a buyer's download, ``render_now``) may both store one ticket's PDF; the conditional update lets
    only the first record and announce it.
    """
    async with deps.db.read() as conn:
        pending = await store.tickets_without_pdf(conn, batch)
    if not pending:
        return 0
    # In chunks, one after the other: a download that renders its ticket now (``render_now``) waits for one
    # chunk in the worker's queue, not for the whole batch.
    rendered: list[tuple[Ticket, bytes]] = []
    for start in range(0, len(pending), RENDER_CHUNK):
        chunk = pending[start : start + RENDER_CHUNK]
        pdfs = await deps.render([_document(p) for p in chunk])
        rendered += [(p.ticket, pdf) for p, pdf in zip(chunk, pdfs, strict=True) if pdf is not None]
    await _record_pdfs(deps, rendered)
    return len(pending)


RENDER_CHUNK = 4
"""Tickets per call of the renderer's worker (one Latin-1 ticket: about 1.5 ms of CPU on an idle core, a CJK
one tens of ms: docs/tickets.md)."""


async def _record_pdfs(deps: TicketsDeps, rendered: list[tuple[Ticket, bytes]]) -> int:
    """Store rendered PDFs and record them (with their events, and the order's confirmation e-mail once its
    last PDF is in); returns how many this call recorded first."""
    if not rendered:
        return 0
    stored = await asyncio.gather(
        *(
            deps.objects.put(domain.ticket_pdf_key(t.order_id, t.id), pdf, content_type="application/pdf")
            for t, pdf in rendered
        )
    )
    issued, completed = 0, set()
    async with deps.db.uow() as uow:
        recorded = await store.set_pdf_keys(
            uow.conn, {t.id: obj.key for (t, _), obj in zip(rendered, stored, strict=True)}
        )
        for (t, _), obj in zip(rendered, stored, strict=True):
            if t.id not in recorded:
                continue
            announce_object_created(uow, obj, region=deps.objects.region)
            data = {"ticket_id": t.id, "order_id": t.order_id, "event_id": t.subject_id, "user_id": t.user_id}
            uow.publish(TICKETS_TOPIC, "tickets.issued", key=t.order_id, data=data)
            issued += 1
            completed.add(t.order_id)
        # The confirmation e-mail commits with the last PDF of its order (then every ticket can be attached).
        mails = await queue_confirmations(deps, uow.conn, completed)
        await uow.commit()
    ISSUED.inc(issued)
    if mails:
        deps.mail_wanted.set()
    return issued


async def render_now(deps: TicketsDeps, ticket: Ticket) -> bytes:
    """The PDF of a valid ticket the renderer has not reached yet, rendered for the buyer who asks for it
    (during a sale the renderer's queue can be long; the ticket and its code exist from the confirmation
    on). Stored and recorded as the renderer would do it, so the renderer then skips it. Concurrent
    requests for one ticket in this process share one rendering. Raises ``PdfNotReady`` when the ticket
    cannot be rendered now (the renderer tries again)."""
    running = _RENDERING.get(ticket.id)
    if running is None:
        running = asyncio.ensure_future(_render_and_record(deps, ticket.id))
        _RENDERING[ticket.id] = running
        running.add_done_callback(lambda _: _RENDERING.pop(ticket.id, None))
    pdf = await asyncio.shield(running)  # one buyer giving up does not cancel the rendering of the others
    if pdf is None:
        raise domain.PdfNotReady("The PDF is being prepared; try again in a moment.", headers={"Retry-After": "1"})
    return pdf


_RENDERING: dict[str, asyncio.Future[bytes | None]] = {}


async def _render_and_record(deps: TicketsDeps, ticket_id: str) -> bytes | None:
    async with deps.db.read() as conn:
        pending = await store.ticket_to_render(conn, ticket_id)
        if pending is None:  # rendered meanwhile (or voided): what is stored now is the answer
            ticket = await store.ticket_by_id(conn, ticket_id)
    if pending is None:
        if ticket is None or ticket.status == TicketStatus.VOIDED or ticket.pdf_key is None:
            return None
        return await deps.objects.get(ticket.pdf_key)
    pdf = await deps.render.one(_document(pending))
    if pdf is not None:
        await _record_pdfs(deps, [(pending.ticket, pdf)])
    return pdf
