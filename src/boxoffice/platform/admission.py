"""Admissions from the waiting room: a short-lived, signed permission to place holds on one queued sale.

The waiting room signs, booking checks; neither calls the other per hold. The token is
``base64url(event_id|user_id|expires_unix).base64url(HMAC-SHA256)`` under a key derived from
``BOXOFFICE_SECRET_KEY`` for this purpose only (like the internal service token), so it cannot be forged
without the secret, it is bound to one account and one sale, and it stops working at its expiry without any
revocation list. Buyers send it in the ``X-Admission`` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime

ADMISSION_HEADER = "X-Admission"


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"boxoffice-admission-v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_admission(secret: bytes, *, event_id: str, user_id: str, expires_at: datetime) -> str:
    payload = f"{event_id}|{user_id}|{int(expires_at.timestamp())}".encode()
    signature = hmac.new(_key(secret), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def admission_expiry(secret: bytes, token: str, *, event_id: str, user_id: str) -> datetime | None:
    """When a genuine admission for this sale and account expires; None for anything else."""
    try:
        payload_text, signature_text = token.split(".", 1)
        payload, signature = _unb64(payload_text), _unb64(signature_text)
        expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            return None
        event, user, expires = payload.decode().split("|")
        if event != event_id or user != user_id:
            return None
        return datetime.fromtimestamp(int(expires), UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def admitted(secret: bytes, token: str | None, *, event_id: str, user_id: str, now: datetime) -> bool:
    """True when ``token`` admits ``user_id`` to ``event_id`` at ``now``."""
    if not token:
        return False
    expiry = admission_expiry(secret, token, event_id=event_id, user_id=user_id)
    return expiry is not None and expiry > now
