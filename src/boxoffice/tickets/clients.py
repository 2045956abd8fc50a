"""Typed clients of the services tickets calls: booking's orders (docs/contracts.md, "Internal HTTP").

All HTTP of a call lives here: the path, the status codes and what each means for tickets, the parsing of
the answer. An id goes into a path only if it is one plain segment (``[A-Za-z0-9_-]``; the ids of
``ticket-bookings`` are): quoting alone is not enough, since ASGI servers decode ``%2F`` before routing.
Any other id names no order, and booking is not asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from boxoffice.platform.clients import ServiceClient
from boxoffice.platform.problems import ServiceUnavailable

log = structlog.get_logger("boxoffice.tickets")

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def segment(value: str) -> str | None:
    """``value`` as exactly one path segment, or None when it cannot be one."""
    return quote(value, safe="") if _SEGMENT.match(value) else None


class _OrderBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    user_id: str


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("Orders cannot be checked right now; try again later.")


class BookingOrders:
    """Booking's orders as tickets needs them: who owns one."""

    def __init__(self, client: Callable[[], ServiceClient]) -> None:
        self._client = client  # looked up per call: booking may be registered after tickets is built

    async def owner(self, order_id: str) -> str | None:
        """The id of the customer who owns the order, or None when booking has no such order."""
        if (path_id := segment(order_id)) is None:
            return None
        try:
            booking = self._client()
        except LookupError:
            raise _unavailable() from None
        response = await booking.get(f"/internal/orders/{path_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            log.warning("booking answered unexpectedly", status=response.status_code, order_id=order_id)
            raise _unavailable()
        try:
            return _OrderBody.model_validate_json(response.content).user_id
        except ValidationError:
            log.warning("booking's order does not match the contract", order_id=order_id)
            raise _unavailable() from None
