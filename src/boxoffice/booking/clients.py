"""Typed clients of the services booking calls (docs/contracts.md, internal part).

All HTTP handling for a callee is here: handlers see typed results and one error, ``PeerUnavailable``.
The one fallback rule: a service that cannot be reached, or answers anything but 200 with the documented
shape, is *unavailable*; the caller decides what that means (an order shown without its tickets, a
history marked incomplete) and a warning is logged here, so no caller swallows errors silently.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from boxoffice.booking.domain import HistoryEntry, Order, Ticket, TicketUsed
from boxoffice.platform.clients import ServiceClient

log = structlog.get_logger("boxoffice.booking.clients")
M = TypeVar("M", bound=BaseModel)


class PeerUnavailable(Exception):
    """The service could not be reached or gave no usable answer."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _TicketWire(_Wire):
    id: str
    status: str
    code: str
    pdf_url: str | None = None


class _Tickets(_Wire):
    items: list[_TicketWire]


class _AuditWire(_Wire):
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, JsonValue] = {}


class _Audit(_Wire):
    items: list[_AuditWire]


class _Peer:
    """One callee: GET a path, 200 with the expected shape or ``PeerUnavailable``."""

    def __init__(self, name: str, client: Callable[[], ServiceClient]) -> None:
        self.name = name
        self._client = client

    async def _get(self, path: str, shape: type[M]) -> M:
        try:
            response = await self._client().get(path)
        except Exception as exc:  # not configured, unreachable, circuit open, timed out: all the same to callers
            raise self._unavailable(path, repr(exc)) from exc
        if response.status_code != 200:
            raise self._unavailable(path, f"answered {response.status_code}")
        try:
            return shape.model_validate_json(response.content)
        except ValidationError as exc:
            raise self._unavailable(path, f"answered an unexpected shape: {exc.error_count()} errors") from exc

    def _unavailable(self, path: str, reason: str) -> PeerUnavailable:
        log.warning("service unavailable", service=self.name, path=path, reason=reason)
        return PeerUnavailable(self.name, reason)

    async def order_audit(self, order_id: str) -> list[HistoryEntry]:
        """The service's audit entries for one order (``GET /internal/orders/{id}/audit``), oldest first."""
        answer = await self._get(f"/internal/orders/{order_id}/audit", _Audit)
        return [HistoryEntry(e.at, e.actor, e.action, e.detail) for e in answer.items]


class _Voided(_Wire):
    order_id: str
    voided: int


class _Problem(_Wire):
    type: str = ""
    detail: str = ""
    used_at: str | None = None


class TicketsClient(_Peer):
    def __init__(self, client: Callable[[], ServiceClient]) -> None:
        super().__init__("tickets", client)

    async def void_order(self, order: Order) -> int:
        """The refund fence (``POST /internal/orders/{id}/void``): tickets voids every ticket of the order,
        and any it would issue later, unless one was used. Returns how many it voided; raises
        ``TicketUsed`` when one was used (nothing changed), ``PeerUnavailable`` when tickets cannot say."""
        path = f"/internal/orders/{order.id}/void"
        body = {"user_id": order.user_id, "kind": order.kind.value, "event_id": order.event_id}
        body["holder_name"] = order.holder_name[:200]
        try:
            # Voiding is idempotent, so the client may retry it (an Idempotency-Key marks a call retryable).
            response = await self._client().post(path, json=body, headers={"Idempotency-Key": f"void-{order.id}"})
        except Exception as exc:  # not configured, unreachable, circuit open, timed out: all the same here
            raise self._unavailable(path, repr(exc)) from exc
        if response.status_code == 409:
            try:
                problem = _Problem.model_validate_json(response.content)
            except ValidationError:
                problem = _Problem()
            if problem.type.endswith("/ticket-used"):
                detail = problem.detail or "A ticket of this order was used."
                raise TicketUsed(detail, used_at=problem.used_at) if problem.used_at else TicketUsed(detail)
        if response.status_code != 200:
            raise self._unavailable(path, f"answered {response.status_code}")
        try:
            return _Voided.model_validate_json(response.content).voided
        except ValidationError as exc:
            raise self._unavailable(path, f"answered an unexpected shape: {exc.error_count()} errors") from exc

    async def order_tickets(self, order_id: str) -> list[Ticket]:
        """The order's tickets (``GET /internal/orders/{id}/tickets``); empty until they are issued."""
        answer = await self._get(f"/internal/orders/{order_id}/tickets", _Tickets)
        return [Ticket(t.id, t.status, t.code, t.pdf_url) for t in answer.items]


class PaymentsClient(_Peer):
    def __init__(self, client: Callable[[], ServiceClient]) -> None:
        super().__init__("payments", client)
