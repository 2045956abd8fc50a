"""Orders: placed from a live hold, confirmed by payments, cancelled by their customer, read by all three."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import JsonValue

from boxoffice.booking import catalog_copy, domain, inventory, store
from boxoffice.booking.clients import PeerUnavailable
from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.domain import (
    Details,
    Hold,
    HoldKind,
    HoldStatus,
    Order,
    OrderKind,
    OrderPage,
    OrderStatus,
    OrderWithTickets,
)
from boxoffice.booking.handlers.common import (
    BOOKINGS_TOPIC,
    ORDERS,
    TICKETS_SOLD,
    iso,
    may_see,
    record_hold,
    record_order,
)
from boxoffice.booking.handlers.expiry import end_hold
from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.idempotency import StoredResponse, run_idempotent
from boxoffice.platform.problems import Forbidden, NotFound, ServiceUnavailable


@dataclass(frozen=True, slots=True)
class ConfirmOrder:
    """Payments' confirmation, fenced by the hold's id and version it read before authorising."""

    order_id: str
    hold_id: str
    hold_version: int
    payment_id: str


async def place_order(
    deps: BookingDeps,
    hold_id: str,
    *,
    user: Principal,
    idempotency_key: str | None,
    body: JsonValue,
    render: Callable[[Order], JsonValue],
    passengers: Mapping[str, str] | None = None,
) -> StoredResponse:
    """Order a live hold of one's own; ``render`` gives the answer's JSON, stored with the Idempotency-Key.
    ``passengers``: seat id -> the name of who travels on it (required for trains, one per seat)."""

    async def work(uow: UnitOfWork) -> JsonValue:
        return render(await _place(uow, deps, hold_id, user, passengers or {}))

    return await run_idempotent(
        deps.db, work, owner=user.id, scope="orders", key=idempotency_key, body=body, status_code=201, now=deps.now
    )


async def _place(
    uow: UnitOfWork, deps: BookingDeps, hold_id: str, user: Principal, passengers: Mapping[str, str]
) -> Order:
    now = deps.now()
    found = await store.hold_with_event(uow.conn, hold_id)  # the hold and what the order keeps of its event
    if found is None or not may_see(user, found[0].user_id):
        raise NotFound("No such hold.")
    hold, event = found
    if hold.user_id != user.id:
        raise Forbidden("Only the customer who holds the seats can order them.")
    if not hold.is_live(now):
        raise domain.HoldExpired("This hold has expired or was released; hold the seats again.")
    items = domain.with_passengers(hold.items, passengers, train=hold.kind == domain.HoldKind.TRAIN)
    order = Order(
        id=uuid7(),
        hold_id=hold.id,
        user_id=user.id,
        holder_name=user.name or user.email,
        status=OrderStatus.PENDING_PAYMENT,
        kind=OrderKind.TRAIN if hold.kind == domain.HoldKind.TRAIN else OrderKind.EVENT,
        event_id=hold.event_id,
        total=hold.total,
        currency=hold.currency,
        items=items,
        payment_id=None,
        created_at=now,
        expires_at=hold.expires_at,
        hold_version=hold.version,
        number=domain.new_order_number(),
        email=user.email,
        details=Details(event=event) if event is not None else await catalog_copy.details_of(uow.conn, hold),
    )
    # Inserted at once: the unique indexes say when the hold has an order already, or (rarely) the number is
    # someone else's; only then is anything read.
    for _ in range(8):
        if await store.insert_order(uow.conn, order):
            break
        existing = await store.order_for_hold(uow.conn, hold_id)
        if existing is not None:
            raise domain.HoldAlreadyOrdered("This hold already has an order.", order_id=existing.id)
        order = replace(order, number=domain.new_order_number())
    else:
        raise RuntimeError("no free order number after 8 tries")  # 2^40 numbers: practically never
    detail = {"hold_id": hold.id, "total": order.total, "currency": order.currency}
    await record_order(uow.conn, order, "placed", actor=user.id, at=now, detail=detail)
    ORDERS.labels(OrderStatus.PENDING_PAYMENT).inc()
    return order


async def list_orders(
    deps: BookingDeps,
    *,
    user: Principal,
    before: tuple[datetime, str] | None,
    limit: int,
    number: str | None = None,
) -> OrderPage:
    """The customer's orders, newest first, ``limit`` at a time; ``number`` finds one by its order number
    (as typed: case, dashes and look-alike letters do not matter; nothing matches what cannot be a number)."""
    wanted = domain.normalize_order_number(number) if number is not None else None
    if number is not None and wanted is None:
        return OrderPage((), None)
    async with deps.db.read() as conn:
        orders = await store.orders_of(conn, user.id, before=before, limit=limit + 1, number=wanted)
    now = deps.now()
    page = tuple(order.seen_at(now) for order in orders[:limit])
    more = len(orders) > limit
    return OrderPage(page, (page[-1].created_at, page[-1].id) if more else None)


async def read_order(deps: BookingDeps, order_id: str) -> Order:
    """Any order, for the services that act on it (payments, tickets)."""
    async with deps.db.read() as conn:
        order = await store.order_of(conn, order_id)
    if order is None:
        raise NotFound("No such order.")
    return order.seen_at(deps.now())


async def get_order(deps: BookingDeps, order_id: str, *, user: Principal) -> OrderWithTickets:
    """The customer's order and its tickets; tickets that cannot be read are left out (clients.py)."""
    order = await read_order(deps, order_id)
    if not may_see(user, order.user_id):
        raise NotFound("No such order.")
    if order.status == OrderStatus.PENDING_PAYMENT:
        return OrderWithTickets(order, ())
    try:
        tickets = tuple(await deps.tickets.order_tickets(order_id))
    except PeerUnavailable:
        tickets = ()
    return OrderWithTickets(order, tickets)


