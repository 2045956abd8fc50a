"""Ticket codes signed with the tickets service's own Ed25519 keys (``platform.keys``, not identity's).

The public halves are published at ``GET /api/tickets/keys`` as a JWKS, so a gate scanner can verify codes
offline.
"""

from __future__ import annotations

from typing import Any

from boxoffice.platform.keys import SigningKey
from boxoffice.tickets.domain import TicketClaims, sign_code, verify_code

TicketKey = SigningKey


class TicketKeyRing:
    """The active keys: the newest signs, all verify (a rotation keeps printed tickets valid)."""

    def __init__(self, keys: list[TicketKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = keys
        self._public = {k.kid: k.public_key for k in keys}

    @property
    def signer(self) -> TicketKey:
        return self.keys[0]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.keys]}

    def sign(self, *, ticket_id: str, subject_id: str, seat: str, holder: str, version: int) -> str:
        claims = TicketClaims(ticket_id, subject_id, seat, holder, version, self.signer.kid)
        return sign_code(claims, self.signer.private_key)

    def verify(self, code: str) -> TicketClaims:
        return verify_code(code, self._public)
