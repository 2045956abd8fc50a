"""Tickets' use cases: issue and void on ticket-bookings, render PDFs, check in, accept ID-proof uploads.

Each handler checks outside the transaction what needs no lock (signatures, file contents, the order's
owner), writes inside one unit of work together with its events, and leaves slow work (PDFs) to a worker.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import Envelope, uuid7
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.keys import load_or_create_keys
from boxoffice.platform.metrics import counter
from boxoffice.platform.objectstore import announce_object_created
from boxoffice.platform.problems import ServiceUnavailable
from boxoffice.tickets import domain, store
from boxoffice.tickets.keys import TicketKeyRing
from boxoffice.tickets.pdf import TicketDocument

if TYPE_CHECKING:
    from boxoffice.tickets.service import TicketsService

log = structlog.get_logger("boxoffice.tickets")

TICKETS_TOPIC = "tickets"
BOOKINGS_GROUP = "tickets.bookings"
ISSUED = counter("boxoffice_tickets_issued_total", "Tickets issued (PDF stored)")
VOIDED = counter("boxoffice_tickets_voided_total", "Tickets voided by a cancelled order")
CHECKINS = counter("boxoffice_checkins_total", "Check-in attempts", ("outcome",))
UPLOADS = counter("boxoffice_id_uploads_total", "ID-proof uploads accepted")

_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


async def load_keyring(svc: TicketsService) -> TicketKeyRing:
    """The active ticket keys; the first start makes one (short key ids: one travels in every code)."""
    return TicketKeyRing(await load_or_create_keys(svc.db, svc.settings.secret, now=svc.now(), kid_length=12))


# ticket-bookings.
@dataclass(frozen=True, slots=True)
class Booking:
    order_id: str
    user_id: str
    subject_id: str
    status: str
    kind: str
    holder_name: str
    details: dict[str, Any]
    data: dict[str, Any]

    @classmethod
    def parse(cls, envelope: Envelope) -> Booking | None:
        data = envelope.data
        status = data.get("status") or {"booking.order-cancelled": "cancelled"}.get(envelope.type, "confirmed")
        required = (data.get("order_id"), data.get("user_id"), data.get("event_id"))
        if not all(isinstance(v, str) and v for v in required) or status not in ("confirmed", "cancelled"):
            return None
        kind = "train" if data.get("kind") == "train" else "event"
        details = data.get(kind) if isinstance(data.get(kind), dict) else {}
        return cls(
            order_id=data["order_id"],
            user_id=data["user_id"],
            subject_id=data["event_id"],
            status=status,
            kind=kind,
            holder_name=str(data.get("holder_name") or "Ticket holder")[:200],
            details=dict(details or {}),
            data=data,
        )


async def apply_booking(svc: TicketsService, envelope: Envelope) -> None:
    """Issue a confirmed order's tickets, or void a cancelled order's, exactly once per event."""
    booking = Booking.parse(envelope)
    issued = 0
    async with svc.db.uow() as uow:
        if not await claim_inbox(uow.conn, BOOKINGS_GROUP, envelope.id):
            return
        if booking is None:
            log.error("malformed ticket-bookings event skipped", event_id=envelope.id, type=envelope.type)
        elif booking.status == "confirmed":
            issued = await _issue_tickets(svc, uow.conn, booking)
        else:
            await _void_tickets(svc, uow, booking)
        await uow.commit()
    if issued:
        svc.pdf_signal.set()


async def _issue_tickets(svc: TicketsService, conn: Any, booking: Booking) -> int:
    order = await store.order_by_id(conn, booking.order_id)
    if order is not None:
        # Confirmed again under another event id (a re-sent confirmation), or cancelled before the
        # confirmation arrived: either way no second set and no tickets for a cancelled order.
        return 0
    now = svc.now()
    await store.insert_order(
        conn,
        id=booking.order_id,
        user_id=booking.user_id,
        status="confirmed",
        kind=booking.kind,
        subject_id=booking.subject_id,
        holder_name=booking.holder_name,
        details=json.dumps(booking.details),
        updated_at=now,
    )
    rows = []
    for line in domain.plan_tickets(booking.data):
        ticket_id = uuid7()
        code = svc.keyring().sign(
            ticket_id=ticket_id, subject_id=booking.subject_id, seat=line.label, holder=booking.holder_name, version=1
        )
        rows.append(
            {
                "id": ticket_id,
                "order_id": booking.order_id,
                "line_no": line.line_no,
                "user_id": booking.user_id,
                "kind": booking.kind,
                "subject_id": booking.subject_id,
                "seat_id": line.seat_id,
                "label": line.label,
                "section": line.section,
                "holder_name": booking.holder_name,
                "version": 1,
                "code": code,
                "status": "valid",
                "created_at": now,
            }
        )
    await store.insert_tickets(conn, rows)
    return len(rows)


async def _void_tickets(svc: TicketsService, uow: Any, booking: Booking) -> None:
    now = svc.now()
    order = await store.order_by_id(uow.conn, booking.order_id)
    if order is None:  # the cancellation overtook the confirmation: remember it, so none are issued later
        await store.insert_order(
            uow.conn,
            id=booking.order_id,
            user_id=booking.user_id,
            status="cancelled",
            kind=booking.kind,
            subject_id=booking.subject_id,
            holder_name=booking.holder_name,
            details=json.dumps(booking.details),
            updated_at=now,
        )
        return
    await store.update_order(uow.conn, booking.order_id, status="cancelled", updated_at=now)
    for victim in await store.void_tickets(uow.conn, booking.order_id, now):
        data = {"ticket_id": victim.id, "order_id": booking.order_id, "event_id": victim.subject_id}
        uow.publish(TICKETS_TOPIC, "tickets.voided", key=booking.order_id, data={**data, "user_id": victim.user_id})
        VOIDED.inc()


# PDFs.
def _document(row: Any) -> TicketDocument:
    return TicketDocument(
        ticket_id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        holder=row.holder_name,
        code=row.code,
        label=row.label,
        section=row.section,
        details=json.loads(row.details),
    )


async def render_pending_pdfs(svc: TicketsService, *, batch: int) -> int:
    """Render and store the PDFs of tickets that have none; returns how many it looked at.

    Object first, then the row and the events in one transaction (see ``platform.objectstore``): a crash in
    between leaves a PDF that the next round overwrites under the same key. Two renderers may both store
    one ticket's PDF; the conditional update lets only the first announce it.
    """
    async with svc.db.read() as conn:
        rows = await store.tickets_without_pdf(conn, batch)
    if not rows:
        return 0
    docs = [_document(row) for row in rows]
    pdfs = await svc.render(docs)
    rendered = [(row, pdf) for row, pdf in zip(rows, pdfs, strict=True) if pdf is not None]
    stored = await asyncio.gather(
        *(
            svc.objects.put(domain.ticket_pdf_key(row.order_id, row.id), pdf, content_type="application/pdf")
            for row, pdf in rendered
        )
    )
    issued = 0
    async with svc.db.uow() as uow:
        for (row, _), obj in zip(rendered, stored, strict=True):
            if not await store.set_pdf_key(uow.conn, row.id, obj.key):
                continue
            announce_object_created(uow, obj, region=svc.objects.region)
            data = {"ticket_id": row.id, "order_id": row.order_id, "event_id": row.subject_id, "user_id": row.user_id}
            uow.publish(TICKETS_TOPIC, "tickets.issued", key=row.order_id, data=data)
            issued += 1
        await uow.commit()
    ISSUED.inc(issued)
    return len(rows)


async def ticket_pdf(svc: TicketsService, ticket_id: str, user: Principal) -> bytes:
    async with svc.db.read() as conn:
        row = await store.ticket_by_id(conn, ticket_id)
    if row is None:
        raise domain.TicketNotFound("No ticket with this id.")
    if row.user_id != user.id and not user.has_role("admin"):
        raise domain.NotYourTicket("This ticket belongs to someone else.")
    if row.pdf_key is None:
        raise domain.PdfNotReady("The PDF is being prepared; try again in a moment.", headers={"Retry-After": "1"})
    return await svc.objects.get(row.pdf_key)


# Check-in.
async def check_in(svc: TicketsService, *, code: str, by: Principal) -> str:
    """Admit the ticket a code names, once. Returns the ticket id."""
    try:
        claims = svc.keyring().verify(code)
    except domain.InvalidTicketCode:
        CHECKINS.labels("invalid").inc()
        raise
    async with svc.db.uow() as uow:
        if await store.admit_ticket(uow.conn, claims.ticket_id, version=claims.version, by=by.id, now=svc.now()):
            row = await store.ticket_by_id(uow.conn, claims.ticket_id)
            data = {"ticket_id": row.id, "order_id": row.order_id, "event_id": row.subject_id, "user_id": row.user_id}
            uow.publish(TICKETS_TOPIC, "tickets.checked-in", key=row.order_id, data={**data, "gate_user": by.id})
            await uow.commit()
            CHECKINS.labels("admitted").inc()
            return str(claims.ticket_id)
        row = await store.ticket_by_id(uow.conn, claims.ticket_id)
    outcome = _refusal(row, code)
    CHECKINS.labels(outcome.slug).inc()
    raise outcome


def _refusal(row: Any, code: str) -> domain.InvalidTicketCode | domain.TicketVoided | domain.AlreadyUsed:
    if row is None or row.code != code:  # signed by us, but not this ticket's current code (reissued)
        return domain.InvalidTicketCode("This code is not the ticket's current code.")
    if row.status == "voided":
        return domain.TicketVoided("This ticket was voided: its order was cancelled.")
    when = row.used_at.isoformat() if row.used_at else "earlier"
    return domain.AlreadyUsed(f"This ticket was already used ({when}).", used_at=when)


# Queries.
def pdf_url(row: Any) -> str | None:
    return f"/api/tickets/{row.id}/pdf" if row.pdf_key else None


async def order_tickets(svc: TicketsService, order_id: str) -> list[Any]:
    async with svc.db.read() as conn:
        return await store.tickets_of_order(conn, order_id)


async def my_tickets(
    svc: TicketsService, user: Principal, *, order_id: str | None, cursor: str | None, limit: int
) -> list[Any]:
    async with svc.db.read() as conn:
        return await store.tickets_of_user(conn, user.id, order_id=order_id, after=cursor, limit=limit)


# Uploads.
async def _owned_order(svc: TicketsService, order_id: str, user: Principal) -> None:
    """Booking owns orders: ask it whether this one exists and is the caller's."""
    not_found = domain.OrderNotFound("You have no order with this id.")
    if not _ORDER_ID.match(order_id):
        raise not_found
    try:
        response = await svc.clients.get("booking").get(f"/internal/orders/{order_id}")
    except LookupError:
        raise ServiceUnavailable("Orders cannot be checked right now; try again later.") from None
    if response.status_code == 404:
        raise not_found
    if response.status_code != 200:
        log.warning("booking answered unexpectedly", status=response.status_code, order_id=order_id)
        raise ServiceUnavailable("Orders cannot be checked right now; try again later.")
    if response.json().get("user_id") != user.id:
        raise not_found