async def confirm_order(deps: BookingDeps, cmd: ConfirmOrder) -> Order:
    """Payments calls this between authorising and capturing. Fenced by hold id and version: it succeeds
    only while the hold is active and unexpired, and moves its claims from held to sold (invariant 4)."""

    async def work(uow: UnitOfWork) -> Order:
        now = deps.now()
        found = await store.order_and_hold(uow.conn, cmd.order_id, for_update=True)
        if found is None:
            raise NotFound("No such order.")
        order, hold = found
        if order.status == OrderStatus.CONFIRMED and order.payment_id == cmd.payment_id:
            return order.seen_at(now)  # a retry of a confirmation that happened
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise domain.OrderNotPayable(f"This order is {order.seen_at(now).status}.")
        if hold.id != cmd.hold_id or not await store.end_hold(
            uow.conn, hold.id, to=HoldStatus.CONFIRMED, now=now, version=cmd.hold_version, expired=False
        ):
            raise domain.HoldExpired("The hold on these seats expired or was released before payment.")
        if hold.kind == HoldKind.GENERAL:
            # The section's row last, just before COMMIT (as the hold's claim: ``UnitOfWork.last``).
            uow.last(lambda: inventory.sell(uow.conn, hold, now))
        elif not await inventory.sell(uow.conn, hold, now):
            raise domain.HoldExpired("These seats went to another customer after the hold expired.")
        confirmed, payment_id = OrderStatus.CONFIRMED, cmd.payment_id
        await store.set_order(uow.conn, order.id, status=confirmed, payment_id=payment_id, confirmed_at=now)
        order = replace(order, status=confirmed, payment_id=payment_id, hold_version=hold.version + 1)
        actor = domain.payment_actor(cmd.payment_id)
        await record_hold(uow.conn, hold, HoldStatus.CONFIRMED, actor=actor, at=now, order_id=order.id)
        await record_order(uow.conn, order, "confirmed", actor=actor, at=now, detail={"payment_id": cmd.payment_id})
        record = booking_record(order, hold, "confirmed", now, await _details(uow, order, hold))
        uow.publish(BOOKINGS_TOPIC, "booking.order-confirmed", key=order.event_id, data=record)
        return order

    order = await deps.db.transact(work)
    ORDERS.labels(OrderStatus.CONFIRMED).inc()
    TICKETS_SOLD.inc(len(order.items))
    return order


