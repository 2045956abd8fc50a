"""The gateway on :8000: sends each request to the service that owns its path.

Targets are ASGI apps: a service's own app in embedded mode, or an ``HttpProxy`` to that service's process
in distributed mode, so the routing is the same code in both. Route patterns come from each service's
``Service.routes`` (``{}`` is one path segment); the most specific pattern wins, so
``/api/orders/{}/payment`` reaches payments while the rest of ``/api/orders`` reaches booking.

The gateway also serves the operators' resilience API (admins only, ARCHITECTURE.md section 5):

- ``/api/admin/routes``: weighted traffic shifting. ``PUT /api/admin/routes/{service}`` with
  ``{"upstreams": [{"url", "version", "weight"}]}`` sends that service's requests to those processes in
  proportion to their weights (smooth weighted round-robin, so the shares hold over any run of requests);
  ``DELETE`` goes back to the default target.
- ``/api/admin/faults``: the fault rules (``platform.faults``): this process's registry, pushed to every
  other service process it knows (``peers`` and the shifted upstreams) with ``PUT /internal/faults``.

Connection errors are retried (``HttpProxy``): a request that could not be sent at all (connection refused,
reset or timed out while connecting) goes to another instance of the service, or to the same one after a
back-off, within ``BOXOFFICE_GATEWAY_RETRY_SECONDS``, whatever its method; a request that was sent and then
lost its connection before any answer is sent again only when doing so twice is harmless: GET, HEAD and
OPTIONS, and requests carrying an ``Idempotency-Key``. That is what lets a rolling update replace a service's
processes under load without a failed request (docs/operations.md).

A process that drains (``boxoffice serve --drain-seconds``) sets ``Gateway.draining``: its answers then say
``Connection: close``, so callers stop reusing their kept-alive connections to it before it stops.

Every response carries ``X-Boxoffice-Version``: the serving process's ``BOXOFFICE_VERSION`` (a service
behind an ``HttpProxy`` sets its own, which passes through unchanged).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import structlog
from multidict import CIMultiDict
from prometheus_client import Counter
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from boxoffice.platform import tracing
from boxoffice.platform.apidocs import docs_index_page
from boxoffice.platform.auth import Principal, TokenVerifier
from boxoffice.platform.faults import FaultRegistry, parse_rules, registry, rules_document
from boxoffice.platform.httppool import client_session
from boxoffice.platform.internal import INTERNAL_HEADER, internal_token
from boxoffice.platform.metrics import metrics_response
from boxoffice.platform.problem_http import problem_response
from boxoffice.platform.problems import (
    BadRequest,
    Forbidden,
    NotFound,
    Problem,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
from boxoffice.platform.requests import RequestBody

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailers",
     b"transfer-encoding", b"upgrade", b"host", b"content-length"}
)
VERSION_HEADER = b"x-boxoffice-version"
CONNECTION_CLOSE = (b"connection", b"close")
RESENDABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Requests the gateway sends again after the connection broke once they were sent (besides those carrying an
``Idempotency-Key``): a second copy of them changes nothing."""

GATEWAY_RETRIES = Counter(
    "boxoffice_gateway_retries_total",
    "Proxied requests sent again after a connection error, by what broke: connect (nothing was sent) or reset",
    ["reason"],
)
log = structlog.get_logger("boxoffice.gateway")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOXOFFICE_", extra="ignore", frozen=True)

    version: str = Field(default_factory=lambda: importlib.metadata.version("boxoffice"))
    """``BOXOFFICE_VERSION``: what this process answers in ``X-Boxoffice-Version`` (default: the package's)."""
    gateway_retry_seconds: float = Field(default=5.0, ge=0, le=60)
    """``BOXOFFICE_GATEWAY_RETRY_SECONDS``: how long a proxied request may spend retrying connection errors
    (another instance, or the same one after a back-off) before the gateway answers 503."""


def compile_pattern(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in pattern.split("{}")]
    return re.compile("^" + "[^/]+".join(parts) + r"(?:/|$|\?)")


def _specificity(pattern: str) -> tuple[int, int]:
    return (len(pattern.replace("{}", "")), pattern.count("/"))


