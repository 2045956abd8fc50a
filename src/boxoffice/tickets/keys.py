"""Ticket codes signed with the tickets service's own Ed25519 keys (``platform.keys``, not identity's).

The public halves are published at ``GET /api/tickets/keys`` as a JWKS, so a gate scanner can verify codes
offline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boxoffice.platform.db import Database
from boxoffice.platform.keys import SigningKey, load_or_create_keys
from boxoffice.tickets.codes import TicketClaims, sign_code, verify_code

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


class TicketKeys:
    """Where the key ring is once tickets has started: it lives in the database, so it is loaded at
    start-up (``load``), after the dependencies that refer to this holder were built."""

    def __init__(self, ring: TicketKeyRing | None = None) -> None:
        self._ring = ring

    @property
    def ring(self) -> TicketKeyRing:
        if self._ring is None:
            raise RuntimeError("tickets has not started: no signing keys loaded")
        return self._ring

    async def load(self, db: Database, secret: bytes, *, now: datetime) -> None:
        """The active ticket keys; the first start makes one (short key ids: one travels in every code)."""
        self._ring = TicketKeyRing(await load_or_create_keys(db, secret, now=now, kid_length=12))
