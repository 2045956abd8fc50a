"""Headers every service's responses carry (``platform.ingress`` adds them): ``X-Content-Type-Options:
nosniff`` on every response (a JSON body must never be sniffed into HTML), and in production
``Strict-Transport-Security`` (browsers then refuse plain HTTP for the site). Pages add their own CSP and
frame rules on top (web).
"""

from __future__ import annotations

HSTS = "max-age=63072000; includeSubDomains"