async def create_upload(svc: TicketsService, user: Principal, *, order_id: str, filename: str, data: bytes) -> Any:
    """Store an ID proof for the caller's order; the ticket generator verifies it after the commit."""
    limit = svc.config.max_upload_bytes
    if len(data) > limit:
        raise domain.UploadTooLarge(f"The file is larger than {limit // (1024 * 1024)} MB.")
    content_type = domain.sniff_content_type(data[: domain.SNIFF_BYTES])
    if content_type is None:
        raise domain.UnsupportedUpload("Upload a PDF, PNG or JPEG file (judged by its content, not its name).")
    await _owned_order(svc, order_id, user)
    upload_id = uuid7()
    stored = await svc.objects.put(domain.upload_key(user.id, upload_id), data, content_type=content_type)
    async with svc.db.uow() as uow:
        await store.insert_upload(
            uow.conn,
            id=upload_id,
            user_id=user.id,
            order_id=order_id,
            object_key=stored.key,
            filename=(filename or "upload")[:255],
            size=stored.size,
            content_type=content_type,
            status="pending",
            created_at=svc.now(),
        )
        announce_object_created(uow, stored, region=svc.objects.region)
        await uow.commit()
    UPLOADS.inc()
    async with svc.db.read() as conn:
        row = await store.upload_by_id(conn, upload_id)
    return row


async def get_upload(svc: TicketsService, upload_id: str, user: Principal) -> Any:
    async with svc.db.read() as conn:
        row = await store.upload_by_id(conn, upload_id)
    if row is None or row.user_id != user.id:
        raise domain.UploadNotFound("You have no upload with this id.")
    return row
