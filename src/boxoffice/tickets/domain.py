"""Ticket rules, free of I/O: tickets and uploads, the gate's verdict, reading ticket-bookings records,
which tickets an order gets, what an ID proof must be, and receipts. The signed code is ``codes``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from boxoffice.platform.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from boxoffice.tickets.codes import InvalidTicketCode

RECEIPT_PREFIX = "tickets/"


# Errors a client sees.
class AlreadyUsed(Conflict):
    slug, title = "already-used", "Ticket already used"


class TicketVoided(Conflict):
    slug, title = "voided", "Ticket voided"


class TicketUsedNoRefund(Conflict):
    """Booking's refund fence met a ticket of the order that was already admitted at a gate."""

    slug, title = "ticket-used", "A ticket of this order was used"


class WrongEvent(Conflict):
    slug, title = "wrong-event", "Ticket for another event or train"


class TicketNotFound(NotFound):
    slug, title = "ticket-not-found", "Ticket not found"


class NotYourTicket(Forbidden):
    slug, title = "not-your-ticket", "Not your ticket"


class PdfNotReady(NotFound):
    slug, title = "pdf-not-ready", "PDF not ready yet"


class UploadNotFound(NotFound):
    slug, title = "upload-not-found", "Upload not found"


class OrderNotFound(NotFound):
    slug, title = "order-not-found", "Order not found"


class UploadTooLarge(PayloadTooLarge):
    slug, title = "upload-too-large", "File too large"


class UnsupportedUpload(UnsupportedMediaType):
    slug, title = "unsupported-file-type", "Unsupported file type"


# Tickets and uploads.
class TicketStatus(StrEnum):
    VALID = "valid"
    USED = "used"
    VOIDED = "voided"


class UploadStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    order_id: str
    line_no: int
    user_id: str
    kind: str  # event | train
    subject_id: str
    """The event id, or the run id for a train."""
    seat_id: str | None
    label: str
    section: str | None
    holder_name: str
    version: int
    code: str
    status: TicketStatus
    created_at: datetime
    pdf_key: str | None = None
    used_at: datetime | None = None
    checked_in_by: str | None = None
    voided_at: datetime | None = None
    checkin_gate: str | None = None
    checkin_nonce: str | None = None


@dataclass(frozen=True, slots=True)
class TicketToRender:
    """A ticket without its PDF yet, with the order's event or train details to print."""

    ticket: Ticket
    details: dict[str, Any]
    number: str = ""  # the order's number


@dataclass(frozen=True, slots=True)
class TicketList:
    items: list[Ticket]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    user_id: str
    order_id: str
    object_key: str
    filename: str
    size: int
    content_type: str
    status: UploadStatus
    created_at: datetime
    reason: str | None = None
    receipt_key: str | None = None
    checked_at: datetime | None = None


# Commands.
@dataclass(frozen=True, slots=True)
class ListTickets:
    order_id: str | None = None
    cursor: str | None = None
    """The last ticket id of the previous page."""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class CheckIn:
    code: str
    event_id: str | None = None
    """The event (or train run) the gate admits to; a ticket for another is refused (``WrongEvent``)."""
    gate: str | None = None
    """The gate's name, as staff picked it (recorded with the admission)."""
    nonce: str | None = None
    """The scan's client nonce: a retry of the scan that admitted the ticket repeats it and is answered
    "admitted" again (marked as a retry) instead of "already used"."""


@dataclass(frozen=True, slots=True)
class VoidOrder:
    """Booking's refund fence: void every ticket of the order, now and for good, unless one was used."""

    order_id: str
    user_id: str
    kind: str  # event | train
    subject_id: str
    holder_name: str

    def as_booking(self) -> Booking:
        """The fence as the cancelled order tickets remembers (no tickets are issued for it later)."""
        return Booking(
            order_id=self.order_id,
            user_id=self.user_id,
            subject_id=self.subject_id,
            status="cancelled",
            kind=self.kind,
            holder_name=self.holder_name[:200],
            details={},
            data={},
        )


@dataclass(frozen=True, slots=True)
class CreateUpload:
    order_id: str
    filename: str
    data: bytes


# The gate.
@dataclass(frozen=True, slots=True)
class Admission:
    """A ticket admitted at a gate, with what the gate shows staff."""

    ticket: Ticket
    event_name: str
    retry: bool = False
    """True when this answers a retry of the scan that admitted the ticket (same nonce, same staff)."""


