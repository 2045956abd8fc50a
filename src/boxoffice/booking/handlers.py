"""Booking's use cases: place and release holds, place, confirm and cancel orders, sweep expired holds.

Order placement follows pretix's three phases without its race: validate outside the transaction; check
and write inside ONE transaction whose writes are conditional (store.py, inventory.py); side effects
(tickets, refunds, analytics) only through the outbox after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from boxoffice.booking import domain, inventory, store
from boxoffice.booking.domain import HoldKind, HoldStatus, OrderStatus
from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.idempotency import StoredResponse, run_idempotent
from boxoffice.platform.metrics import counter
from boxoffice.platform.problems import Forbidden, NotFound

if TYPE_CHECKING:
    from boxoffice.booking.service import BookingService

HOLDS_TOPIC = "booking.holds"
BOOKINGS_TOPIC = "ticket-bookings"
HOLDS = counter("boxoffice_holds_total", "Holds placed, and refused", ("outcome",))
ORDERS = counter("boxoffice_orders_total", "Orders by what happened to them", ("status",))
TICKETS_SOLD = counter("boxoffice_tickets_sold_total", "Tickets in confirmed orders")


@dataclass(frozen=True, slots=True)
class HoldRequest:
    event_id: str | None = None
    section_id: str | None = None
    quantity: int | None = None
    seat_ids: tuple[str, ...] = ()
    run_id: str | None = None
    class_code: str | None = None
    origin: str | None = None
    destination: str | None = None


def hold_out(hold: Any, now: datetime) -> dict[str, Any]:
    out = {
        "id": hold.id,
        "status": domain.hold_status(hold.status, hold.expires_at, now),
        "expires_at": hold.expires_at.isoformat().replace("+00:00", "Z"),
        "items": hold.items,
        "total": hold.total,
        "currency": hold.currency,
        "quantity": hold.quantity,
        "version": hold.version,
    }
    if hold.kind == HoldKind.TRAIN:
        out.update(run_id=hold.event_id, class_code=hold.class_code, origin=hold.origin, destination=hold.destination)
    else:
        out.update(event_id=hold.event_id, section_id=hold.section_id)
    return out


async def place_hold(
    svc: BookingService, user: Principal, request: HoldRequest, *, idempotency_key: str | None, body: Any
) -> StoredResponse:
    async def work(uow: UnitOfWork) -> dict[str, Any]:
        now = svc.now()
        hold_id = uuid7()
        expires_at = now + timedelta(seconds=svc.config.hold_ttl_seconds)
        # The customer's own lock first and the contended inventory row last, so that row stays locked
        # only for the claim and the commit.
        await store.lock_customer(uow.conn, user.id)
        event_key = request.run_id or request.event_id or ""
        active, tickets = await store.customer_usage(uow.conn, user.id, event_key, now)
        requested = len(request.seat_ids) or request.quantity or 0
        domain.check_limits(svc.limits, active_holds=active, tickets_for_event=tickets, requested=requested)
        values = await _claim(uow, request, hold_id=hold_id, expires_at=expires_at, now=now)
        await store.insert_hold(
            uow.conn,
            {
                **values,
                "id": hold_id,
                "user_id": user.id,
                "status": HoldStatus.ACTIVE,
                "version": 1,
                "expires_at": expires_at,
                "created_at": now,
            },
        )
        uow.publish(
            HOLDS_TOPIC,
            "booking.hold-placed",
            key=values["event_id"],
            data={
                "hold_id": hold_id,
                "user_id": user.id,
                "event_id": values["event_id"],
                "quantity": values["quantity"],
                "expires_at": expires_at.isoformat(),
            },
        )
        placed = SimpleNamespace(**values, id=hold_id, status=HoldStatus.ACTIVE, version=1, expires_at=expires_at)
        return hold_out(placed, now)

    try:
        answer = await run_idempotent(
            svc.db, work, owner=user.id, scope="holds", key=idempotency_key, body=body, status_code=201, now=svc.now
        )
    except (domain.SoldOut, domain.SeatUnavailable, domain.LimitReached) as refused:
        HOLDS.labels(refused.slug).inc()
        raise
    HOLDS.labels("placed").inc()
    return answer


async def _claim(
    uow: UnitOfWork, r: HoldRequest, *, hold_id: str, expires_at: datetime, now: datetime
) -> dict[str, Any]:
    """Claim the inventory a hold asks for; returns the hold's columns that depend on its kind."""
    conn = uow.conn
    if r.run_id is not None:
        return await _claim_train(uow, r, hold_id=hold_id, expires_at=expires_at, now=now)
    event = await store.event_row(conn, r.event_id or "")
    if event is None:
        raise domain.UnknownInventory("This event is not on sale (yet).")
    if r.seat_ids:
        rows = await inventory.seats_for(conn, event.event_id, list(r.seat_ids))
        await inventory.claim_seats(
            conn, event.event_id, list(r.seat_ids), hold_id=hold_id, expires_at=expires_at, now=now
        )
        names = await store.section_names(conn, event.event_id)
        items = [
            {"seat_id": s.seat_id, "label": s.label, "price": s.price, "section": names[s.section_id]} for s in rows
        ]
        section_id = rows[0].section_id if len({s.section_id for s in rows}) == 1 else None
        return _hold_values(HoldKind.SEATS, event.event_id, items, event.currency, section_id=section_id)
    section = await store.section_row(conn, r.section_id or "")
    if section is None or section.event_id != event.event_id:
        raise domain.InvalidSelection("This section does not exist at this event.")
    if event.seating == "reserved":
        raise domain.InvalidSelection("This event has reserved seating: choose seats (seat_ids).")
    quantity = r.quantity or 0
    try:
        await inventory.claim_general(conn, section.section_id, quantity)
    except domain.SoldOut:
        # Expired holds count as free at once (invariant 3): give theirs back, then try once more.
        if not await _expire_section_holds(uow, section.section_id, now):
            raise
        await inventory.claim_general(conn, section.section_id, quantity)
    items = [{"seat_id": None, "label": section.name, "price": section.price, "section": section.name}] * quantity
    return _hold_values(HoldKind.GENERAL, event.event_id, items, event.currency, section_id=section.section_id)


