"""The token boxoffice services present to each other on ``/internal/`` endpoints.

Derived from ``BOXOFFICE_SECRET_KEY`` (which production refuses to leave at its default); every
``ServiceClient`` sends it, ``auth.require_internal`` checks it, and the gateway routes no ``/internal/`` path.
"""

from __future__ import annotations

import hashlib
import hmac

INTERNAL_HEADER = "x-boxoffice-internal"


def internal_token(secret: bytes) -> str:
    return hmac.new(secret, b"boxoffice-internal-call-v1", hashlib.sha256).hexdigest()
