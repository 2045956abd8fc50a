"""The signed ticket code: what a ticket's QR carries, verifiable offline. No I/O.

``base64url(payload) "." base64url(signature)``, the payload a compact JSON object ``{"t": ticket id, "e":
event or run id, "s": seat label, "h": holder, "n": version, "k": key id}`` and the signature Ed25519 over the
payload bytes. A gate verifies it offline with the public keys from ``GET /api/tickets/keys``; any altered
character makes it invalid (the base64 must also be the one canonical encoding of its bytes, so not even the
unused low bits of the last character may change).
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

from boxoffice.platform.problems import BadRequest

MAX_CODE_LENGTH = 1200  # a QR of version 25 at level M still holds it; ours are ~300 characters


class InvalidTicketCode(BadRequest):
    slug, title = "invalid-code", "Invalid ticket code"

    def __init__(self, detail: str = "This is not a valid boxoffice ticket.") -> None:
        super().__init__(detail)


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
