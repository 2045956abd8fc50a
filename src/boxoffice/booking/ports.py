"""Booking's in-process ports: what other services call when they run in this process (embedded mode).

The same use cases as the ``/internal/`` routes in ``api.py``, called without HTTP: ``service.py``
registers them with ``ServiceClients.register_port`` and the caller's typed client uses them when they are
there (``payments/clients.py``). Errors are the handlers' own (``Problem`` subclasses, with the status and
slug the route would have answered); callers map them as they map the HTTP answers.
"""

from __future__ import annotations

from collections.abc import Callable

from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import Order
from boxoffice.booking.handlers import orders


class OrdersPort:
    """``GET /internal/orders/{id}`` and ``POST /internal/orders/{id}/confirm``, in process (``booking.orders``)."""

    def __init__(self, deps: Callable[[], BookingDeps]) -> None:
        self._deps = deps  # looked up per call: tests replace the service's dependencies

    async def read_order(self, order_id: str) -> Order:
        return await orders.read_order(self._deps(), order_id)

    async def confirm_order(self, order_id: str, *, hold_id: str, hold_version: int, payment_id: str) -> Order:
        command = orders.ConfirmOrder(order_id, hold_id, hold_version, payment_id)
        return await orders.confirm_order(self._deps(), command)
