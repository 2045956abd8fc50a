"""The Ed25519 keys the tickets service signs ticket codes with (its own, not identity's).

Private keys are stored encrypted with ``BOXOFFICE_SECRET_KEY`` (PKCS#8); the public halves are published at
``GET /api/tickets/keys`` as a JWKS, so a gate scanner can verify codes offline.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from boxoffice.tickets.domain import TicketClaims, b64url, sign_code, verify_code


@dataclass(frozen=True, slots=True)
class TicketKey:
    kid: str
    private_key: Ed25519PrivateKey
    public_jwk: dict[str, Any]

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def generate_key() -> TicketKey:
    private_key = Ed25519PrivateKey.generate()
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = uuid.uuid4().hex[:12]  # short: it travels in every code
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid, "alg": "EdDSA", "use": "sig"}
    return TicketKey(kid, private_key, jwk)


def encrypt_private(key: TicketKey, secret: bytes) -> str:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(secret)
    ).decode()


def load_key(kid: str, private_pem: str, public_jwk: str, secret: bytes) -> TicketKey:
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=secret)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError(f"ticket key {kid} is not an Ed25519 key")
    return TicketKey(kid, private_key, json.loads(public_jwk))


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
