"""Tickets' request and response models (the public shapes are ARCHITECTURE.md section 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from boxoffice.platform.requests import RequestBody
from boxoffice.tickets.codes import MAX_CODE_LENGTH
from boxoffice.tickets.domain import Admission, Ticket, TicketList, TicketStatus, Upload

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class CheckInIn(RequestBody):
    code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH)
    event_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="the event (or train run) this gate admits to: a ticket for another is refused "
        "(409 `/wrong-event`); gates should always send it",
    )
    gate: str | None = Field(default=None, min_length=1, max_length=64, description="the gate's name")
    nonce: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="a random value per scan, repeated when the gate retries the same scan: a retry of the scan "
        "that admitted the ticket is answered `admitted` again with `retry: true`, not 409 `/already-used`",
    )


class CheckInOut(BaseModel):
    ticket_id: str
    status: str = Field(description="always `admitted`; every refusal is a problem")
    retry: bool = Field(description="true when this answers a retry of the scan that admitted the ticket")
    event_id: str = Field(description="the event id, or the run id for a train")
    event_name: str
    kind: str = Field(description="event | train")
    holder_name: str
    section: str | None
    seat: str = Field(description="the seat's label (coach and seat for a train; the area for general admission)")
    gate: str | None

    @classmethod
    def of(cls, admission: Admission) -> CheckInOut:
        ticket = admission.ticket
        return cls(
            ticket_id=ticket.id,
            status="admitted",
            retry=admission.retry,
            event_id=ticket.subject_id,
            event_name=admission.event_name,
            kind=ticket.kind,
            holder_name=ticket.holder_name,
            section=ticket.section,
            seat=ticket.label,
            gate=ticket.checkin_gate,
        )


class VoidOrderIn(RequestBody):
    """Booking's refund fence (docs/contracts.md): what tickets remembers of an order it may not know yet."""

    user_id: str = Field(min_length=1, max_length=64)
    kind: Literal["event", "train"]
    event_id: str = Field(min_length=1, max_length=64, description="the event id, or the run id for a train")
    holder_name: str = Field(max_length=200)


class VoidOrderOut(BaseModel):
    order_id: str
    voided: int = Field(description="tickets this call voided (0 on a repeat or before any were issued)")


class TicketRef(BaseModel):
    """A ticket as an order shows it (``GET /api/orders/{id}``'s ``tickets``)."""

    id: str
    status: str = Field(description="valid | used | voided")
    code: str
    pdf_url: str | None

    @classmethod
    def of(cls, ticket: Ticket) -> TicketRef:
        return cls(id=ticket.id, status=ticket.status.value, code=ticket.code, pdf_url=pdf_url(ticket))


def pdf_url(ticket: Ticket) -> str | None:
    """Where the ticket's PDF is, while there is one to give (none for a voided ticket)."""
    return f"/api/tickets/{ticket.id}/pdf" if ticket.pdf_key and ticket.status != TicketStatus.VOIDED else None


class TicketRefs(BaseModel):
    items: list[TicketRef]

    @classmethod
    def of(cls, tickets: list[Ticket]) -> TicketRefs:
        return cls(items=[TicketRef.of(t) for t in tickets])


class TicketOut(TicketRef):
    order_id: str
    kind: str
    event_id: str
    seat_id: str | None
    label: str
    section: str | None
    holder_name: str

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:
        return cls(
            id=ticket.id,
            status=ticket.status.value,
            code=ticket.code,
            pdf_url=pdf_url(ticket),
            order_id=ticket.order_id,
            kind=ticket.kind,
            event_id=ticket.subject_id,
            seat_id=ticket.seat_id,
            label=ticket.label,
            section=ticket.section,
            holder_name=ticket.holder_name,
        )


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: TicketList) -> TicketPage:
        return cls(items=[TicketOut.of(t) for t in page.items], next_cursor=page.next_cursor)


class UploadCreated(BaseModel):
    id: str
    status: str
    size: int
    content_type: str

    @classmethod
    def of(cls, upload: Upload) -> UploadCreated:
        return cls(id=upload.id, status=upload.status.value, size=upload.size, content_type=upload.content_type)


class UploadOut(BaseModel):
    id: str
    status: str = Field(description="pending | verified | rejected")
    receipt_key: str | None
    order_id: str
    content_type: str
    size: int

    @classmethod
    def of(cls, upload: Upload) -> UploadOut:
        return cls(
            id=upload.id,
            status=upload.status.value,
            receipt_key=upload.receipt_key,
            order_id=upload.order_id,
            content_type=upload.content_type,
            size=upload.size,
        )


class Jwk(BaseModel):
    """An Ed25519 public key (RFC 8037)."""

    model_config = ConfigDict(extra="allow")

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    keys: list[Jwk]
