"""Ticket rules, free of I/O: the signed ticket code, which tickets an order gets, uploads and receipts.

The ticket code is what the QR carries: ``base64url(payload) "." base64url(signature)``, the payload a
compact JSON object ``{"t": ticket id, "e": event or run id, "s": seat label, "h": holder, "n": version,
"k": key id}`` and the signature Ed25519 over the payload bytes. A gate verifies it offline with the public
keys from ``GET /api/tickets/keys``; any altered character makes it invalid (the base64 must also be the one
canonical encoding of its bytes, so not even the unused low bits of the last character may change).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from boxoffice.platform.problems import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType

MAX_CODE_LENGTH = 1200  # a QR of version 25 at level M still holds it; ours are ~300 characters
RECEIPT_PREFIX = "tickets/"


# Errors a client sees.
class InvalidTicketCode(BadRequest):
    slug, title = "invalid-code", "Invalid ticket code"

    def __init__(self, detail: str = "This is not a valid boxoffice ticket.") -> None:
        super().__init__(detail)


class AlreadyUsed(Conflict):
    slug, title = "already-used", "Ticket already used"


class TicketVoided(Conflict):
    slug, title = "voided", "Ticket voided"


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


# The signed code.
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def b64url_decode_strict(text: str) -> bytes:
    """Decode unpadded base64url, refusing every string that is not the canonical encoding of its bytes."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if b64url(data) != text:
        raise ValueError("not the canonical encoding")
    return data


@dataclass(frozen=True, slots=True)
class TicketClaims:
    ticket_id: str
    subject_id: str
    """The event id, or the run id for a train."""
    seat: str
    holder: str
    version: int
    kid: str

    def payload(self) -> bytes:
        body = {"t": self.ticket_id, "e": self.subject_id, "s": self.seat, "h": self.holder, "n": self.version}
        body["k"] = self.kid
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def sign_code(claims: TicketClaims, private_key: Ed25519PrivateKey) -> str:
    payload = claims.payload()
    return f"{b64url(payload)}.{b64url(private_key.sign(payload))}"


def verify_code(code: str, public_keys: Mapping[str, Ed25519PublicKey]) -> TicketClaims:
    """The claims of a genuine code; raises ``InvalidTicketCode`` for anything forged, altered or malformed."""
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH or code.count(".") != 1:
        raise InvalidTicketCode()
    encoded_payload, encoded_signature = code.split(".")
    try:
        payload = b64url_decode_strict(encoded_payload)
        signature = b64url_decode_strict(encoded_signature)
        body = json.loads(payload)
    except ValueError:
        raise InvalidTicketCode() from None
    if not isinstance(body, dict) or not isinstance(body.get("k"), str):
        raise InvalidTicketCode()
    key = public_keys.get(body["k"])
    if key is None:
        raise InvalidTicketCode("This ticket was signed with a key we do not know.")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise InvalidTicketCode() from None
    return _claims(body)


def _claims(body: dict[str, Any]) -> TicketClaims:
    fields = {"t": str, "e": str, "s": str, "h": str, "n": int, "k": str}
    if set(body) != set(fields) or any(not isinstance(body[k], t) for k, t in fields.items()):
        raise InvalidTicketCode()
    return TicketClaims(body["t"], body["e"], body["s"], body["h"], body["n"], body["k"])


# Which tickets an order gets.
@dataclass(frozen=True, slots=True)
class TicketLine:
    line_no: int
    seat_id: str | None
    label: str
    section: str | None


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