class UpstreamIn(RequestBody):

    url: str = Field(pattern=r"^https?://[^/\s]+/?$", description="a service process, e.g. http://10.0.0.7:8106")
    version: str = Field(min_length=1, max_length=64)
    weight: int = Field(strict=True, ge=0, le=100)


class RoutesIn(RequestBody):

    upstreams: list[UpstreamIn] = Field(min_length=1, max_length=10)


@dataclass(frozen=True, slots=True)
class Upstream:
    url: str
    version: str
    weight: int
    target: HttpProxy


class WeightedUpstreams:
    """Smooth weighted round-robin (nginx's): each upstream gets exactly its share of every ``sum(weights)``
    consecutive requests, spread out rather than in runs, so a 90/10 split is 90/10 after 10 requests, not
    only on average. No await inside ``pick``: concurrent requests on the event loop cannot interleave it."""

    def __init__(self, upstreams: Sequence[Upstream], *, retry_seconds: float = 5.0) -> None:
        self.upstreams = tuple(upstreams)
        self._current = [0] * len(self.upstreams)
        self._total = sum(u.weight for u in self.upstreams)
        self.target = _Forwarder(self._choose, retry_seconds=retry_seconds)
        """The ASGI app that sends each request to the next upstream (and another one on a connection error)."""

    def pick(self) -> Upstream:
        best = 0
        for i, upstream in enumerate(self.upstreams):
            self._current[i] += upstream.weight
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self._total
        return self.upstreams[best]

    def _choose(self, failed: frozenset[str]) -> HttpProxy:
        """The next upstream by weight, skipping those that just failed while another one is left (one with
        weight 0 included: it is still a running instance, and better than none)."""
        for _ in range(self._total):
            upstream = self.pick()
            if upstream.url not in failed:
                return upstream.target
        spare = [u for u in self.upstreams if u.url not in failed]
        return (spare[0] if spare else self.pick()).target


