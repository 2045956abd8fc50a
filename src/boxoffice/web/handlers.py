"""What the pages do: call the services on the visitor's behalf, and keep the visitor's session.

The session is the identity service's token pair in one HttpOnly cookie. Every call to another service goes
through a typed client (``clients``) with the visitor's bearer token; an expired access token is refreshed
once, transparently. Errors come back as ``ApiProblem`` carrying the RFC 9457 problem, which the pages turn
into a friendly message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from boxoffice.platform.auth import Principal
from boxoffice.platform.problems import Problem
from boxoffice.web import domain
from boxoffice.web.clients import (
    ApiProblem,
    BookingApi,
    CatalogApi,
    IdentityApi,
    PaymentsApi,
    QueueApi,
    TicketsApi,
    at,
    not_found,
)
from boxoffice.web.deps import WebDeps
from boxoffice.web.domain import CSRF_COOKIE, SESSION_COOKIE, ProblemInfo, Tokens
from boxoffice.web.resources import Card, Hold, HoldRequest, Order, OrderRequest, Passenger, Station

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "ApiProblem", "LoginRequired", "Tokens", "Visitor"]

PDF_WAITS = 10  # a PDF is rendered moments after its ticket: wait a little rather than fail


class LoginRequired(Exception):
    """The page needs a logged-in visitor (the pages answer with a redirect to the login form)."""


def page_id(value: str) -> str:
    """An id from a page's address, checked before it goes anywhere: not an id → the page does not exist."""
    if not domain.is_id(value):
        raise not_found("There is no page at this address.")
    return value


@dataclass(slots=True)
class Visitor:
    """One request's visitor: their tokens (if logged in), who they are, and what the cookie must become."""

    deps: WebDeps
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

    def require_admin(self) -> Principal:
        user = self.require_user()
        if not self.is_admin:
            raise ApiProblem(ProblemInfo(403, "forbidden", "Forbidden", "This page is for operators."))
        return user

    async def identify(self) -> None:
        """Who holds these tokens; refreshes an expired access token, forgets a session that cannot be."""
        if self.tokens is None:
            return
        tokens = self.tokens
        # Twice at most: a pair another request refreshed a while ago may itself have expired since.
        for _ in range(3):
            try:
                user = await self.deps.verifier.verify(tokens.access)
            except Problem as exc:
                if exc.status == 503:
                    raise
            else:
                self._identified(tokens, user)
                return
            fresh = await self.deps.refresher.refresh(tokens.refresh)
            if fresh is None:
                break
            tokens = fresh
        self.log_out()

    def _identified(self, tokens: Tokens, user: Principal) -> None:
        if tokens is self.tokens:
            self.user = user
        else:
            self.log_in(tokens, user)

    async def log_in_with(self, tokens: Tokens) -> None:
        self.log_in(tokens, await self.deps.verifier.verify(tokens.access))

    async def renew(self) -> str | None:
        """A fresh access token after a service found this one expired; None when the session is over."""
        if self.tokens is None:
            return None
        fresh = await self.deps.refresher.refresh(self.tokens.refresh)
        if fresh is None:
            return None
        try:
            self.log_in(fresh, await self.deps.verifier.verify(fresh.access))
        except Problem:
            return None
        return fresh.access

    # The services, as this visitor.
    @property
    def identity(self) -> IdentityApi:
        return self.deps.identity.as_visitor(self.tokens, self.renew)

    @property
    def catalog(self) -> CatalogApi:
        return self.deps.catalog.as_visitor(self.tokens, self.renew)

    @property
    def booking(self) -> BookingApi:
        return self.deps.booking.as_visitor(self.tokens, self.renew)

    @property
    def payments(self) -> PaymentsApi:
        return self.deps.payments.as_visitor(self.tokens, self.renew)

    @property
    def tickets(self) -> TicketsApi:
        return self.deps.tickets.as_visitor(self.tokens, self.renew)

    @property
    def queue(self) -> QueueApi:
        return self.deps.queue.as_visitor(self.tokens, self.renew)

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
        """Any service's public API as this visitor, untyped: the JSON answer, or ``ApiProblem``.

        For a page whose service has no typed client in ``clients`` yet; build ``path`` with ``clients.at``.
        """
        api = self.deps.service(service).as_visitor(self.tokens, self.renew)
        response = await api.call(method, path, json=json, params=params, idempotency_key=idempotency_key, auth=auth)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def raw(self, service: str, method: str, path: str, **options: Any) -> httpx.Response:
        """Like ``call``, but the response whatever its status."""
        return await self.deps.service(service).as_visitor(self.tokens, self.renew).send(method, path, **options)


# What the pages ask for ------------------------------------------------------------------------------------


async def list_stations(visitor: Visitor) -> list[Station]:
    """Every station (a short list that rarely changes; kept for a minute)."""

    async def load() -> list[Station]:
        stations: list[Station] = []
        cursor: str | None = None
        while True:
            page = await visitor.catalog.stations(cursor)
            stations.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                return stations

    return await visitor.deps.stations.get(load)


ARTISTS_SEARCHED = 5


async def events_of_artists(visitor: Visitor, q: str) -> dict[str, str]:
    """``{event id: artist name}``: upcoming events of the artists whose name matches ``q`` (music's line-ups).

    Catalog finds events by their own words (name, venue, city, address, description); who plays is music's.
    Music not answering leaves the search to catalog alone.
    """
    try:
        page = await visitor.call("music", "GET", "/api/artists", params={"q": q, "limit": ARTISTS_SEARCHED},
                                  auth=False)
        ids = [str(a["id"]) for a in page["items"] if isinstance(a, dict) and "id" in a]
        artists = await asyncio.gather(*(visitor.call("music", "GET", at("/api/artists/{}", i), auth=False)
                                         for i in ids))
    except (ApiProblem, KeyError, TypeError):
        return {}
    found: dict[str, str] = {}
    for artist in artists:
        for show in artist.get("upcoming_events", []) if isinstance(artist, dict) else []:
            if isinstance(show, dict) and domain.is_id(str(show.get("event_id", ""))):
                found.setdefault(str(show["event_id"]), str(artist.get("name", "")))
    return found


