"""The token boxoffice services present to each other on ``/internal/`` endpoints.

Derived from ``BOXOFFICE_SECRET_KEY`` (which production refuses to leave at its default); every
``ServiceClient`` sends it, ``auth.require_internal`` checks it, and the gateway routes no ``/internal/`` path.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

INTERNAL_HEADER = "x-boxoffice-internal"


@functools.lru_cache(maxsize=16)
def internal_token(secret: bytes) -> str:
    """The same for every call with one secret, so made once: ``require_internal`` asks for it on every
    internal request (an HMAC each time was 1.6 % of booking's CPU in a ``--processes`` sale)."""
    return hmac.new(secret, b"boxoffice-internal-call-v1", hashlib.sha256).hexdigest()
