"""``POST /collect`` as a lean ASGI route, in front of tracking's FastAPI app.

The collector is the hottest route of the platform (a browser sends a batch every few seconds), and its own
work is small: read at most 64 KB, one validation pass, one grouped bus append. Through FastAPI's routing,
dependency solving and the platform's eight middlewares a request cost about as much again as that work
(py-spy of ``boxoffice serve tracking`` under ``loadtest/clickstream.py``). So this class answers
``POST /collect`` itself and hands every other request to the app unchanged. It keeps what those layers
give the route:

- the body limit (``max_batch_bytes``: 413 from the declared length, or as soon as the body grows past it);
- CORS (``_cors``: the same rule as the preflight route in ``api.py``);
- the per-client token bucket, validation and the grouped append (``handlers.collect_events``, as before);
- problem+json answers for every refusal, and a logged 500 problem for the unexpected;
- the request id (``X-Request-ID``, taken or made), ``X-Content-Type-Options`` (and HSTS in production), the
  HTTP metrics and access log line under the route ``/collect``, and fault injection's rules.

The FastAPI route ``POST /collect`` stays declared: it documents the route in OpenAPI, and it answers
whenever this class is not in front (an app built without it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.platform.faults import FaultInjectionMiddleware, FaultRegistry
from boxoffice.platform.headers import HSTS
from boxoffice.platform.jsonutil import dumps
from boxoffice.platform.metrics import HTTP_LATENCY, HTTP_REQUESTS
from boxoffice.platform.observability import access_log, request_id_var
from boxoffice.platform.problem_http import problem_response
from boxoffice.platform.problems import Forbidden, Problem
from boxoffice.tracking import handlers
from boxoffice.tracking.deps import TrackingDeps
from boxoffice.tracking.domain import BatchTooLarge

log = structlog.get_logger("boxoffice.tracking")

ROUTE = "/collect"


def cors_headers(origin: str | None, host: str | None, deps: TrackingDeps) -> list[tuple[bytes, bytes]]:
    """Same-origin pages need nothing; another origin only when configured (and its pages get CORS headers)."""
    if not origin or urlsplit(origin).netloc == host:
        return []
    if origin not in deps.config.cors_origins:
        raise Forbidden("This origin may not send events here.", slug="origin-not-allowed")
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]


def client_of(forwarded_for: str | None, peer: str | None, deps: TrackingDeps) -> str:
    """Who the token bucket counts: the peer, or the first X-Forwarded-For address behind a trusted proxy."""
    if deps.config.trust_forwarded_for and forwarded_for:
        return forwarded_for.split(",", 1)[0].strip()
    return peer or "unknown"


class _Refused(Exception):
    """A fault rule's answer was sent already."""


class CollectRoute:
    def __init__(
        self,
        app: ASGIApp,
        *,
        deps: Callable[[], TrackingDeps],
        service: str,
        production: bool,
        faults: FaultRegistry | None = None,
        secret: bytes = b"",
    ) -> None:
        self.app = app
        self.deps = deps
        self.service = service
        self.static_headers = [(b"x-content-type-options", b"nosniff")]
        if production:
            self.static_headers.append((b"strict-transport-security", HSTS.encode()))
        # Fault injection decides as it does for every other route of the service (its rules, its counters).
        self.faults = FaultInjectionMiddleware(self._refuse, service=service, secret=secret, faults=faults)
        self.requests = {s: HTTP_REQUESTS.labels(service, "POST", ROUTE, str(s)) for s in (202,)}
        self.latency = HTTP_LATENCY.labels(service, "POST", ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key, value)
        incoming = headers.get(b"x-request-id")
        request_id = incoming.decode("latin-1")[:64] if incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        common = [*self.static_headers, (b"x-request-id", request_id.encode("latin-1"))]
        status = 500
        try:
            if self.faults.faults.rule_for(self.service, "POST", ROUTE) is not None:
                status = await self._faulted(scope, receive, send, common)
                if status:
                    return
            status, body, extra = await self._collect(scope, headers, receive)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                *extra, *common,
            ]})
            await send({"type": "http.response.body", "body": body})
        except ConnectionAbortedError:
            status = 499  # the client went away before its body arrived: nobody to answer
        except Problem as problem:
            status = problem.status
            await self._problem(problem, scope, receive, send, common)
        except Exception as exc:
            log.error("unhandled error", path=ROUTE, exc_info=exc)
            status = 500
            await self._problem(Problem("An unexpected error occurred; it has been logged."), scope, receive, send,
                                common)
        finally:
            elapsed = time.perf_counter() - started
            counted = self.requests.get(status)
            if counted is None:
                counted = self.requests[status] = HTTP_REQUESTS.labels(self.service, "POST", ROUTE, str(status))
            counted.inc()
            self.latency.observe(elapsed)
            access_log.info("request", service=self.service, method="POST", route=ROUTE, status=status,
                            duration_ms=round(elapsed * 1000, 2))
            request_id_var.reset(token)

    async def _collect(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        deps = self.deps()
        limit = deps.config.max_batch_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BatchTooLarge(f"A batch may be at most {limit} bytes.")
        origin, host = headers.get(b"origin"), headers.get(b"host")
        cors = cors_headers(origin.decode("latin-1") if origin else None, host.decode("latin-1") if host else None,
                            deps)
        body = await _read_body(receive, limit)
        forwarded = headers.get(b"x-forwarded-for")
        peer = scope.get("client")
        cmd = handlers.CollectCommand(
            body=body,
            content_type=headers.get(b"content-type", b"").decode("latin-1"),
            client=client_of(forwarded.decode("latin-1") if forwarded else None, peer[0] if peer else None, deps),
            user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
        )
        result = await handlers.collect_events(deps, cmd)
        answer = {"accepted": result.accepted, "rejected": [{"index": i, "reason": r} for i, r in result.rejected]}
        return 202, dumps(answer), cors

    async def _problem(self, problem: Problem, scope: Scope, receive: Receive, send: Send,
                       common: list[tuple[bytes, bytes]]) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *common]
            await send(message)

        await problem_response(problem)(scope, receive, with_headers)

    async def _faulted(self, scope: Scope, receive: Receive, send: Send, common: list[tuple[bytes, bytes]]) -> int:
        """Let fault injection delay or abort this request; the status it answered, or 0 to go on."""
        answered = 0

        async def with_headers(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
                message["headers"] = [*message.get("headers", ()), *common]
            await send(message)

        try:
            await self.faults(scope, receive, with_headers)
        except _Refused:
            return 0
        return answered

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise _Refused  # no fault answered: the request goes on here


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("the client went away")
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BatchTooLarge(f"A batch may be at most {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
