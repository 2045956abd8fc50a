"""The Ed25519 keys identity signs access tokens with, and the JWKS that publishes their public halves.

Private keys are stored encrypted with ``BOXOFFICE_SECRET_KEY`` (PKCS#8); every other service verifies with
the public keys only, fetched from ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from boxoffice.platform.auth import ALGORITHM, AUDIENCE, ISSUER


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    public_jwk: dict[str, Any]


def generate_key() -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    raw_public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = uuid.uuid4().hex
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw_public), "kid": kid, "alg": ALGORITHM, "use": "sig"}
    return SigningKey(kid, private_key, jwk)


def encrypt_private(key: SigningKey, secret: bytes) -> str:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    ).decode()


def load_key(kid: str, private_pem: str, public_jwk: str, secret: bytes) -> SigningKey:
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=secret)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError(f"signing key {kid} is not an Ed25519 key")
    return SigningKey(kid, private_key, json.loads(public_jwk))


class KeyRing:
    """The active keys; the newest signs, all verify (so a rotation does not log anybody out)."""

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = keys

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.keys]}

    def issue_access_token(
        self, *, user_id: str, email: str, name: str, roles: list[str], now: datetime, ttl: timedelta
    ) -> str:
        signer = self.keys[0]
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "email": email,
            "name": name,
            "roles": roles,
            "typ": "access",
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid})