async def _claim_train(
    uow: UnitOfWork, r: HoldRequest, *, hold_id: str, expires_at: datetime, now: datetime
) -> dict[str, Any]:
    conn = uow.conn
    run = await store.run_row(conn, r.run_id or "")
    if run is None:
        raise domain.UnknownInventory("This train run is not on sale (yet).")
    class_code = r.class_code or ""
    if class_code not in run.fares:
        raise domain.InvalidSelection(f"This train has no class {r.class_code}.")
    segment = domain.segment_of(run.stops, r.origin or "", r.destination or "")
    fare = domain.fare_for(run.fares[r.class_code], segment)
    if r.seat_ids:
        seat_ids = sorted(set(r.seat_ids))
        await inventory.lock_train_seats(conn, run.run_id, seat_ids)
        rows = await inventory.train_seat_rows(conn, run.run_id, class_code, seat_ids)
    else:
        rows = await inventory.free_train_seats(conn, run.run_id, class_code, segment, now, r.quantity or 0)
        if len(rows) < (r.quantity or 0):
            raise domain.SoldOut("Not enough seats are left in this class for this journey.")
        seat_ids = [row.seat_id for row in rows]
        await inventory.lock_train_seats(conn, run.run_id, seat_ids)
    await inventory.claim_train_seats(
        conn, run.run_id, seat_ids, segment, hold_id=hold_id, expires_at=expires_at, now=now
    )
    section = run.class_names.get(r.class_code, r.class_code)
    items = [
        {"seat_id": row.seat_id, "label": row.label, "price": fare, "section": section}
        for row in sorted(rows, key=lambda x: x.seat_id)
    ]
    values = _hold_values(HoldKind.TRAIN, run.run_id, items, run.currency, section_id=None)
    values.update(
        class_code=r.class_code,
        origin=segment.origin,
        destination=segment.destination,
        from_index=segment.from_index,
        to_index=segment.to_index,
    )
    return values


def _hold_values(
    kind: HoldKind, event_id: str, items: list[dict[str, Any]], currency: str, *, section_id: str | None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "event_id": event_id,
        "section_id": section_id,
        "quantity": len(items),
        "items": items,
        "total": sum(item["price"] for item in items),
        "currency": currency,
    }


async def _expire_section_holds(uow: UnitOfWork, section_id: str, now: datetime) -> int:
    """End the section's holds whose time ran out, giving their tickets back; returns how many."""
    ended = 0
    for hold_id in await store.expired_hold_ids(uow.conn, now, section_id=section_id, limit=500):
        ended += await _end_hold(uow, hold_id, to=HoldStatus.EXPIRED, now=now)
    return ended


