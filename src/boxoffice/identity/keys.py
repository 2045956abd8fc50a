"""Access tokens signed with identity's Ed25519 keys (``platform.keys``), and the JWKS of their public halves.

Every other service verifies with the public keys only, fetched from ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from boxoffice.platform.auth import ALGORITHM, AUDIENCE, ISSUER
from boxoffice.platform.keys import SigningKey


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
            # Rounded up: a token lives at least its TTL (rounding down cut up to a second off its life, and a
            # 1-second token could be dead when issued).
            "exp": math.ceil((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid})


class KeyRingHolder:
    """Where the key ring lives: the dependencies exist before start-up reads the keys from the database."""

    def __init__(self) -> None:
        self._ring: KeyRing | None = None

    def load(self, ring: KeyRing) -> None:
        self._ring = ring

    def current(self) -> KeyRing:
        if self._ring is None:
            raise RuntimeError("identity has not started: no signing keys loaded")
        return self._ring