async def order_titles(visitor: Visitor, orders: Sequence[Order]) -> dict[str, str]:
    """A title for each order's event or run, fetched once per distinct id (unknown ones say so)."""
    wanted = {(o.kind, o.event_id) for o in orders}
    return await titles(visitor, [(kind, target) for kind, target in wanted if target])


async def titles(visitor: Visitor, targets: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``{id: title}`` for events (``("event", id)``) and train runs (``("train", id)``)."""

    async def title(kind: str, target: str) -> tuple[str, str]:
        try:
            if kind == "train":
                run = await visitor.catalog.run(target)
                return target, f"{run.train_number} {run.name}"
            return target, (await visitor.catalog.event(target)).name
        except ApiProblem:
            return target, "Unknown event"

    return dict(await asyncio.gather(*(title(kind, target) for kind, target in targets)))


async def hold_title(visitor: Visitor, hold: Hold) -> tuple[str, str]:
    """A heading for the hold and the page to go back to for other seats."""
    if hold.run_id:
        origin, destination = hold.origin or "", hold.destination or ""
        back = f"/trains/runs/{hold.run_id}?origin={origin}&destination={destination}"
        found = await titles(visitor, [("train", hold.run_id)])
        return f"{found[hold.run_id]}, {origin} → {destination}", back
    event_id = hold.event_id or ""
    found = await titles(visitor, [("event", event_id)])
    return found[event_id], f"/events/{event_id}"


async def wait_for_tickets(visitor: Visitor, order_id: str) -> Order:
    """The order; tickets follow a confirmation within moments (via the outbox), so wait for them briefly."""
    order = await visitor.booking.order(order_id)
    for _ in range(10):
        if order.status != "confirmed" or order.tickets:
            break
        await asyncio.sleep(0.1)
        order = await visitor.booking.order(order_id)
    return order


@dataclass(frozen=True, slots=True)
class Payment:
    order_id: str
    earlier: bool = False
    """Paid before this attempt (another tab, a resubmitted form): nothing was charged now."""


async def pay_for_hold(
    visitor: Visitor,
    user_id: str,
    hold_id: str,
    card: Card,
    *,
    attempt: str,
    passengers: Sequence[Passenger] = (),
) -> Payment:
    """Order the hold (with a passenger name per train seat) and pay the order; the service's refusal as
    ``ApiProblem``."""
    order_id: str | None = None
    try:
        # The same hold and names make the same order: a retry after a decline pays the order placed before.
        names = [f"{p.seat_id}={p.name}" for p in passengers]
        order_key = domain.attempt_key("order", user_id, hold_id, *names)
        request = OrderRequest(hold_id=hold_id, passengers=list(passengers) or None)
        try:
            order_id = (await visitor.booking.place_order(request, idempotency_key=order_key)).id
        except ApiProblem as exc:
            # Ordered before with other names (then a decline): the order stands as placed; pay it.
            earlier = await orders_for_hold(visitor, hold_id) if exc.slug == "hold-already-ordered" else []
            if not earlier:
                raise
            order_id = earlier[0].id
        # One key per rendering of the form: a double click pays once, a new card after a decline is new.
        await visitor.payments.pay(order_id, card, idempotency_key=domain.attempt_key("pay", order_id, attempt))
    except ApiProblem as exc:
        paid_before = order_id is not None and exc.slug == "order-not-payable" and any(
            o.status == "confirmed" for o in await orders_for_hold(visitor, hold_id)
        )
        if order_id is not None and paid_before:
            return Payment(order_id, earlier=True)
        raise
    return Payment(order_id)


async def orders_for_hold(visitor: Visitor, hold_id: str) -> list[Order]:
    page = await visitor.booking.orders(limit=100)
    return [o for o in page.items if o.hold_id == hold_id]


async def ticket_pdf(visitor: Visitor, ticket_id: str) -> bytes:
    """The ticket's PDF, waiting briefly while it is still being rendered."""
    for _ in range(PDF_WAITS):
        try:
            return await visitor.tickets.pdf(ticket_id)
        except ApiProblem as exc:
            if exc.slug != "pdf-not-ready":
                raise
        await asyncio.sleep(0.3)
    return await visitor.tickets.pdf(ticket_id)


class WaitInLine(Exception):
    """A queued sale's hold needs an admission this visitor does not have yet: the waiting page is next."""


async def place_event_hold(visitor: Visitor, wanted: HoldRequest, *, idempotency_key: str | None = None) -> Hold:
    """Hold seats of an event or a train run; for a queued sale (an event, a run's booking day), with the
    waiting room's admission (docs/waiting-room.md).

    Booking alone knows whether a sale is queued, so the hold is tried first; booking's ``not-admitted``
    answer sends the visitor's admission along, or the visitor to the line.
    """
    try:
        return await visitor.booking.place_hold(wanted, idempotency_key=idempotency_key)
    except ApiProblem as exc:
        sale_id = wanted.event_id or wanted.run_id
        if exc.slug != "not-admitted" or sale_id is None:
            raise
    try:
        place = await visitor.queue.place(sale_id)
    except ApiProblem as exc:
        if exc.status == 404:
            raise WaitInLine from None
        raise
    if place.admission is None:
        raise WaitInLine
    return await visitor.booking.place_hold(wanted, admission=place.admission.token, idempotency_key=idempotency_key)
