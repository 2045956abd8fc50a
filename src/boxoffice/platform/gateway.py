"""The gateway on :8000: sends each request to the service that owns its path.

Targets are ASGI apps: a service's own app in embedded mode, or an ``HttpProxy`` to that service's process
in distributed mode, so the routing is the same code in both. Route patterns come from each service's
``Service.routes`` (``{}`` is one path segment); the most specific pattern wins, so
``/api/orders/{}/payment`` reaches payments while the rest of ``/api/orders`` reaches booking.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from boxoffice.platform.metrics import metrics_response
from boxoffice.platform.problem_http import problem_response
from boxoffice.platform.problems import NotFound, ServiceUnavailable

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailers",
     b"transfer-encoding", b"upgrade", b"host", b"content-length"}
)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in pattern.split("{}")]
    return re.compile("^" + "[^/]+".join(parts) + r"(?:/|$|\?)")


def _specificity(pattern: str) -> tuple[int, int]:
    return (len(pattern.replace("{}", "")), pattern.count("/"))


class Gateway:
    def __init__(
        self,
        routes: Sequence[tuple[str, ASGIApp]],
        *,
        check_ready: Callable[[], Awaitable[dict[str, str]]],
        lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
        fallback: ASGIApp | None = None,
        docs: dict[str, str] | None = None,
    ) -> None:
        ordered = sorted(routes, key=lambda r: _specificity(r[0]), reverse=True)
        self._routes = [(compile_pattern(p), app) for p, app in ordered]
        self._check_ready = check_ready
        self._fallback = fallback
        self._docs = docs or {}
        self._own = Starlette(
            routes=[
                Route("/healthz", self._healthz),
                Route("/readyz", self._readyz),
                Route("/metrics", self._metrics),
                Route("/api/docs", self._docs_index),
            ],
            lifespan=lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            for pattern, app in self._routes:
                if pattern.match(path):
                    await app(scope, receive, send)
                    return
            if self._fallback is not None and path not in ("/healthz", "/readyz", "/metrics", "/api/docs"):
                await self._fallback(scope, receive, send)
                return
            if path.startswith("/api/") and path != "/api/docs":
                await problem_response(NotFound(f"No API at {path}."))(scope, receive, send)
                return
        await self._own(scope, receive, send)

    async def _healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _readyz(self, _: Request) -> Response:
        failures = await self._check_ready()
        if failures:
            problem = ServiceUnavailable("not ready: " + ", ".join(f"{k} ({v})" for k, v in failures.items()))
            return problem_response(problem)
        return JSONResponse({"status": "ready"})

    async def _metrics(self, _: Request) -> Response:
        return metrics_response()

    async def _docs_index(self, _: Request) -> Response:
        return JSONResponse({"services": [{"name": n, "docs": d} for n, d in sorted(self._docs.items())]})


class HttpProxy:
    """Forwards a request to a service's process over HTTP, and its answer back."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=httpx.Limits(max_connections=500))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", client[0].encode()))
        url = httpx.URL(path=scope["path"], query=scope.get("query_string", b""))
        try:
            upstream = await self._client.request(scope["method"], url, headers=headers, content=body)
        except httpx.TransportError:
            response = problem_response(ServiceUnavailable("The service behind this path cannot be reached."))
            await response(scope, receive, send)
            return
        out_headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP]
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": upstream.content})


