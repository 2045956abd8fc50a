"""Typed clients of the services payments calls: booking's orders (docs/contracts.md, "Internal HTTP").

All HTTP of a call lives here: the path, the status codes and what each one means for payments, the parsing
of the answer. Handlers see typed results and domain errors only. When booking runs in this process, its
in-process port (``booking.orders``, booking's ``ports.py``) is called instead of its routes, and its errors
are mapped by the same rules as the HTTP answers (the status and slug the route would have answered).

An id goes into a path only if it is one plain segment (``[A-Za-z0-9_-]``, as booking's ids are): quoting
alone is not enough, since ASGI servers decode ``%2F`` before routing, so ``o1%2Fconfirm`` would reach
another endpoint. Any other id names no order, and booking is not asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from boxoffice.payments.domain import BookingOrder
from boxoffice.platform.clients import ServiceClient
from boxoffice.platform.problems import Problem, ServiceUnavailable
from boxoffice.platform.tracing import internal_call

log = structlog.get_logger("boxoffice.payments")


class _OrderBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    user_id: str
    status: str
    hold_id: str
    hold_version: int
    total: int
    currency: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """Booking confirmed the order for this payment (or had already, for the same payment id)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Booking will not confirm the order (the hold expired, the order is not payable, it is gone)."""

    reason: str  # booking's problem slug: hold-expired | order-not-payable | not-found ...


Confirmation = Confirmed | Refused


_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def segment(value: str) -> str | None:
    """``value`` as exactly one path segment, or None when it cannot be one (``/``, ``..``, ``%``, ``?``,
    control characters, ...): such an id names nothing, and must neither reach another path nor make the
    URL invalid."""
    return quote(value, safe="") if _SEGMENT.match(value) else None


def _slug(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    kind = body.get("type") if isinstance(body, dict) else None
    return str(kind).rsplit("/", 1)[-1] if kind else ""


class _LocalOrder(Protocol):
    """Booking's order as its in-process port gives it (the fields ``GET /internal/orders/{id}`` answers)."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def hold_id(self) -> str: ...
    @property
    def hold_version(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def currency(self) -> str: ...


@runtime_checkable
class LocalOrders(Protocol):
    """Booking's in-process port ``booking.orders``; its errors are ``Problem`` s with the routes' statuses."""

    async def read_order(self, order_id: str) -> _LocalOrder: ...

    async def confirm_order(self, order_id: str, *, hold_id: str, hold_version: int, payment_id: str) -> object: ...


def _order(order: _LocalOrder) -> BookingOrder:
    return BookingOrder(
        id=order.id,
        user_id=order.user_id,
        status=str(order.status),
        hold_id=order.hold_id,
        hold_version=order.hold_version,
        total=order.total,
        currency=order.currency,
    )


class BookingOrders:
    """Booking's orders as payments needs them."""

    def __init__(self, client: Callable[[], ServiceClient], local: Callable[[], object | None] = lambda: None) -> None:
        self._client = client  # looked up per call: booking may be registered after payments is built
        self._local = local
        self._checked: LocalOrders | None = None  # the last port found to be one

    def _port(self) -> LocalOrders | None:
        port = self._local()
        if port is None:
            return None
        if port is self._checked:  # a runtime-checkable protocol's isinstance costs tens of microseconds
            return self._checked
        if isinstance(port, LocalOrders):
            self._checked = port
            return port
        return None

    def _booking(self) -> ServiceClient:
        try:
            return self._client()
        except LookupError:
            raise ServiceUnavailable("Orders cannot be read right now; try again in a moment.") from None

    async def get(self, order_id: str) -> BookingOrder | None:
        """The order, or None when booking has no order with this id."""
        if (path_id := segment(order_id)) is None:
            return None
        if (port := self._port()) is not None:
            with internal_call("GET /internal/orders/{order_id}"):
                try:
                    return _order(await port.read_order(order_id))
                except Problem as exc:
                    if exc.status == 404:
                        return None
                    log.warning("booking answered unexpectedly", status=exc.status, order_id=order_id)
                    raise ServiceUnavailable("Orders cannot be read right now; try again in a moment.") from exc
                except Exception as exc:  # what booking's app would have answered with a 500
                    log.exception("booking failed", order_id=order_id)
                    raise ServiceUnavailable("Orders cannot be read right now; try again in a moment.") from exc
        response = await self._booking().get(f"/internal/orders/{path_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            log.warning("booking answered unexpectedly", status=response.status_code, order_id=order_id)
            raise ServiceUnavailable("Orders cannot be read right now; try again in a moment.")
        try:
            body = _OrderBody.model_validate_json(response.content)
        except ValidationError:
            log.warning("booking's order does not match the contract", order_id=order_id)
            raise ServiceUnavailable("Orders cannot be read right now; try again in a moment.") from None
        return BookingOrder(
            id=body.id,
            user_id=body.user_id,
            status=body.status,
            hold_id=body.hold_id,
            hold_version=body.hold_version,
            total=body.total,
            currency=body.currency,
        )

    async def confirm(self, order: BookingOrder, *, payment_id: str) -> Confirmation:
        """Ask booking to confirm the order for this payment, fenced by the hold id and version.

        Idempotent by payment id (sent as the Idempotency-Key, so the client may retry it). Raises
        ``ServiceUnavailable`` when booking did not answer: the payment then stays authorized."""
        if (path_id := segment(order.id)) is None:
            return Refused("not-found")
        if (port := self._port()) is not None:
            with internal_call("POST /internal/orders/{order_id}/confirm"):
                try:
                    await port.confirm_order(
                        order.id, hold_id=order.hold_id, hold_version=order.hold_version, payment_id=payment_id
                    )
                except Problem as exc:
                    if exc.status in (404, 409):
                        return Refused(exc.slug or "not-confirmed")
                    log.warning("booking could not confirm", status=exc.status, order_id=order.id)
                    raise ServiceUnavailable(
                        "The payment is authorized but the order could not be confirmed yet; retry."
                    ) from exc
                except Exception as exc:  # what booking's app would have answered with a 500
                    log.exception("booking failed to confirm", order_id=order.id)
                    raise ServiceUnavailable(
                        "The payment is authorized but the order could not be confirmed yet; retry."
                    ) from exc
            return Confirmed()
        response = await self._booking().post(
            f"/internal/orders/{path_id}/confirm",
            json={"hold_id": order.hold_id, "hold_version": order.hold_version, "payment_id": payment_id},
            headers={"Idempotency-Key": payment_id},
        )
        if response.status_code == 200:
            return Confirmed()
        if response.status_code in (404, 409):
            return Refused(_slug(response) or "not-confirmed")
        log.warning("booking could not confirm", status=response.status_code, order_id=order.id)
        raise ServiceUnavailable("The payment is authorized but the order could not be confirmed yet; retry.")
