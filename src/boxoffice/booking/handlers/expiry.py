"""How a hold ends without becoming an order's sale: released by its customer, or expired (sweeper).

A hold leaves ``active`` only through one conditional write (store.end_hold), so a release, an expiry and
a confirmation racing for it have exactly one winner; the loser changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from boxoffice.booking import domain, inventory, store
from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import HoldStatus, OrderStatus
from boxoffice.booking.handlers.common import HOLDS_TOPIC, ORDERS, SYSTEM, record_hold, record_order
from boxoffice.platform.db import UnitOfWork


async def end_hold(uow: UnitOfWork, hold_id: str, *, to: HoldStatus, now: datetime, actor: str) -> bool:
    """Release or expire one hold and its claims (and its pending order); False if it was not active."""
    hold = await store.hold_of(uow.conn, hold_id)
    expired_only = True if to == HoldStatus.EXPIRED else None
    if hold is None or not await store.end_hold(uow.conn, hold_id, to=to, now=now, expired=expired_only):
        return False
    await inventory.release(uow.conn, hold)
    order = await store.order_for_hold(uow.conn, hold_id)
    await record_hold(uow.conn, hold, to, actor=actor, at=now, order_id=order.id if order else None)
    if order is not None and order.status == OrderStatus.PENDING_PAYMENT:
        new_status = domain.order_status_after(to)
        await store.set_order(uow.conn, order.id, status=new_status, cancelled_at=now)
        await record_order(uow.conn, order, new_status, actor=actor, at=now)
        ORDERS.labels(new_status).inc()
    kind = "booking.hold-expired" if to == HoldStatus.EXPIRED else "booking.hold-released"
    uow.publish(
        HOLDS_TOPIC,
        kind,
        key=hold.event_id,
        data={"hold_id": hold.id, "user_id": hold.user_id, "event_id": hold.event_id, "quantity": hold.quantity},
    )
    return True


async def expire_section_holds(uow: UnitOfWork, section_id: str, now: datetime) -> int:
    """End the section's holds whose time ran out, giving their tickets back; returns how many."""
    ended = 0
    for hold_id in await store.expired_hold_ids(uow.conn, now, section_id=section_id, limit=500):
        ended += await end_hold(uow, hold_id, to=HoldStatus.EXPIRED, now=now, actor=SYSTEM)
    return ended


async def sweep_expired_holds(deps: BookingDeps, *, batch: int = 200) -> int:
    """Release holds whose time ran out and announce ``booking.hold-expired``; returns how many."""
    now = deps.now()
    async with deps.db.read() as conn:
        hold_ids = await store.expired_hold_ids(conn, now, limit=batch)
    swept = 0
    for hold_id in hold_ids:

        async def work(uow: UnitOfWork, hold_id: str = hold_id) -> bool:
            return await end_hold(uow, hold_id, to=HoldStatus.EXPIRED, now=now, actor=SYSTEM)

        swept += bool(await deps.db.transact(work))
    return swept