async def _end_hold(uow: UnitOfWork, hold_id: str, *, to: HoldStatus, now: datetime) -> bool:
    """Release or expire one hold and its claims; False if it was not active any more."""
    hold = await store.hold_row(uow.conn, hold_id)
    if hold is None or not await store.end_hold(
        uow.conn, hold_id, to=to, now=now, expired=True if to == HoldStatus.EXPIRED else None
    ):
        return False
    await inventory.release(uow.conn, hold)
    order = await store.order_for_hold(uow.conn, hold_id)
    if order is not None and order.status == OrderStatus.PENDING_PAYMENT:
        new_status = OrderStatus.EXPIRED if to == HoldStatus.EXPIRED else OrderStatus.CANCELLED
        await store.set_order(uow.conn, order.id, status=new_status, cancelled_at=now)
        ORDERS.labels(new_status).inc()
    kind = "booking.hold-expired" if to == HoldStatus.EXPIRED else "booking.hold-released"
    uow.publish(
        HOLDS_TOPIC,
        kind,
        key=hold.event_id,
        data={"hold_id": hold.id, "user_id": hold.user_id, "event_id": hold.event_id, "quantity": hold.quantity},
    )
    return True


async def release_hold(svc: BookingService, user: Principal, hold_id: str) -> None:
    async def work(uow: UnitOfWork) -> None:
        hold = await _owned_hold(uow, user, hold_id)
        if not domain.is_live(hold.status, hold.expires_at, svc.now()):
            raise domain.HoldNotActive(f"This hold is {domain.hold_status(hold.status, hold.expires_at, svc.now())}.")
        if not await _end_hold(uow, hold_id, to=HoldStatus.RELEASED, now=svc.now()):
            raise domain.HoldNotActive("This hold is no longer active.")

    await svc.db.transact(work)


async def _owned_hold(uow: UnitOfWork, user: Principal, hold_id: str) -> Any:
    hold = await store.hold_row(uow.conn, hold_id)
    if hold is None or (hold.user_id != user.id and not user.has_role("admin")):
        raise NotFound("No such hold.")
    return hold


async def sweep_expired_holds(svc: BookingService, *, batch: int = 200) -> int:
    """Release holds whose time ran out and announce ``booking.hold-expired``; returns how many."""
    now = svc.now()
    async with svc.db.read() as conn:
        hold_ids = await store.expired_hold_ids(conn, now, limit=batch)
    swept = 0
    for hold_id in hold_ids:

        async def work(uow: UnitOfWork, hold_id: str = hold_id) -> bool:
            return await _end_hold(uow, hold_id, to=HoldStatus.EXPIRED, now=now)

        swept += bool(await svc.db.transact(work))
    return swept


def order_out(order: Any, hold_expires_at: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": domain.order_status(order.status, hold_expires_at, now),
        "hold_id": order.hold_id,
        "kind": order.kind,
        "event_id": order.event_id,
        "items": order.items,
        "total": order.total,
        "currency": order.currency,
        "expires_at": hold_expires_at.isoformat().replace("+00:00", "Z"),
        "payment_id": order.payment_id,
        "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
    }


async def place_order(
    svc: BookingService, user: Principal, hold_id: str, *, idempotency_key: str | None, body: Any
) -> StoredResponse:
    async def work(uow: UnitOfWork) -> dict[str, Any]:
        now = svc.now()
        hold = await _owned_hold(uow, user, hold_id)
        if hold.user_id != user.id:
            raise Forbidden("Only the customer who holds the seats can order them.")
        if not domain.is_live(hold.status, hold.expires_at, now):
            raise domain.HoldExpired("This hold has expired or was released; hold the seats again.")
        existing = await store.order_for_hold(uow.conn, hold_id)
        if existing is not None:
            raise domain.HoldAlreadyOrdered("This hold already has an order.", order_id=existing.id)
        order_id = uuid7()
        order = {
            "id": order_id,
            "hold_id": hold.id,
            "user_id": user.id,
            "holder_name": user.name or user.email,
            "status": OrderStatus.PENDING_PAYMENT,
            "kind": "train" if hold.kind == HoldKind.TRAIN else "event",
            "event_id": hold.event_id,
            "total": hold.total,
            "currency": hold.currency,
            "items": hold.items,
            "created_at": now,
        }
        await store.insert_order(uow.conn, order)
        ORDERS.labels(OrderStatus.PENDING_PAYMENT).inc()
        return order_out(SimpleNamespace(**order, payment_id=None), hold.expires_at, now)

    return await run_idempotent(
        svc.db, work, owner=user.id, scope="orders", key=idempotency_key, body=body, status_code=201, now=svc.now
    )


def _booking_record(order: Any, hold: Any, status: str, now: datetime, details: dict[str, Any]) -> dict[str, Any]:
    """The ``ticket-bookings`` data (docs/contracts.md): the seeds' fields plus what tickets need to print."""
    record: dict[str, Any] = {
        "event_id": order.event_id,
        "user_id": order.user_id,
        "order_id": order.id,
        "ticket_count": hold.quantity,
        "amount_minor": order.total,
        "currency": order.currency,
        "status": status,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "kind": order.kind,
        "holder_name": order.holder_name,
        "items": order.items,
    }
    if order.kind == "train":
        record["train"] = details["train"]
    else:
        record["event"] = details["event"]
    return record


