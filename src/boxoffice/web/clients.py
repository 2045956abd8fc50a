"""Typed clients of the services web's pages call: identity, catalog, booking, payments, tickets.

Each method builds its path from quoted segments (an id can never change the path or break the URL), sends
the visitor's bearer token, and returns a typed answer (``resources``); every status of 400 and above becomes
an ``ApiProblem`` carrying the RFC 9457 problem, here and nowhere else. The platform's ``ServiceClient``
underneath is in-process in embedded mode and HTTP otherwise, with timeouts, retries and a breaker.

    ApiProblem        a service answered 4xx/5xx, or could not be reached (503)
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from boxoffice.platform.clients import ServiceClient
from boxoffice.platform.problems import Problem
from boxoffice.web.domain import ProblemInfo, Tokens, friendly_message, problem_from_body
from boxoffice.web.resources import (
    Admission,
    Card,
    CheckInRequest,
    Event,
    EventFilter,
    EventPage,
    EventRequest,
    Hold,
    HoldRequest,
    Mailbox,
    Order,
    OrderPage,
    OrderRequest,
    QueueLine,
    QueuePlace,
    Registration,
    Run,
    RunDeparturePage,
    StationPage,
    TokenPair,
    TrainOptionPage,
)

log = structlog.get_logger("boxoffice.web")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Renew = Callable[[], Awaitable[str | None]]


class ApiProblem(Exception):
    """A service answered with an error; ``problem`` says which, ``message`` says it to a person."""

    def __init__(self, problem: ProblemInfo) -> None:
        super().__init__(problem.detail)
        self.problem = problem

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def slug(self) -> str:
        return self.problem.slug

    @property
    def message(self) -> str:
        return friendly_message(self.problem)


def not_found(detail: str = "We could not find that. It may have been removed.") -> ApiProblem:
    return ApiProblem(ProblemInfo(404, "not-found", "Not found", detail))


def at(template: str, *segments: str) -> str:
    """``at("/api/holds/{}", hold_id)``: each segment quoted whole (no ``/``, ``?``, ``%00`` slips through)."""
    return template.format(*(quote(segment, safe="") for segment in segments))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class ServiceApi:
    """One service's public API as web calls it, as a visitor (``as_visitor``) or anonymously."""

    def __init__(self, name: str, client: Callable[[], ServiceClient]) -> None:
        self.name = name
        self._client = client
        self._token: str | None = None
        self._renew: Renew | None = None

    def transport(self) -> ServiceClient:
        """The platform's client underneath, for what the typed calls do not cover (relaying a stream)."""
        return self._client()

    def as_visitor(self, tokens: Tokens | None, renew: Renew | None = None) -> Self:
        """This API as the holder of ``tokens``; ``renew`` gives a fresh access token when a service says
        the one sent has expired (it may expire between web's check and the service's)."""
        bound = copy.copy(self)
        bound._token = tokens.access if tokens is not None else None
        bound._renew = renew
        return bound

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The raw answer, whatever its status; ``ApiProblem`` (503) only when the service cannot be reached."""
        headers: dict[str, str] = dict(extra_headers or {})
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        signed = auth and self._token is not None
        for last in (False, True):
            if signed:
                headers["Authorization"] = f"Bearer {self._token}"
            try:
                response = await self._client().request(method, path, json=json, headers=headers, params=clean)
            except Problem as exc:  # the client's own failures: unreachable, circuit open
                raise ApiProblem(ProblemInfo(exc.status, exc.slug, exc.title, exc.detail)) from exc
            # A 401 is answered before the service does anything, so sending again with a fresh token is safe.
            if last or not signed or response.status_code != 401 or self._renew is None:
                return response
            fresh = await self._renew()
            if fresh is None:
                return response
            self._token = fresh
        raise AssertionError("unreachable")

    def check(self, response: httpx.Response, path: str) -> httpx.Response:
        """The response if it succeeded, else its problem as ``ApiProblem``."""
        if response.status_code < 400:
            return response
        problem = problem_from_body(response.status_code, _json_or_none(response))
        if problem.status >= 500:
            log.warning("service call failed", service=self.name, path=path, status=problem.status)
        raise ApiProblem(problem)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = await self.send(
            method, path, json=json, params=params, idempotency_key=idempotency_key, auth=auth,
            extra_headers=extra_headers,
        )
        return self.check(response, path)

    async def read(self, model: type[M], method: str, path: str, **options: Any) -> M:
        response = await self.call(method, path, **options)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            log.warning("unexpected answer", service=self.name, path=path, error=str(exc)[:300])
            detail = f"{self.name} answered unexpectedly."
            raise ApiProblem(ProblemInfo(502, "bad-gateway", "Bad gateway", detail)) from exc


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


class IdentityApi(ServiceApi):
    async def register(self, registration: Registration) -> None:
        await self.call("POST", "/api/auth/register", json=_body(registration), auth=False)

    async def verify(self, email: str, code: str) -> Tokens:
        pair = await self.read(TokenPair, "POST", "/api/auth/verify", json={"email": email, "code": code}, auth=False)
        return pair.tokens()

    async def resend(self, email: str) -> None:
        await self.call("POST", "/api/auth/resend", json={"email": email}, auth=False)

    async def login(self, email: str, password: str) -> Tokens:
        body = {"email": email, "password": password}
        return (await self.read(TokenPair, "POST", "/api/auth/login", json=body, auth=False)).tokens()

    async def refresh(self, refresh_token: str) -> Tokens | None:
        """The next pair, or None when identity refuses this refresh token (expired, revoked, reused)."""
        response = await self.send("POST", "/api/auth/refresh", json={"refresh_token": refresh_token}, auth=False)
        if response.status_code != 200:
            return None
        return TokenPair.model_validate_json(response.content).tokens()

    async def logout(self, refresh_token: str) -> None:
        await self.call("POST", "/api/auth/logout", json={"refresh_token": refresh_token}, auth=False)

    async def forgot_password(self, email: str) -> None:
        await self.call("POST", "/api/auth/password/forgot", json={"email": email}, auth=False)

    async def reset_password(self, email: str, code: str, password: str) -> Tokens:
        body = {"email": email, "code": code, "new_password": password}
        return (await self.read(TokenPair, "POST", "/api/auth/password/reset", json=body, auth=False)).tokens()

    async def change_password(self, current: str, new: str) -> None:
        body = {"current_password": current, "new_password": new}
        await self.call("POST", "/api/me/password", json=body)

    async def log_out_everywhere(self) -> None:
        await self.call("POST", "/api/auth/logout-all")

    async def mailbox(self, to: str) -> Mailbox:
        """The dev mailbox; empty when identity runs without the dev mail backend (its 404)."""
        try:
            return await self.read(Mailbox, "GET", "/api/dev/mailbox", params={"to": to}, auth=False)
        except ApiProblem as exc:
            if exc.status != 404:
                raise
            return Mailbox(items=[])

    async def check_alive(self) -> None:
        (await self.send("GET", "/healthz")).raise_for_status()


class CatalogApi(ServiceApi):
    async def events(self, query: EventFilter) -> EventPage:
        return await self.read(EventPage, "GET", "/api/events", params=_body(query), auth=False)

    async def event(self, event_id: str) -> Event:
        return await self.read(Event, "GET", at("/api/events/{}", event_id), auth=False)

    async def create_event(self, event: EventRequest) -> Event:
        return await self.read(Event, "POST", "/api/events", json=_body(event))

    async def stations(self, cursor: str | None = None) -> StationPage:
        params = {"cursor": cursor, "limit": 200}
        return await self.read(StationPage, "GET", "/api/stations", params=params, auth=False)

    async def search_trains(self, origin: str, destination: str, day: str) -> TrainOptionPage:
        params = {"origin": origin, "destination": destination, "date": day}
        return await self.read(TrainOptionPage, "GET", "/api/trains/search", params=params, auth=False)

    async def departures(self, day: str) -> RunDeparturePage:
        """Every run leaving its first station on ``day`` (UTC)."""
        return await self.read(RunDeparturePage, "GET", "/api/trains/runs", params={"date": day}, auth=False)

    async def run(self, run_id: str, origin: str = "", destination: str = "") -> Run:
        params = {"origin": origin, "destination": destination}
        return await self.read(Run, "GET", at("/api/trains/runs/{}", run_id), params=params, auth=False)


class BookingApi(ServiceApi):
    async def place_hold(
        self, request: HoldRequest, *, admission: str | None = None, idempotency_key: str | None = None
    ) -> Hold:
        """``admission``: the waiting room's token, for a queued sale."""
        headers = {"X-Admission": admission} if admission else None
        return await self.read(Hold, "POST", "/api/holds", json=_body(request), extra_headers=headers,
                               idempotency_key=idempotency_key)

    async def hold(self, hold_id: str) -> Hold:
        return await self.read(Hold, "GET", at("/api/holds/{}", hold_id))

    async def release_hold(self, hold_id: str) -> None:
        await self.call("DELETE", at("/api/holds/{}", hold_id))

    async def place_order(self, request: OrderRequest, *, idempotency_key: str) -> Order:
        return await self.read(Order, "POST", "/api/orders", json=_body(request), idempotency_key=idempotency_key)

    async def orders(self, *, limit: int, cursor: str | None = None, number: str | None = None) -> OrderPage:
        params = {"limit": limit, "cursor": cursor, "number": number}
        return await self.read(OrderPage, "GET", "/api/orders", params={k: v for k, v in params.items() if v})

    async def order(self, order_id: str) -> Order:
        return await self.read(Order, "GET", at("/api/orders/{}", order_id))

    async def cancel_order(self, order_id: str) -> None:
        await self.call("POST", at("/api/orders/{}/cancel", order_id))


