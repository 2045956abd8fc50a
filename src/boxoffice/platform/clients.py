"""Service clients: how one service calls another.

In embedded mode the call goes through ``httpx.ASGITransport`` to the other service's app in this process;
in distributed mode the same client speaks HTTP to the URL in settings (``BOXOFFICE_<SERVICE>_URL``), over
aiohttp (``_Remote``). Either way the caller gets an ``httpx.Response``.
A service may also register an in-process *port* (``ServiceClients.register_port``): an object whose
methods call its handlers directly. A caller's typed client (``<service>/clients.py``) uses it when the
callee lives in this process, and skips the HTTP serialization both ways (measured in README's benchmark
section); it maps the callee's errors exactly as it maps the HTTP answers, so handlers see no difference.
Every call has a timeout. Only idempotent calls are retried (GET/HEAD/PUT/DELETE/OPTIONS, or any call that
carries an ``Idempotency-Key``), with full-jitter exponential backoff. A circuit breaker stops calling a
service after consecutive failures (5xx answers and no answers) and lets one trial call through once its
cool-down has passed; its state is the gauge ``boxoffice_client_breaker_state{client}``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp
from yarl import URL

from boxoffice.platform import jsonutil, tracing
from boxoffice.platform.asgi_stream import StreamingASGITransport
from boxoffice.platform.httppool import client_session
from boxoffice.platform.internal import INTERNAL_HEADER, internal_token
from boxoffice.platform.problems import ServiceUnavailable
from boxoffice.platform.settings import Settings

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUS = frozenset({502, 503, 504})
"""Answers worth another try: the service (or a proxy in front of it) says it could not serve this time."""

BREAKER_STATE = Gauge(
    "boxoffice_client_breaker_state", "A service client's circuit breaker: 0 closed, 1 half-open, 2 open", ["client"]
)
BREAKER_TRANSITIONS = Counter(
    "boxoffice_client_breaker_transitions_total", "Circuit breaker state changes, by new state", ["client", "to"]
)
CLIENT_RETRIES = Counter(
    "boxoffice_client_retries_total",
    "Calls to another service sent again: the connection failed or timed out, or it answered 502, 503 or 504",
    ["client", "reason"],
)
_STATE_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}


class CircuitOpen(ServiceUnavailable):
    slug = "service-unavailable"


class CircuitBreaker:
    """closed -> (``failures`` in a row) -> open -> (``reset_after`` s) -> half-open -> one trial.

    A failure is an answer of 5xx or no answer at all (refused, reset, timed out). The half-open trial is
    one call at a time: ``before_call`` returns True for it, and the caller must end it with ``end_trial``
    in a ``finally`` whatever happens (an answer, an error, or the caller's own timeout cancelling it),
    or every later call would be refused for good. A trial that ends without an outcome (cancelled) leaves
    the breaker half-open, so the next call becomes the trial.
    """

    def __init__(
        self,
        *,
        failures: int = 5,
        reset_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "client",
    ):
        self.threshold = failures
        self.reset_after = reset_after
        self.clock = clock
        self.name = name
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_running = False
        BREAKER_STATE.labels(name).set_function(lambda: _STATE_VALUES[self.state])

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_after else "open"

    def before_call(self) -> bool:
        """Raise ``CircuitOpen`` if no call may go now; True if this call is the half-open trial."""
        state = self.state
        if state == "open" or (state == "half-open" and self._trial_running):
            raise CircuitOpen("the service is failing; calls are paused for a moment")
        if state == "half-open":
            self._trial_running = True
            BREAKER_TRANSITIONS.labels(self.name, "half-open").inc()
            return True
        return False

    def end_trial(self) -> None:
        self._trial_running = False

    def record_success(self) -> None:
        if self.opened_at is not None:
            BREAKER_TRANSITIONS.labels(self.name, "closed").inc()
        self.failures, self.opened_at, self._trial_running = 0, None, False

    def record_failure(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.failures >= self.threshold or self.opened_at is not None:
            # Opening, or a failed trial opening again for another ``reset_after``.
            self.opened_at = self.clock()
            BREAKER_TRANSITIONS.labels(self.name, "open").inc()


class ServiceClient:
    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        app: ASGIApp | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        backoff_base: float = 0.05,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if (base_url is None) == (app is None):
            raise ValueError("a service client needs exactly one of base_url or app")
        self.name = name
        self.retries = retries
        self.backoff_base = backoff_base
        self.breaker = breaker or CircuitBreaker(name=name)
        self._headers = dict(headers or {})
        # Another process: aiohttp (``_Remote``). This one: httpx's in-process transport, where an app that
        # fails answers 500 exactly as over HTTP (instead of raising into the caller).
        self._remote = _Remote(base_url, timeout, self._headers) if base_url is not None else None
        self._http = (
            httpx.AsyncClient(
                base_url=f"http://{name}.internal",
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                timeout=httpx.Timeout(timeout),
                headers=self._headers,
            )
            if app is not None
            else None
        )
        # Streams (server-sent events) wait for the body as long as it lasts, and in-process need a transport
        # that hands over each chunk as it is sent rather than the body once the app has finished.
        self._streams = httpx.AsyncClient(
            base_url=base_url or f"http://{name}.internal",
            transport=StreamingASGITransport(app) if app is not None else None,
            timeout=httpx.Timeout(timeout, read=None),
            headers=self._headers,
        )

    async def aclose(self) -> None:
        if self._remote is not None:
            await self._remote.aclose()
        if self._http is not None:
            await self._http.aclose()
        await self._streams.aclose()

    @asynccontextmanager
    async def stream(
        self, path: str, *, headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """``GET path`` with the body read as it arrives (``response.aiter_bytes()``); not retried.

        The breaker counts it as ``request`` does: a 5xx answer or no answer is a failure, and a half-open
        trial ends whatever happens to it (the caller's timeout or a closed page cancelling it included)."""
        trial = self.breaker.before_call()
        try:
            async with self._streams.stream("GET", path, headers=headers, params=params) as response:
                if response.status_code >= 500:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
                yield response
        except httpx.TransportError as exc:
            self.breaker.record_failure()
            raise ServiceUnavailable(f"{self.name} could not be reached") from exc
        finally:
            if trial:
                self.breaker.end_trial()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        method = method.upper()
        headers = dict(headers or {})
        retryable = method in IDEMPOTENT_METHODS or any(k.lower() == "idempotency-key" for k in headers)
        attempts = 1 + (self.retries if retryable else 0)
        for attempt in range(attempts):
            trial = self.breaker.before_call()
            try:
                if self._http is not None:
                    response = await self._http.request(method, path, json=json, headers=headers, params=params)
                else:
                    assert self._remote is not None
                    response = await self._remote.request(method, path, json=json, headers=headers, params=params)
            except httpx.TransportError as exc:  # refused, reset, timed out (httpx.TimeoutException)
                self.breaker.record_failure()
                if attempt + 1 >= attempts:
                    raise ServiceUnavailable(f"{self.name} could not be reached") from exc
                reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
            else:
                if response.status_code < 500:
                    self.breaker.record_success()
                    return response
                self.breaker.record_failure()
                if response.status_code not in RETRYABLE_STATUS or attempt + 1 >= attempts:
                    return response
                reason = str(response.status_code)
            finally:
                if trial:  # also when the caller's timeout cancelled the call: see CircuitBreaker
                    self.breaker.end_trial()
            CLIENT_RETRIES.labels(self.name, reason).inc()
            # Full jitter: spread retries of many callers so they do not arrive together.
            await asyncio.sleep(random.uniform(0, self.backoff_base * 2**attempt))  # noqa: S311
        raise AssertionError("unreachable")

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)


class _Remote:
    """Requests to another process over aiohttp, answered as ``httpx.Response`` s (what every caller reads)
    and failing with httpx's transport errors (what ``ServiceClient`` retries and the breaker counts).

    A call costs the caller 130 µs of CPU here, answer included, against 410 µs through httpx
    (``loadtest/service_client.py``): in a ``--processes`` sale, payments' two calls to booking had been a
    third of its CPU."""

    def __init__(self, base_url: str, timeout: float, headers: Mapping[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, at the first request

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None,
    ) -> httpx.Response:
        if self._session is None:
            self._session = client_session(limit=200, timeout=self._timeout, headers=self._headers)
        url = self.base_url + path
        if params:
            url += "?" + str(httpx.QueryParams(params))  # encoded as httpx encoded them (None as "", True as "true")
        sent = dict(headers)
        body = None
        if json is not None:
            body = jsonutil.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        try:
            with tracing.sending(method, url) as context:
                sent.update(context)
                async with self._session.request(
                    method, URL(url, encoded=True), headers=sent, data=body, allow_redirects=False
                ) as answer:
                    content = await answer.read()
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable: nothing was sent
            raise httpx.ConnectError(repr(exc)) from exc
        except aiohttp.ConnectionTimeoutError as exc:  # no connection (or free slot) within the timeout
            raise httpx.ConnectTimeout(repr(exc)) from exc
        except TimeoutError as exc:  # no answer within the timeout (aiohttp's SocketTimeoutError is one)
            raise httpx.ReadTimeout(repr(exc)) from exc
        except aiohttp.ClientError as exc:  # the connection broke after sending, or the answer was malformed
            raise httpx.RemoteProtocolError(repr(exc)) from exc
        return _Answer(answer.status, headers=answer.raw_headers, content=content, method=method, url=url)


class _Answer(httpx.Response):
    """An ``httpx.Response`` whose ``request`` is made when asked for (``raise_for_status`` does): parsing the
    URL into an ``httpx.Request`` for every answer was a quarter of a call's CPU, and callers rarely ask."""

    def __init__(self, status_code: int, *, headers: Any, content: bytes, method: str, url: str) -> None:
        super().__init__(status_code, headers=headers, content=content)
        self._method, self._url = method, url

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = httpx.Request(self._method, self._url)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value

    def raise_for_status(self) -> httpx.Response:
        self._request = self.request  # httpx reads the attribute, not the property
        return super().raise_for_status()


class ServiceClients:
    """Clients for every service, in-process where that service's app lives here, HTTP otherwise."""

    def __init__(self, settings: Settings, urls: Mapping[str, str] | None = None) -> None:
        """``urls``: where services outside this process answer (the composition root reads them)."""
        self.settings = settings
        self.urls = dict(urls or {})
        self._local: dict[str, ASGIApp] = {}
        self._clients: dict[str, ServiceClient] = {}
        self._ports: dict[str, object] = {}

    def register_local(self, name: str, app: ASGIApp) -> None:
        self._local[name] = app

    def register_port(self, name: str, port: object) -> None:
        """``name``: ``<service>.<port>`` (``booking.orders``); the service registers it when it is built."""
        self._ports[name] = port

    def unregister_ports(self) -> None:
        """Forget every in-process port: calls go over the in-process HTTP client instead (what a port saves
        is measured this way: ``loadtest/flow_cpu.py --over-http``)."""
        self._ports.clear()

    def port(self, name: str) -> object | None:
        """The in-process port ``name``, or None: its service is not in this process, or fault rules are
        set (faults are injected at a service's HTTP ingress, so while any rule exists calls go over it).
        The caller checks the port's type (a ``Protocol`` of its own: services import no other service)."""
        port = self._ports.get(name)
        if port is None:
            return None
        # Imported here: the fault machinery needs FastAPI, which the ticket Lambda bundle (it imports these
        # clients through tickets' dependencies, never a port) does not carry.
        from boxoffice.platform.faults import registry as fault_registry

        return None if fault_registry().rules else port

    def get(self, name: str) -> ServiceClient:
        client = self._clients.get(name)
        if client is None:
            s = self.settings
            breaker = CircuitBreaker(
                failures=s.client_breaker_failures, reset_after=s.client_breaker_reset_seconds, name=name
            )
            options: dict[str, Any] = {
                "timeout": s.client_timeout_seconds,
                "retries": s.client_retries,
                "headers": {INTERNAL_HEADER: internal_token(s.secret)},
            }
            if name in self._local:
                client = ServiceClient(name, app=self._local[name], breaker=breaker, **options)
            elif url := self.urls.get(name):
                client = ServiceClient(name, base_url=url, breaker=breaker, **options)
            else:
                raise LookupError(f"no way to reach {name}: not in this process and BOXOFFICE_{name.upper()}_URL unset")
            self._clients[name] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
