"""What the pages do: call the services on the visitor's behalf, and keep the visitor's session.

The session is the identity service's token pair in one HttpOnly cookie. Every call to another service goes
through the platform's service clients (in-process in embedded mode) with the visitor's bearer token; an
expired access token is refreshed once, transparently. Errors come back as ``ApiProblem`` carrying the
RFC 9457 problem, which the pages turn into a friendly message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from boxoffice.platform.auth import Principal
from boxoffice.platform.problems import Problem
from boxoffice.web.domain import ProblemInfo, friendly_message, problem_from_body

if TYPE_CHECKING:
    from boxoffice.web.service import WebService

log = structlog.get_logger("boxoffice.web")

SESSION_COOKIE = "bo_session"
CSRF_COOKIE = "bo_csrf"


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


class LoginRequired(Exception):
    """The page needs a logged-in visitor (the pages answer with a redirect to the login form)."""


@dataclass(frozen=True, slots=True)
class Tokens:
    access: str
    refresh: str

    def encode(self) -> str:
        raw = json.dumps({"a": self.access, "r": self.refresh}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> Tokens | None:
        if not value:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            return cls(access=str(data["a"]), refresh=str(data["r"]))
        except (ValueError, KeyError, TypeError):
            return None

    @classmethod
    def from_pair(cls, body: Mapping[str, Any]) -> Tokens:
        return cls(access=str(body["access_token"]), refresh=str(body["refresh_token"]))


class Refresher:
    """Refreshes token pairs, once per refresh token.

    Identity rotates refresh tokens and treats a second use of one as theft (it ends every session of that
    family). A page and its htmx polls can all find the access token expired at the same moment, so
    concurrent refreshes of one token share one call and its answer is remembered for a minute.
    """

    def __init__(self, *, remember_seconds: float = 60.0) -> None:
        self.remember_seconds = remember_seconds
        self._results: dict[str, tuple[float, Tokens | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def refresh(self, svc: WebService, refresh_token: str) -> Tokens | None:
        lock = self._locks.setdefault(refresh_token, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            self._results = {k: v for k, v in self._results.items() if now - v[0] < self.remember_seconds}
            if refresh_token in self._results:
                return self._results[refresh_token][1]
            response = await svc.clients.get("identity").post(
                "/api/auth/refresh", json={"refresh_token": refresh_token}
            )
            tokens = Tokens.from_pair(response.json()) if response.status_code == 200 else None
            self._results[refresh_token] = (now, tokens)
        self._locks.pop(refresh_token, None)
        return tokens


@dataclass(slots=True)
class Visitor:
    """One request's visitor: their tokens (if logged in), who they are, and what the cookie must become."""

    svc: WebService
    tokens: Tokens | None
    user: Principal | None = None
    cookie_changed: bool = False
    flashes: list[str] = field(default_factory=list)

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.has_role("admin")

    def log_in(self, tokens: Tokens, user: Principal | None = None) -> None:
        self.tokens, self.user, self.cookie_changed = tokens, user, True

    def log_out(self) -> None:
        self.tokens, self.user, self.cookie_changed = None, None, True

    def require_user(self) -> Principal:
        if self.user is None:
            raise LoginRequired
        return self.user

    async def identify(self) -> None:
        """Who holds these tokens; refreshes an expired access token, forgets a session that cannot be."""
        if self.tokens is None:
            return
        tokens = self.tokens
        # Twice at most: a pair another request refreshed a while ago may itself have expired since.
        for _ in range(3):
            try:
                user = await self.svc.verifier.verify(tokens.access)
            except Problem as exc:
                if exc.status == 503:
                    raise
            else:
                if tokens is self.tokens:
                    self.user = user
                else:
                    self.log_in(tokens, user)
                return
            fresh = await self.svc.refresher.refresh(self.svc, tokens.refresh)
            if fresh is None:
                break
            tokens = fresh
        self.log_out()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
    ) -> Any:
        """Calls another service's public API as this visitor; the JSON answer, or ``ApiProblem``."""
        response = await self.raw(service, method, path, json=json, params=params,
                                  idempotency_key=idempotency_key, auth=auth)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            problem = problem_from_body(response.status_code, body)
            if problem.status >= 500:
                log.warning("service call failed", service=service, path=path, status=problem.status)
            raise ApiProblem(problem)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def raw(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
    ) -> Any:
        headers: dict[str, str] = {}
        if auth and self.tokens is not None:
            headers["Authorization"] = f"Bearer {self.tokens.access}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            return await self.svc.clients.get(service).request(method, path, json=json, headers=headers,
                                                               params=clean)
        except Problem as exc:  # the client's own failures: unreachable, circuit open
            raise ApiProblem(ProblemInfo(exc.status, exc.slug, exc.title, exc.detail)) from exc


# What the pages ask for ------------------------------------------------------------------------------------


async def list_stations(visitor: Visitor) -> list[dict[str, Any]]:
    """Every station (a short list that rarely changes; kept for a minute)."""
    svc = visitor.svc
    cached = svc.cache.get("stations")
    if cached is not None and time.monotonic() - cached[0] < 60:
        stations: list[dict[str, Any]] = cached[1]
        return stations
    stations, cursor = [], None
    while True:
        page = await visitor.call("catalog", "GET", "/api/stations", params={"cursor": cursor, "limit": 200},
                                  auth=False)
        stations.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    svc.cache["stations"] = (time.monotonic(), stations)
    return stations


async def order_titles(visitor: Visitor, orders: list[dict[str, Any]]) -> dict[str, str]:
    """A title for each order's event or run, fetched once per distinct id (unknown ones say so)."""
    wanted = {(o.get("kind", "event"), o.get("event_id") or o.get("run_id")) for o in orders}

    async def title(kind: str, target: str) -> tuple[str, str]:
        try:
            if kind == "train":
                run = await visitor.call("catalog", "GET", f"/api/trains/runs/{target}", auth=False)
                return target, f"{run['train_number']} {run['name']}"
            event = await visitor.call("catalog", "GET", f"/api/events/{target}", auth=False)
            return target, str(event["name"])
        except ApiProblem:
            return target, "Unknown event"

    pairs = await asyncio.gather(*(title(kind, t) for kind, t in wanted if t))
    return dict(pairs)


async def wait_for_tickets(visitor: Visitor, order_id: str) -> dict[str, Any]:
    """The order; tickets follow a confirmation within moments (via the outbox), so wait for them briefly."""
    order: dict[str, Any] = await visitor.call("booking", "GET", f"/api/orders/{order_id}")
    for _ in range(10):
        if order.get("status") != "confirmed" or order.get("tickets"):
            break
        await asyncio.sleep(0.1)
        order = await visitor.call("booking", "GET", f"/api/orders/{order_id}")
    return order