async def cancel_order(deps: BookingDeps, order_id: str, *, user: Principal) -> Order:
    """Cancel: seats go back on sale; a paid order is announced on ``ticket-bookings`` so payments refunds
    it and tickets voids its tickets.

    A paid order is first fenced by tickets, which owns the rule "no refund once a ticket was used"
    (docs/contracts.md): in one tickets transaction every ticket of the order is voided, and any issued later
    would be, unless one was admitted at a gate (409 ``/ticket-used``, nothing changes here). A check-in
    after the fence finds its ticket voided. When tickets cannot answer, nothing is cancelled (503).
    """
    seen = await read_order(deps, order_id)
    if not may_see(user, seen.user_id):
        raise NotFound("No such order.")
    fenced = seen.status == OrderStatus.CONFIRMED
    if fenced:
        try:
            await deps.tickets.void_order(seen)
        except PeerUnavailable:
            raise ServiceUnavailable(
                "Tickets cannot be checked right now, so the order was not cancelled; try again later.",
                headers={"Retry-After": "5"},
            ) from None

    async def work(uow: UnitOfWork) -> Order:
        now = deps.now()
        order = await store.order_of(uow.conn, order_id, for_update=True)
        if order is None or not may_see(user, order.user_id):
            raise NotFound("No such order.")
        hold = await store.hold_of(uow.conn, order.hold_id, for_update=True)
        if hold is None:
            raise NotFound("No such order.")
        if order.status == OrderStatus.PENDING_PAYMENT:
            # Ending the hold cancels its pending order and records both changes.
            if not await end_hold(uow, hold.id, to=HoldStatus.RELEASED, now=now, actor=user.id):
                raise domain.OrderNotCancellable("This order has expired already.")
        elif order.status == OrderStatus.CONFIRMED:
            if not fenced:  # paid between the first read and now: its tickets were not fenced
                raise domain.OrderNotCancellable("This order was paid a moment ago; cancel it again.")
            await _cancel_paid(uow, order, hold, actor=user.id, now=now)
        else:
            raise domain.OrderNotCancellable(f"This order is {order.seen_at(now).status}.")
        cancelled = await store.order_of(uow.conn, order_id)
        assert cancelled is not None
        return cancelled.seen_at(now)

    answer = await deps.db.transact(work)
    ORDERS.labels(OrderStatus.CANCELLED).inc()
    return answer


async def _cancel_paid(uow: UnitOfWork, order: Order, hold: Hold, *, actor: str, now: datetime) -> None:
    await store.set_hold_status(uow.conn, hold.id, HoldStatus.CANCELLED)
    await inventory.unsell(uow.conn, hold)
    await store.set_order(uow.conn, order.id, status=OrderStatus.CANCELLED, cancelled_at=now)
    await record_hold(uow.conn, hold, HoldStatus.CANCELLED, actor=actor, at=now, order_id=order.id)
    await record_order(uow.conn, order, "cancelled", actor=actor, at=now, detail={"payment_id": order.payment_id})
    details = await _details(uow, order, hold)
    record = booking_record(replace(order, status=OrderStatus.CANCELLED), hold, "cancelled", now, details)
    uow.publish(BOOKINGS_TOPIC, "booking.order-cancelled", key=order.event_id, data=record)


def booking_record(
    order: Order, hold: Hold, status: str, now: datetime, details: dict[str, object]
) -> dict[str, object]:
    """The ``ticket-bookings`` data (docs/contracts.md): the seeds' fields plus what tickets need to print."""
    return {
        "event_id": order.event_id,
        "user_id": order.user_id,
        "order_id": order.id,
        "ticket_count": hold.quantity,
        "amount_minor": order.total,
        "currency": order.currency,
        "status": status,
        "timestamp": iso(now),
        "kind": order.kind.value,
        "number": order.number,
        "email": order.email,
        "holder_name": order.holder_name,
        "items": [
            {
                "seat_id": item.seat_id,
                "label": item.label,
                "price": item.price,
                "section": item.section,
                **({"passenger": item.passenger} if item.passenger is not None else {}),
            }
            for item in order.items
        ],
        **details,
    }


def record_details(details: Details) -> dict[str, object]:
    """The record's ``event`` or ``train`` object (docs/contracts.md): what tickets print and mail."""
    if details.train is not None:
        t = details.train
        return {
            "train": {
                "run_id": t.run_id,
                "train_number": t.train_number,
                "name": t.name,
                "origin": t.origin.station,
                "destination": t.destination.station,
                "origin_name": t.origin.name,
                "destination_name": t.destination.name,
                "origin_timezone": t.origin.timezone,
                "destination_timezone": t.destination.timezone,
                "class_code": t.class_code,
                "class_name": t.class_name,
                "departs_at": t.origin.at,
                "arrives_at": t.destination.at,
            }
        }
    assert details.event is not None
    e = details.event
    return {
        "event": {
            "name": e.name,
            "venue": e.venue,
            "city": e.city,
            "address": e.address,
            "starts_at": iso(e.starts_at),
            "timezone": e.timezone,
        }
    }


async def _details(uow: UnitOfWork, order: Order, hold: Hold) -> dict[str, object]:
    """What tickets print: kept with the order (orders from before that: booking's copy of the catalog)."""
    details = order.details if order.details != Details() else await catalog_copy.details_of(uow.conn, hold)
    return record_details(details)