def subject_name(kind: str, details: Mapping[str, Any]) -> str:
    """The event's name, or the train's number and name, from the order's details."""
    if kind == "train":
        return " ".join(str(p) for p in (details.get("train_number"), details.get("name")) if p) or "Train"
    return str(details.get("name") or "Event")


def is_retry(ticket: Ticket | None, cmd: CheckIn, *, gate_user: str) -> bool:
    """Whether a scan that did not admit is a retry of the one that did: the same code, nonce and staff."""
    return (
        ticket is not None
        and cmd.nonce is not None
        and ticket.status == TicketStatus.USED
        and ticket.code == cmd.code
        and ticket.checkin_nonce == cmd.nonce
        and ticket.checked_in_by == gate_user
    )


def refusal(ticket: Ticket | None, code: str) -> InvalidTicketCode | TicketVoided | AlreadyUsed:
    """Why a genuine code that did not admit anyone was refused (the ticket as it stands after the attempt)."""
    if ticket is None or ticket.code != code:  # signed by us, but not this ticket's current code (reissued)
        return InvalidTicketCode("This code is not the ticket's current code.")
    if ticket.status == TicketStatus.VOIDED:
        return TicketVoided("This ticket was voided: its order was cancelled.")
    when = ticket.used_at.isoformat() if ticket.used_at else "earlier"
    return AlreadyUsed(f"This ticket was already used ({when}).", used_at=when)


# ticket-bookings.
@dataclass(frozen=True, slots=True)
class Booking:
    """A ``ticket-bookings`` record, as tickets needs it (docs/contracts.md)."""

    order_id: str
    user_id: str
    subject_id: str
    status: str  # confirmed | cancelled
    kind: str  # event | train
    holder_name: str
    details: dict[str, Any]
    """The record's ``event`` or ``train`` object: what a ticket prints."""
    data: Mapping[str, Any] = field(repr=False)
    number: str = ""
    """The order number a buyer reads out (booking gives it)."""
    email: str = ""
    """Where the order's e-mails go; empty in records from before booking sent it (no e-mail then)."""
    amount_minor: int = 0
    currency: str = ""


def parse_booking(event_type: str, data: Mapping[str, Any]) -> Booking | None:
    """The booking a ``ticket-bookings`` event carries, or None when it is malformed."""
    status = data.get("status") or {"booking.order-cancelled": "cancelled"}.get(event_type, "confirmed")
    order_id, user_id, subject_id = data.get("order_id"), data.get("user_id"), data.get("event_id")
    if not (isinstance(order_id, str) and order_id and isinstance(user_id, str) and user_id):
        return None
    if not (isinstance(subject_id, str) and subject_id) or status not in ("confirmed", "cancelled"):
        return None
    kind = "train" if data.get("kind") == "train" else "event"
    details = data.get(kind)
    return Booking(
        order_id=order_id,
        user_id=user_id,
        subject_id=subject_id,
        status=status,
        kind=kind,
        holder_name=str(data.get("holder_name") or "Ticket holder")[:200],
        details=dict(details) if isinstance(details, Mapping) else {},
        data=data,
        number=str(data.get("number") or "")[:16],
        email=str(data.get("email") or "")[:320],
        amount_minor=data["amount_minor"] if isinstance(data.get("amount_minor"), int) else 0,
        currency=str(data.get("currency") or "")[:3],
    )


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """What tickets knows of an order, from its ``ticket-bookings`` records."""

    id: str
    status: str
    kind: str
    holder_name: str
    details: dict[str, Any]
    number: str
    email: str
    amount_minor: int
    currency: str


# Mail to buyers.
@dataclass(frozen=True, slots=True)
class Letter:
    """One e-mail about an order: its confirmation (with the tickets) or its refund."""

    order_id: str
    kind: str  # confirmation | refund
    recipient: str
    subject: str
    body: str
    attachments: tuple[tuple[str, str], ...] = ()
    """(file name, object key) of each PDF to attach."""


@dataclass(frozen=True, slots=True)
class QueuedLetter:
    id: int
    letter: Letter


# Which tickets an order gets.
@dataclass(frozen=True, slots=True)
class TicketLine:
    line_no: int
    seat_id: str | None
    label: str
    section: str | None
    passenger: str | None = None  # trains: who travels on this seat; the ticket is theirs