async def _details(uow: UnitOfWork, hold: Any) -> dict[str, Any]:
    if hold.kind == HoldKind.TRAIN:
        run = await store.run_row(uow.conn, hold.event_id)
        stops = {stop["station"]: stop for stop in run.stops}
        return {
            "train": {
                "run_id": run.run_id,
                "train_number": run.train_number,
                "name": run.name,
                "origin": hold.origin,
                "destination": hold.destination,
                "class_code": hold.class_code,
                "class_name": run.class_names.get(hold.class_code, hold.class_code),
                "departs_at": stops[hold.origin].get("departs_at"),
                "arrives_at": stops[hold.destination].get("arrives_at"),
            }
        }
    event = await store.event_row(uow.conn, hold.event_id)
    return {
        "event": {
            "name": event.name,
            "venue": event.venue,
            "city": event.city,
            "starts_at": event.starts_at.isoformat().replace("+00:00", "Z"),
        }
    }


async def confirm_order(
    svc: BookingService, order_id: str, *, hold_id: str, hold_version: int, payment_id: str
) -> dict[str, Any]:
    """Payments calls this between authorising and capturing. Fenced by hold id and version: it succeeds
    only while the hold is active and unexpired, and moves its claims from held to sold (invariant 4)."""

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        now = svc.now()
        order = await store.order_row(uow.conn, order_id, for_update=True)
        if order is None:
            raise NotFound("No such order.")
        hold = await store.hold_row(uow.conn, order.hold_id)
        if order.status == OrderStatus.CONFIRMED and order.payment_id == payment_id:
            return order_out(order, hold.expires_at, now)  # a retry of a confirmation that happened
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise domain.OrderNotPayable(f"This order is {domain.order_status(order.status, hold.expires_at, now)}.")
        if hold.id != hold_id or not await store.end_hold(
            uow.conn, hold.id, to=HoldStatus.CONFIRMED, now=now, version=hold_version, expired=False
        ):
            raise domain.HoldExpired("The hold on these seats expired or was released before payment.")
        if not await inventory.sell(uow.conn, hold, now):
            raise domain.HoldExpired("These seats went to another customer after the hold expired.")
        await store.set_order(uow.conn, order.id, status=OrderStatus.CONFIRMED, payment_id=payment_id, confirmed_at=now)
        order = SimpleNamespace(
            **{**order._asdict(), "status": OrderStatus.CONFIRMED, "payment_id": payment_id, "confirmed_at": now}
        )
        record = _booking_record(order, hold, "confirmed", now, await _details(uow, hold))
        uow.publish(BOOKINGS_TOPIC, "booking.order-confirmed", key=order.event_id, data=record)
        return order_out(order, hold.expires_at, now)

    answer = await svc.db.transact(work)
    ORDERS.labels(OrderStatus.CONFIRMED).inc()
    TICKETS_SOLD.inc(len(answer["items"]))
    return answer


async def cancel_order(svc: BookingService, user: Principal, order_id: str) -> dict[str, Any]:
    """Cancel: seats go back on sale; a paid order is announced on ``ticket-bookings`` so payments refunds
    it and tickets voids its tickets."""

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        now = svc.now()
        order = await store.order_row(uow.conn, order_id, for_update=True)
        if order is None or (order.user_id != user.id and not user.has_role("admin")):
            raise NotFound("No such order.")
        hold = await store.hold_row(uow.conn, order.hold_id, for_update=True)
        if order.status == OrderStatus.PENDING_PAYMENT:
            if not await _end_hold(uow, hold.id, to=HoldStatus.RELEASED, now=now):
                raise domain.OrderNotCancellable("This order has expired already.")
        elif order.status == OrderStatus.CONFIRMED:
            await store.set_hold_status(uow.conn, hold.id, HoldStatus.CANCELLED)
            await inventory.unsell(uow.conn, hold)
            await store.set_order(uow.conn, order.id, status=OrderStatus.CANCELLED, cancelled_at=now)
            order = await store.order_row(uow.conn, order_id)
            record = _booking_record(order, hold, "cancelled", now, await _details(uow, hold))
            uow.publish(BOOKINGS_TOPIC, "booking.order-cancelled", key=order.event_id, data=record)
        else:
            raise domain.OrderNotCancellable(
                f"This order is {domain.order_status(order.status, hold.expires_at, now)}."
            )
        order = await store.order_row(uow.conn, order_id)
        return order_out(order, hold.expires_at, now)

    answer = await svc.db.transact(work)
    ORDERS.labels(OrderStatus.CANCELLED).inc()
    return answer
