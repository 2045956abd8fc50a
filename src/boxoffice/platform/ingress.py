"""Every service's per-request platform work as ONE ASGI middleware (``Service.create_app`` installs it).

It does, in this order from the outside in (these were eight middlewares; eight layers cost eight coroutine
calls per request and eight wrappers around every message the app sends, one layer does the same work once:
``loadtest/request_overhead.py`` measures it):

1. ``X-Request-ID`` taken from the caller (or made), logged with (``observability.request_id_var``), returned;
2. one access-log line per request (``observability.access_log``): request id, service, method, route
   template (no ids or query strings, which may be personal), status, duration;
3. requests counted and timed per route template (``metrics.observe_request``);
4. ``Idempotent-Replayed: true`` on an answer ``idempotency.mark_replayed`` marked;
5. ``X-Content-Type-Options: nosniff``, and HSTS in production (``headers``);
6. 413 problem+json for a body over the limit (per path prefix), before it is read whole;
7. injected delays and aborts, and ``/internal/faults`` (``faults.FaultInjectionMiddleware``);
8. an unexpected exception answered by the app's own handler for ``Exception`` (problem+json for APIs, web's
   HTML error page), innermost, so that the answer passes through every step above like any other response
   (Starlette would answer it from its outermost ``ServerErrorMiddleware``, past all of them).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.platform.faults import FaultInjectionMiddleware, FaultRegistry
from boxoffice.platform.headers import HSTS
from boxoffice.platform.idempotency import unwatch_replay, watch_replay
from boxoffice.platform.metrics import observe_request
from boxoffice.platform.observability import access_log, request_id_var
from boxoffice.platform.problem_http import problem_response
from boxoffice.platform.problems import PayloadTooLarge

_NOSNIFF_KEY = b"x-content-type-options"
_NOSNIFF = (_NOSNIFF_KEY, b"nosniff")
_HSTS_KEY = b"strict-transport-security"
_HSTS = (_HSTS_KEY, HSTS.encode("latin-1"))
_REPLAYED = (b"idempotent-replayed", b"true")


class _TooLarge(Exception):
    pass


class PlatformMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        production: bool,
        max_bytes: int,
        body_limits: dict[str, int] | None = None,
        secret: bytes,
        faults: FaultRegistry | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.production = production
        self.max_bytes = max_bytes
        self.body_limits = body_limits or {}
        self.faults = FaultInjectionMiddleware(app, service=service, secret=secret, faults=faults)

    def _limit(self, path: str) -> int:
        for prefix, limit in self.body_limits.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming: bytes | None = None
        declared: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                if incoming is None:
                    incoming = value
            elif key == b"content-length" and declared is None:
                declared = value
        request_id = incoming.decode("latin-1")[:64] if incoming else uuid.uuid4().hex
        request_id_header = (b"x-request-id", request_id.encode("latin-1"))
        production = self.production
        status = 500
        app_started = False  # the app (or an injected fault) began its answer
        answered = False  # ... and that beginning went out (not cut off by a body over the limit)
        exceeded = False

        async def outer_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                nosniff = hsts = False
                for key, _ in headers:
                    if key == _NOSNIFF_KEY:
                        nosniff = True
                    elif key == _HSTS_KEY:
                        hsts = True
                if not nosniff:
                    headers.append(_NOSNIFF)
                if production and not hsts:
                    headers.append(_HSTS)
                if marker.replayed:
                    headers.append(_REPLAYED)
                headers.append(request_id_header)
                message["headers"] = headers
            await send(message)

        async def app_send(message: Message) -> None:
            nonlocal app_started, answered
            if message["type"] == "http.response.start":
                app_started = True
            if exceeded:
                # Whatever the app makes of a body cut off mid-way (FastAPI answers 400 "error parsing the
                # body"), the client is told the truth: the body was too large.
                return
            if message["type"] == "http.response.start":
                answered = True
            await outer_send(message)

        request_id_token = request_id_var.set(request_id)
        marker, replay_token = watch_replay()
        try:
            limit = self._limit(scope["path"])
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await problem_response(_too_large(limit))(scope, receive, outer_send)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received, exceeded
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        exceeded = True
                        raise _TooLarge
                return message

            try:
                if not await self.faults.intercept(scope, limited_receive, app_send):
                    try:
                        await self.app(scope, limited_receive, app_send)
                    except _TooLarge:
                        raise
                    except Exception as exc:
                        handler = getattr(scope.get("app"), "exception_handlers", {}).get(Exception)
                        if app_started or handler is None:
                            raise
                        response = await handler(Request(scope, limited_receive), exc)
                        await response(scope, limited_receive, app_send)
            except _TooLarge:
                pass
            if exceeded and not answered:
                await problem_response(_too_large(limit))(scope, receive, outer_send)
        finally:
            unwatch_replay(replay_token)
            template = _template(scope)
            method = scope["method"]
            elapsed = time.perf_counter() - start
            try:
                observe_request(self.service, method, template, status, elapsed)
                access_log.info(
                    "request",
                    service=self.service,
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            finally:
                request_id_var.reset(request_id_token)


def _template(scope: Scope) -> str:
    """The matched route's path template. FastAPI's routes put themselves in the scope; Starlette's own
    (the OpenAPI document, the docs page, a mount) only their endpoint, so it is looked up among the app's
    routes (not on the hot path: only for those)."""
    route: Any = scope.get("route")
    if (template := getattr(route, "path", None)) is not None:
        return str(template)
    endpoint = scope.get("endpoint")
    router = getattr(scope.get("app"), "router", None)
    if endpoint is not None and router is not None:
        for candidate in router.routes:
            if getattr(candidate, "endpoint", getattr(candidate, "app", None)) is endpoint:
                return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