GENERAL_ADMISSION = "General admission"


def plan_tickets(data: Mapping[str, Any]) -> list[TicketLine]:
    """One ticket per seat, or per general-admission unit, of a ``ticket-bookings`` record.

    The contract sends one item per ticket; a record with fewer items than ``ticket_count`` (the seeds'
    shape, without items) gets general-admission tickets for the rest.
    """
    items = [i for i in data.get("items") or [] if isinstance(i, Mapping)]
    lines = [
        TicketLine(
            n,
            str(item["seat_id"]) if item.get("seat_id") else None,
            str(item.get("label") or item.get("section") or GENERAL_ADMISSION)[:100],
            str(item["section"])[:100] if item.get("section") else None,
            str(item["passenger"])[:200] if item.get("passenger") else None,
        )
        for n, item in enumerate(items, start=1)
    ]
    count = int(data.get("ticket_count") or 0)
    lines += [TicketLine(n, None, GENERAL_ADMISSION, None) for n in range(len(lines) + 1, count + 1)]
    return lines


def seat_text(line_label: str, kind: str) -> str:
    return f"{'Seat' if kind == 'train' else 'Place'} {line_label}"


# Uploads: what a file is, judged by its first bytes, never by its name.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
SNIFF_BYTES = 8


def sniff_content_type(head: bytes) -> str | None:
    """``application/pdf``, ``image/png`` or ``image/jpeg`` by magic bytes; None for anything else."""
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def check_upload(data: bytes, *, max_bytes: int) -> str:
    """The content type of an acceptable ID proof, judged by its content; raises for anything else."""
    if len(data) > max_bytes:
        raise UploadTooLarge(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
    content_type = sniff_content_type(data[:SNIFF_BYTES])
    if content_type is None:
        raise UnsupportedUpload("Upload a PDF, PNG or JPEG file (judged by its content, not its name).")
    return content_type


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # "verified" | "rejected"
    content_type: str | None
    reason: str


def judge_upload(data: bytes, *, max_bytes: int) -> Verdict:
    """The ticket generator's check of an ID proof: size first, then what the content really is."""
    if len(data) > max_bytes:
        return Verdict("rejected", None, f"larger than {max_bytes} bytes")
    if not data:
        return Verdict("rejected", None, "empty file")
    content_type = sniff_content_type(data[:SNIFF_BYTES])
    if content_type is None:
        return Verdict("rejected", None, "not a PDF, PNG or JPEG file")
    return Verdict("verified", content_type, "ok")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_filename(name: str) -> str:
    """The name a customer's file had, to show back: no control characters, at most 255 characters."""
    return _CONTROL.sub("", name).strip()[:255] or "upload"


def upload_key(user_id: str, upload_id: str) -> str:
    return f"uploads/{user_id}/{upload_id}"


def is_generated(key: str) -> bool:
    """Objects the ticket generator wrote itself: its trigger excludes them so it never triggers itself."""
    return key.startswith(RECEIPT_PREFIX)


def receipt_key(object_key: str) -> str:
    """``tickets/{original name}_TICKET.txt`` as in the seeds; the name is the key's last segment (for an
    upload, its id, so two uploads never share a receipt). Deterministic: a retry overwrites, never adds."""
    return f"{RECEIPT_PREFIX}{object_key.rsplit('/', 1)[-1]}_TICKET.txt"


def receipt_text(
    *, object_key: str, size: int, verdict: Verdict, upload_id: str | None, order_id: str | None, pdfs: list[str]
) -> str:
    """The receipt, built only from the upload and the order: the same input gives the same bytes."""
    lines = [
        "boxoffice ticket receipt",
        f"source: {object_key}",
        f"size: {size} bytes",
        f"content type: {verdict.content_type or 'unknown'}",
        f"status: {verdict.status.upper()} ({verdict.reason})",
    ]
    if upload_id:
        lines.append(f"upload: {upload_id}")
    if order_id:
        lines.append(f"order: {order_id}")
    lines.append("tickets:" if pdfs else "tickets: none issued yet")
    lines += [f"  {pdf}" for pdf in pdfs]
    return "\n".join(lines) + "\n"


def ticket_pdf_key(order_id: str, ticket_id: str) -> str:
    return f"tickets/{order_id}/{ticket_id}.pdf"
