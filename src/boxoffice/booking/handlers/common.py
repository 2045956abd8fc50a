"""What booking's use cases share: topics, metrics, the ownership rule, and the audit entry of a change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking import store
from boxoffice.booking.domain import Hold, JsonObject, Order
from boxoffice.platform import audit
from boxoffice.platform.auth import Principal
from boxoffice.platform.metrics import counter
from boxoffice.platform.problems import NotFound

HOLDS_TOPIC = "booking.holds"
BOOKINGS_TOPIC = "ticket-bookings"
HOLDS = counter("boxoffice_holds_total", "Holds placed, and refused", ("outcome",))
ORDERS = counter("boxoffice_orders_total", "Orders by what happened to them", ("status",))
TICKETS_SOLD = counter("boxoffice_tickets_sold_total", "Tickets in confirmed orders")

SYSTEM = audit.SYSTEM
"""The actor of expiry (the sweeper, or a hold that ran out found by a later claim)."""


def iso(at: datetime) -> str:
    """A time as the contracts write it: RFC 3339 in UTC with ``Z``."""
    return at.isoformat().replace("+00:00", "Z")


def may_see(user: Principal, owner_id: str) -> bool:
    """A customer sees their own holds and orders; an admin sees all. Others get a 404, not a 403."""
    return owner_id == user.id or user.has_role("admin")


async def owned_hold(conn: AsyncConnection, user: Principal, hold_id: str) -> Hold:
    hold = await store.hold_of(conn, hold_id)
    if hold is None or not may_see(user, hold.user_id):
        raise NotFound("No such hold.")
    return hold


async def record_hold(
    conn: AsyncConnection,
    hold: Hold,
    action: str,
    *,
    actor: str,
    at: datetime,
    order_id: str | None = None,
    detail: JsonObject | None = None,
) -> None:
    await audit.record(
        conn,
        entity="hold",
        entity_id=hold.id,
        action=f"hold.{action}",
        actor=actor,
        at=at,
        order_id=order_id,
        detail={"hold_id": hold.id, **(detail or {})},
    )


async def record_order(
    conn: AsyncConnection, order: Order, action: str, *, actor: str, at: datetime, detail: JsonObject | None = None
) -> None:
    await audit.record(
        conn,
        entity="order",
        entity_id=order.id,
        action=f"order.{action}",
        actor=actor,
        at=at,
        order_id=order.id,
        detail=detail,
    )