class QueueApi(ServiceApi):
    """The waiting room (``/api/queue``)."""

    async def join(self, event_id: str) -> QueuePlace:
        return await self.read(QueuePlace, "POST", at("/api/queue/{}/join", event_id))

    async def place(self, event_id: str) -> QueuePlace:
        return await self.read(QueuePlace, "GET", at("/api/queue/{}/me", event_id))

    async def line(self, event_id: str) -> QueueLine:
        return await self.read(QueueLine, "GET", at("/api/queue/{}", event_id))


class PaymentsApi(ServiceApi):
    async def pay(self, order_id: str, card: Card, *, idempotency_key: str) -> None:
        path = at("/api/orders/{}/payment", order_id)
        await self.call("POST", path, json=_body(card), idempotency_key=idempotency_key)


class TicketsApi(ServiceApi):
    async def check_in(self, scan: CheckInRequest) -> Admission:
        return await self.read(Admission, "POST", "/api/checkin", json=scan.model_dump(exclude_none=True))

    async def pdf(self, ticket_id: str) -> bytes:
        return (await self.call("GET", at("/api/tickets/{}/pdf", ticket_id))).content


class Refresher:
    """Refreshes token pairs, once per refresh token.

    Identity rotates refresh tokens and treats a second use of one as theft (it ends every session of that
    family). A page and its htmx polls can all find the access token expired at the same moment, so
    concurrent refreshes of one token share one call and its answer is remembered for a minute.
    """

    def __init__(self, identity: IdentityApi, *, remember_seconds: float = 60.0) -> None:
        self.identity = identity
        self.remember_seconds = remember_seconds
        self._results: dict[str, tuple[float, Tokens | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def refresh(self, refresh_token: str) -> Tokens | None:
        lock = self._locks.setdefault(refresh_token, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            self._results = {k: v for k, v in self._results.items() if now - v[0] < self.remember_seconds}
            if refresh_token in self._results:
                return self._results[refresh_token][1]
            tokens = await self.identity.refresh(refresh_token)
            self._results[refresh_token] = (now, tokens)
        self._locks.pop(refresh_token, None)
        return tokens


class Remembered(Generic[T]):
    """One value kept for ``seconds`` (the station list: short, and it rarely changes)."""

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds
        self._value: tuple[float, T] | None = None

    async def get(self, load: Callable[[], Awaitable[T]]) -> T:
        if self._value is not None and time.monotonic() - self._value[0] < self.seconds:
            return self._value[1]
        value = await load()
        self._value = (time.monotonic(), value)
        return value
