"""Ed25519 signing keys a service keeps for itself (identity signs access tokens, tickets signs codes).

Made on the first start, stored in the service's ``signing_keys`` table with the private half encrypted
with ``BOXOFFICE_SECRET_KEY`` (PKCS#8), published as a JWKS so that anyone verifies with the public half.
Every key not retired stays valid for verifying; the newest signs, so a rotation invalidates nothing.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Column, MetaData, String, Table, Text, insert, select

from boxoffice.platform.db import Database, UtcDateTime

ALGORITHM = "EdDSA"


def add_signing_keys_table(metadata: MetaData) -> Table:
    return Table(
        "signing_keys",
        metadata,
        Column("kid", String(64), primary_key=True),
        Column("private_pem", Text, nullable=False),  # PKCS#8, encrypted with BOXOFFICE_SECRET_KEY
        Column("public_jwk", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("retired_at", UtcDateTime, nullable=True),
    )


_metadata = MetaData()
SIGNING_KEYS = add_signing_keys_table(_metadata)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    public_jwk: dict[str, Any]

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def generate_key(*, kid_length: int = 32) -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = uuid.uuid4().hex[:kid_length]
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid, "alg": ALGORITHM, "use": "sig"}
    return SigningKey(kid, private_key, jwk)


def encrypt_private(key: SigningKey, secret: bytes) -> str:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(secret)
    ).decode()


def load_key(kid: str, private_pem: str, public_jwk: str, secret: bytes) -> SigningKey:
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=secret)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError(f"signing key {kid} is not an Ed25519 key")
    return SigningKey(kid, private_key, json.loads(public_jwk))


async def load_or_create_keys(db: Database, secret: bytes, *, now: datetime, kid_length: int = 32) -> list[SigningKey]:
    """The service's keys not retired, newest first; the first start makes one."""
    async with db.uow() as uow:
        rows = list(
            await uow.conn.execute(
                select(SIGNING_KEYS)
                .where(SIGNING_KEYS.c.retired_at.is_(None))
                .order_by(SIGNING_KEYS.c.created_at.desc())
            )
        )
        if rows:
            return [load_key(r.kid, r.private_pem, r.public_jwk, secret) for r in rows]
        key = generate_key(kid_length=kid_length)
        await uow.conn.execute(
            insert(SIGNING_KEYS).values(
                kid=key.kid,
                private_pem=encrypt_private(key, secret),
                public_jwk=json.dumps(key.public_jwk),
                created_at=now,
            )
        )
        await uow.commit()
        return [key]
