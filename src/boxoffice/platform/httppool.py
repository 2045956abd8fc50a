"""The HTTP client sessions one process uses to call another: the gateway's upstreams (``platform/gateway.py``)
and the service clients (``platform/clients.py``), both on aiohttp.

aiohttp's HTTP parser is C, and its connection pool costs the same per request however many connections it
holds. httpx cost three to four times its CPU per request (its models, h11's parser, anyio: 410 against
130 µs per service call, ``loadtest/service_client.py``; 430 against 100 µs per proxied request,
``loadtest/gateway_client.py``), and httpcore's pool under it walks every connection on every request
(encode/httpcore#1035). In-process calls stay on httpx's ASGI transport.
"""

from __future__ import annotations

from typing import Any

import aiohttp


def client_session(*, limit: int, timeout: aiohttp.ClientTimeout, **options: Any) -> aiohttp.ClientSession:
    """An aiohttp session for calls from one process to another (the gateway's upstreams, ``ServiceClient``):
    made in the running event loop, closed by its owner (``await session.close()``).

    Kept-alive connections are dropped after 4 s idle, well before the services close idle ones
    (BOXOFFICE_HTTP_KEEP_ALIVE_SECONDS, 65 s): the server closing an idle connection just as a caller reuses it
    is the one connection error a POST could not survive. No cookies. aiohttp would send GET, HEAD, OPTIONS,
    TRACE, PUT and DELETE once more when a kept-alive connection breaks (RFC 9112 allows it); here the caller
    alone decides what is sent twice (a DELETE that released a hold must not be sent again), so that is off
    (no public switch for it: a private flag, the version is locked, and the gateway's and the clients' tests
    fail if it comes back)."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=4.0),
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        **options,
    )
    session._retry_connection = False
    return session