class Gateway:
    def __init__(
        self,
        routes: Sequence[tuple[str, ASGIApp]],
        *,
        check_ready: Callable[[], Awaitable[dict[str, str]]],
        lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
        fallback: ASGIApp | None = None,
        docs: dict[str, str] | None = None,
        owners: Mapping[str, str] | None = None,
        peers: Mapping[str, str] | None = None,
        secret: bytes | None = None,
        faults: FaultRegistry | None = None,
    ) -> None:
        """``owners``: the service of each route pattern (for traffic shifting); ``peers``: where the service
        processes answer in distributed mode (fault rules are pushed there, with the internal token made
        from ``secret``)."""
        ordered = sorted(routes, key=lambda r: _specificity(r[0]), reverse=True)
        self._routes = [(compile_pattern(p), p, app) for p, app in ordered]
        # Every pattern in one expression, most specific first: the first alternative that matches is the
        # route the loop over ``_routes`` would find, in one call instead of one per pattern tried.
        self._any_route = (
            re.compile("|".join(f"(?P<r{i}>{compiled.pattern})" for i, (compiled, _, _) in enumerate(self._routes)))
            if self._routes
            else None
        )
        self._owners = dict(owners or {})
        self._peers = dict(peers or {})
        self._token = internal_token(secret) if secret is not None else None
        self._faults = faults or registry()
        self._shifted: dict[str, WeightedUpstreams] = {}
        self._proxies: dict[str, HttpProxy] = {}
        settings = GatewaySettings()
        self.version = settings.version
        self.retry_seconds = settings.gateway_retry_seconds
        self._version_header = (VERSION_HEADER, self.version.encode())
        self.draining = False
        """Set when this process drains before it stops: every answer then closes its connection."""
        # A gateway that routes between services (not one in front of a single service: ``serve``) starts
        # each request's trace, when spans are exported.
        self._entry: ASGIApp = tracing.instrument_gateway(self._versioned) if routes else self._versioned
        self._check_ready = check_ready
        self._fallback = fallback
        self._docs = docs or {}
        self._verifier = TokenVerifier(self._fetch_jwks)
        self._own = Starlette(
            routes=[
                Route("/healthz", self._healthz),
                Route("/readyz", self._readyz),
                Route("/metrics", self._metrics),
                Route("/api/docs", self._docs_index),
                Route("/api/admin/faults", self._admin_faults, methods=["GET", "PUT", "DELETE"]),
                Route("/api/admin/routes", self._admin_routes, methods=["GET"]),
                Route("/api/admin/routes/{service}", self._admin_route, methods=["GET", "PUT", "DELETE"]),
            ],
            lifespan=self._closing(lifespan),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _versioned(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._dispatch(scope, receive, send)
            return
        header = self._version_header

        async def versioned(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                for key, _ in headers:
                    if key.lower() == VERSION_HEADER:
                        break
                else:
                    headers.append(header)
                if self.draining:
                    headers = [(k, v) for k, v in headers if k.lower() != b"connection"] + [CONNECTION_CLOSE]
                message = {**message, "headers": headers}
            await send(message)

        await self._dispatch(scope, receive, versioned)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if path.startswith("/api/admin/") and path.startswith(("/api/admin/faults", "/api/admin/routes")):
                await self._own(scope, receive, send)
                return
            found = self._any_route.match(path) if self._any_route is not None else None
            if found is not None and found.lastgroup is not None:
                _, pattern, app = self._routes[int(found.lastgroup[1:])]
                await self._target(pattern, app)(scope, receive, send)
                return
            if self._fallback is not None and path not in ("/healthz", "/readyz", "/metrics", "/api/docs"):
                await self._fallback(scope, receive, send)
                return
            if path.startswith("/api/") and path != "/api/docs":
                await problem_response(NotFound(f"No API at {path}."))(scope, receive, send)
                return
        await self._own(scope, receive, send)

    def _target(self, pattern: str, default: ASGIApp) -> ASGIApp:
        owner = self._owners.get(pattern)
        upstreams = self._shifted.get(owner) if owner else None
        return default if upstreams is None else upstreams.target

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

    async def _docs_index(self, request: Request) -> Response:
        """A page linking every service's docs; the same list as JSON for a client that asks for JSON."""
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/html" not in accept:
            return JSONResponse({"services": [{"name": n, "docs": d} for n, d in sorted(self._docs.items())]})
        return HTMLResponse(docs_index_page(self._docs))

    # The operators' API ----------------------------------------------------------------------------------

    async def _fetch_jwks(self) -> dict[str, Any]:
        """Identity's signing keys, asked through this gateway's own routing (in-process or proxied)."""
        transport = httpx.ASGITransport(app=self._dispatch)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.internal", timeout=5) as client:
            response = await client.get("/.well-known/jwks.json")
        if response.status_code != 200:
            raise ServiceUnavailable("the signing keys could not be fetched")
        body: dict[str, Any] = response.json()
        return body

    async def _admin(self, request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("This needs an admin's access token: 'Authorization: Bearer <access token>'.")
        principal = await self._verifier.verify(token.strip())
        if not principal.has_role("admin"):
            raise Forbidden("This needs the role admin.")
        return principal

    async def _admin_faults(self, request: Request) -> Response:
        try:
            await self._admin(request)
            if request.method == "GET":
                return JSONResponse(rules_document(self._faults.rules))
            if request.method == "DELETE":
                self._faults.clear()
                await self._push_faults("DELETE", b"")
                return Response(status_code=204)
            body = await request.body()
            try:
                rules = parse_rules(body)
            except ValueError as exc:
                raise Unprocessable(str(exc), slug="validation-error") from None
            self._faults.replace(rules)
            pushed = await self._push_faults("PUT", body)
            return JSONResponse({**rules_document(rules), "pushed": pushed})
        except Problem as problem:
            return problem_response(problem)

    def _fault_targets(self) -> dict[str, str]:
        targets = {url.rstrip("/"): name for name, url in self._peers.items()}
        for name, shifted in self._shifted.items():
            targets.update({u.url: f"{name}@{u.version}" for u in shifted.upstreams})
        return targets

    async def _push_faults(self, method: str, body: bytes) -> dict[str, str]:
        """The rule set to every service process this gateway knows; what each answered."""
        targets = self._fault_targets()
        if not targets or self._token is None:
            return {}
        results: dict[str, str] = {}
        headers = {INTERNAL_HEADER: self._token, "content-type": "application/json"}
        async with httpx.AsyncClient(timeout=5) as client:
            for url, name in sorted(targets.items(), key=lambda t: t[1]):
                try:
                    answer = await client.request(method, f"{url}/internal/faults", content=body, headers=headers)
                    results[name] = "ok" if answer.status_code < 300 else f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    results[name] = f"unreachable ({type(exc).__name__})"
        return results

    def _describe(self, service: str) -> dict[str, Any]:
        shifted = self._shifted.get(service)
        if shifted is not None:
            items = [{"url": u.url, "version": u.version, "weight": u.weight} for u in shifted.upstreams]
        else:
            default = next((app for _, p, app in self._routes if self._owners.get(p) == service), None)
            url = default.base_url if isinstance(default, HttpProxy) else "in-process"
            items = [{"url": url, "version": self.version, "weight": 100}]
        return {"service": service, "shifted": shifted is not None, "upstreams": items}

    async def _admin_routes(self, request: Request) -> Response:
        try:
            await self._admin(request)
        except Problem as problem:
            return problem_response(problem)
        services = sorted(set(self._owners.values()))
        return JSONResponse({"items": [self._describe(s) for s in services]})

    async def _admin_route(self, request: Request) -> Response:
        service = request.path_params["service"]
        try:
            await self._admin(request)
            if service not in set(self._owners.values()):
                raise NotFound(f"The gateway routes no service called {service!r}.")
            if request.method == "PUT":
                try:
                    body = RoutesIn.model_validate_json(await request.body())
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = ".".join(str(p) for p in first["loc"]) or "body"
                    raise Unprocessable(f"{where}: {first['msg']}", slug="validation-error") from None
                if sum(u.weight for u in body.upstreams) <= 0:
                    raise BadRequest("At least one upstream needs a weight above 0.", slug="no-weight")
                self._shifted[service] = WeightedUpstreams(
                    [
                        Upstream(u.url.rstrip("/"), u.version, u.weight, self._proxy(u.url.rstrip("/")))
                        for u in body.upstreams
                    ],
                    retry_seconds=self.retry_seconds,
                )
            elif request.method == "DELETE":
                self._shifted.pop(service, None)
            return JSONResponse(self._describe(service))
        except Problem as problem:
            return problem_response(problem)

    def _proxy(self, url: str) -> HttpProxy:
        """One proxy (one connection pool) per upstream URL, kept while the gateway lives: a request still in
        flight on an upstream that a shift removed finishes normally."""
        if url not in self._proxies:
            self._proxies[url] = HttpProxy(url, retry_seconds=self.retry_seconds)
        return self._proxies[url]

    def _closing(
        self, inner: Callable[[Starlette], AbstractAsyncContextManager[None]] | None
    ) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
        """``inner`` (the runtime's start and stop), then the proxies' connections closed as the server stops."""

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            try:
                if inner is None:
                    yield
                else:
                    async with inner(app):
                        yield
            finally:
                await self.aclose()

        return lifespan

    async def aclose(self) -> None:
        """Close the connections of every proxy this gateway sends to: its routes', its fallback's, the shifts'."""
        targets = [app for _, _, app in self._routes] + [self._fallback, *self._proxies.values()]
        for proxy in {id(t): t for t in targets if isinstance(t, HttpProxy)}.values():
            await proxy.aclose()
        self._proxies.clear()


class HttpProxy:
    """Forwards a request to a service's process over HTTP, and its answer back (retrying connection errors:
    see the module's docstring).

    The upstream client is aiohttp's (its HTTP parser is C): a proxied request cost the gateway about 430 µs
    of CPU on httpx (its models, h11's parser, anyio) and 100 µs on aiohttp (``loadtest/gateway_client.py``),
    and in a ``--processes`` sale three quarters of the gateway's CPU was httpx."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, retry_seconds: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._streaming_timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=None)
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, at the first request
        self._forward = _Forwarder(lambda _failed: self, retry_seconds=retry_seconds)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # The answer passes through as the service encoded it (no decompression), with no header the
            # caller did not send.
            self._session = client_session(
                limit=500,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def ready(self) -> str | None:
        """Why the process behind this proxy is not ready (its ``/readyz``), or None when it is."""
        try:
            url = URL(self.base_url + "/readyz", encoded=True)
            async with self._client().get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                return None if response.status == 200 else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return type(exc).__name__

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> aiohttp.ClientResponse:
        """The upstream's answer once its head has arrived (``target``: the path and query, as the client sent
        them); the body is read by the caller (streamed), who must release it. An event stream may stay quiet
        for long: it has no read timeout."""
        streaming = any(k.lower() == b"accept" and b"text/event-stream" in v for k, v in headers)
        url = self.base_url + target
        with tracing.sending(method, url) as context:
            sent = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
            sent.update(context)  # this call's traceparent, in place of the one the caller sent
            return await self._client().request(
                method,
                URL(url, encoded=True),
                headers=sent,
                data=body or None,
                allow_redirects=False,
                timeout=self._streaming_timeout if streaming else self._timeout,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._forward(scope, receive, send)


_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
"""The connection failed before the request went out (refused, or no connection within the connect timeout,
waiting for a free one included): sending it (again) cannot do anything twice."""
_BROKEN_AFTER_SENDING = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
"""The connection broke after (part of) the request went out and before an answer: the upstream may have
acted on it. A read timeout is not among them: the upstream is slow, not gone, and retrying would pile on."""
_UPSTREAM_ERRORS = (aiohttp.ClientError, TimeoutError)


class _Forwarder:
    """Reads the request once, sends it upstream (retrying connection errors within ``retry_seconds``), and
    passes the answer back. ``choose(failed)`` gives the instance for each attempt: the same one for a plain
    proxy, the next by weight (not one that just failed) for shifted upstreams."""

    def __init__(self, choose: Callable[[frozenset[str]], HttpProxy], *, retry_seconds: float) -> None:
        self.choose = choose
        self.retry_seconds = retry_seconds
        self.backoff_base = 0.05
        self.backoff_max = 1.0

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
        method = scope["method"]
        resendable = method in RESENDABLE_METHODS or any(k.lower() == b"idempotency-key" for k, _ in headers)
        target = _target(scope)
        found = await self._send(method, target, headers, body, resendable=resendable)
        if found is None:
            response = problem_response(ServiceUnavailable("The service behind this path cannot be reached."))
            await response(scope, receive, send)
            return
        proxy, upstream = found
        try:
            out_headers = [(k, v) for k, v in upstream.raw_headers if k.lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": upstream.status, "headers": out_headers})
            # Passed on as it arrives (an event stream's events one by one), still encoded as the upstream sent it.
            try:
                async for chunk in upstream.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except _UPSTREAM_ERRORS as exc:  # the head is sent: all that is left is to end the answer
                log.warning("upstream broke while answering", upstream=proxy.base_url, path=scope["path"],
                            error=repr(exc))
            await send({"type": "http.response.body", "body": b""})
        finally:
            upstream.release()

    async def _send(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes, *, resendable: bool
    ) -> tuple[HttpProxy, aiohttp.ClientResponse] | None:
        """The instance that answered and its answer, or None once the retries are used up (or the error may
        not be retried)."""
        deadline = time.monotonic() + self.retry_seconds
        path = target.partition("?")[0]  # for the logs: a query string may hold what a log should not keep
        failed: frozenset[str] = frozenset()
        attempt = 0
        while True:
            proxy = self.choose(failed)
            error: Exception
            try:
                return proxy, await proxy.send(method, target, headers, body)
            except _NOT_SENT as exc:
                reason, error = "connect", exc
            except _BROKEN_AFTER_SENDING as exc:
                if not resendable:
                    log.warning("upstream connection broke; not sent again", upstream=proxy.base_url,
                                method=method, path=path, error=repr(exc))
                    return None
                reason, error = "reset", exc
            except _UPSTREAM_ERRORS as exc:
                log.warning("upstream failed", upstream=proxy.base_url, method=method, path=path, error=repr(exc))
                return None
            failed = failed | {proxy.base_url}
            delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))  # noqa: S311
            if time.monotonic() + delay > deadline:
                log.warning("upstream unreachable; retries used up", upstream=proxy.base_url, method=method,
                            path=path, attempts=attempt + 1, error=repr(error))
                return None
            attempt += 1
            GATEWAY_RETRIES.labels(reason).inc()
            await asyncio.sleep(delay)


def _target(scope: Scope) -> str:
    """The request's path and query as the client sent them (still percent-encoded), for the upstream."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"])
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path
