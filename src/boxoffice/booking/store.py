"""Booking's queries on holds, orders and the audit trail, returning domain types; the conditional writes
that keep the invariants (tables in tables.py, claims on inventory in inventory.py).

Every claim on inventory is ONE conditional write that fails rather than oversells:

- general admission: ``UPDATE sections SET held = held + n WHERE ... AND sold + held + n <= capacity``
- reserved seats: ``UPDATE seats SET status = 'held' ... WHERE seat_id IN (...) AND (free or held-but-expired)``
  and the row count must equal the number of seats asked for;
- train seats: the seats' rows are locked (PostgreSQL ``FOR UPDATE``, SQLite's single writer) before the
  overlapping claims are checked, and confirmation takes the same locks.

A hold moves out of ``active`` only through ``UPDATE holds ... WHERE status = 'active'``: confirmation,
release and expiry race on that row and exactly one of them wins.
"""

from __future__ import annotations

import json
from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking.domain import (
    Details,
    EventDetails,
    HistoryEntry,
    Hold,
    HoldKind,
    HoldStatus,
    Item,
    Order,
    OrderKind,
    OrderStatus,
    Segment,
    StopDetails,
    TrainDetails,
)
from boxoffice.booking.tables import (
    audit_log,
    customer_locks,
    events,
    holds,
    is_postgres,
    orders,
)
from boxoffice.platform import hotsql


# Customers' limits.
def _lock_customer() -> Any:
    row = postgresql.insert(customer_locks).values(user_id=bindparam("p_user_id"))
    return row.on_conflict_do_update(index_elements=[customer_locks.c.user_id], set_={"user_id": row.excluded.user_id})


_LOCK_CUSTOMER = _lock_customer()


async def lock_customer(conn: AsyncConnection, user_id: str) -> None:
    """PostgreSQL: the customer's row locked until the transaction ends (SQLite has one writer at a time).

    One statement: the row inserted, or (it exists) updated to itself, locks it either way, as the insert
    followed by ``SELECT ... FOR UPDATE`` did in two round trips. A concurrent first hold of the same
    customer waits for the insert and then updates the row it committed."""
    if is_postgres(conn):
        await hotsql.run(conn, _LOCK_CUSTOMER, {"p_user_id": user_id})


def _customer_usage() -> Any:
    live = and_(holds.c.status == HoldStatus.ACTIVE, holds.c.expires_at > bindparam("p_now"))
    for_event = and_(holds.c.event_id == bindparam("p_event_id"), or_(live, holds.c.status == HoldStatus.CONFIRMED))
    return select(
        func.coalesce(func.sum(case((live, 1), else_=0)), 0),
        func.coalesce(func.sum(case((for_event, holds.c.quantity), else_=0)), 0),
    ).where(
        holds.c.user_id == bindparam("p_user_id"),
        or_(holds.c.status == HoldStatus.ACTIVE, holds.c.status == HoldStatus.CONFIRMED),
    )


_CUSTOMER_USAGE = _customer_usage()  # built once: every hold runs it (SQLAlchemy then skips building and keying it)


async def customer_usage(conn: AsyncConnection, user_id: str, event_id: str, now: datetime) -> tuple[int, int]:
    """(live holds of this customer, tickets held or bought for this event), in one query."""
    params = {"p_now": now, "p_event_id": event_id, "p_user_id": user_id}
    row = (await hotsql.run(conn, _CUSTOMER_USAGE, params)).one()
    return int(row[0]), int(row[1])


# Holds and orders.
def _items_json(items: tuple[Item, ...]) -> list[dict[str, Any]]:
    def one(i: Item) -> dict[str, Any]:
        item = {"seat_id": i.seat_id, "label": i.label, "price": i.price, "section": i.section}
        return {**item, "passenger": i.passenger} if i.passenger is not None else item

    return [one(i) for i in items]


def _items(value: list[dict[str, Any]]) -> tuple[Item, ...]:
    return tuple(Item(i.get("seat_id"), i["label"], i["price"], i["section"], i.get("passenger")) for i in value)


def details_json(details: Details) -> dict[str, Any] | None:
    """What was bought as JSON (the order's ``details`` column; also what ticket-bookings carries)."""
    if details.event is not None:
        e = details.event
        return {"event": {"name": e.name, "venue": e.venue, "city": e.city, "address": e.address,
                          "starts_at": rfc3339(e.starts_at), "timezone": e.timezone}}
    if details.train is not None:
        t = details.train
        return {"train": {"run_id": t.run_id, "train_number": t.train_number, "name": t.name,
                          "class_code": t.class_code, "class_name": t.class_name,
                          "origin": _stop_json(t.origin), "destination": _stop_json(t.destination)}}
    return None


def _stop_json(stop: StopDetails) -> dict[str, Any]:
    return {"station": stop.station, "name": stop.name, "timezone": stop.timezone, "at": stop.at}


def _stop(value: dict[str, Any]) -> StopDetails:
    return StopDetails(str(value["station"]), str(value["name"]), str(value["timezone"]), value.get("at"))


def _details(value: dict[str, Any] | None) -> Details:
    if not value:
        return Details()
    if (e := value.get("event")) is not None:
        starts_at = datetime.fromisoformat(str(e["starts_at"]).replace("Z", "+00:00"))
        return Details(event=EventDetails(e["name"], e["venue"], e["city"], e.get("address"), starts_at,
                                          e.get("timezone") or "UTC"))
    t = value["train"]
    return Details(train=TrainDetails(t["run_id"], t["train_number"], t["name"], t["class_code"], t["class_name"],
                                      _stop(t["origin"]), _stop(t["destination"])))


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _hold(row: Any) -> Hold:
    segment = None
    if row.kind == HoldKind.TRAIN:
        segment = Segment(row.origin, row.destination, row.from_index, row.to_index)
    return Hold(
        id=row.id,
        user_id=row.user_id,
        kind=HoldKind(row.kind),
        event_id=row.event_id,
        section_id=row.section_id,
        quantity=row.quantity,
        status=HoldStatus(row.status),
        version=row.version,
        expires_at=row.expires_at,
        total=row.total,
        currency=row.currency,
        items=_items(row.items),
        created_at=row.created_at,
        class_code=row.class_code,
        segment=segment,
    )


_HoldRow = namedtuple("_HoldRow", [column.name for column in holds.c])  # type: ignore[misc]
_HOLD_WIDTH = len(holds.c)
"""A join selects a hold's columns as a block, in the table's order: ``_hold(_HoldRow._make(block))``."""


def _prefixed(table: Any, prefix: str) -> list[Any]:
    """All of ``table`` 's columns, named ``{prefix}{column}`` (to select them beside another table's)."""
    return [column.label(prefix + column.name) for column in table.c]


_INSERT_HOLD = insert(holds)


async def insert_hold(conn: AsyncConnection, hold: Hold) -> None:
    segment = hold.segment
    await hotsql.run(
        conn,
        _INSERT_HOLD,
        {
            "id": hold.id,
            "user_id": hold.user_id,
            "kind": hold.kind,
            "event_id": hold.event_id,
            "section_id": hold.section_id,
            "class_code": hold.class_code,
            "origin": segment.origin if segment else None,
            "destination": segment.destination if segment else None,
            "from_index": segment.from_index if segment else None,
            "to_index": segment.to_index if segment else None,
            "quantity": hold.quantity,
            "status": hold.status,
            "version": hold.version,
            "expires_at": hold.expires_at,
            "total": hold.total,
            "currency": hold.currency,
            "items": _items_json(hold.items),
            "created_at": hold.created_at,
        },
    )


_HOLD = select(holds).where(holds.c.id == bindparam("p_hold_id"))  # built once: read by every order and payment
# An order's hold and, for an event, the event's details it keeps: one statement instead of two.
_HOLD_WITH_EVENT = (
    select(holds, *_prefixed(events, "e_"))
    .outerjoin(events, and_(holds.c.kind != HoldKind.TRAIN.value, events.c.event_id == holds.c.event_id))
    .where(holds.c.id == bindparam("p_hold_id"))
)
_HOLD_FOR_UPDATE = _HOLD.with_for_update()


async def hold_of(conn: AsyncConnection, hold_id: str, *, for_update: bool = False) -> Hold | None:
    stmt = _HOLD_FOR_UPDATE if for_update and is_postgres(conn) else _HOLD
    row = (await hotsql.run(conn, stmt, {"p_hold_id": hold_id})).first()
    return None if row is None else _hold(row)


async def hold_with_event(conn: AsyncConnection, hold_id: str) -> tuple[Hold, EventDetails | None] | None:
    """The hold and, when it is for an event booking has a copy of, that event's details (None for trains)."""
    row = (await hotsql.run(conn, _HOLD_WITH_EVENT, {"p_hold_id": hold_id})).first()
    if row is None:
        return None
    event = None
    if row.e_event_id is not None:
        event = EventDetails(row.e_name, row.e_venue, row.e_city, row.e_address, row.e_starts_at, row.e_timezone)
    return _hold(_HoldRow._make(row[:_HOLD_WIDTH])), event


async def end_hold(
    conn: AsyncConnection, hold_id: str, *, to: str, now: datetime, version: int | None = None, expired: bool | None
) -> bool:
    """Move an active hold to ``to``; False if it was no longer active (someone else ended it first).

    ``expired``: True only if it has expired, False only if it has not, None either way.
    """
    params = {"p_hold_id": hold_id, "p_to": to, "p_version": version, "p_now": now}
    result = await hotsql.run(conn, _END_HOLD[(version is not None, expired)], params)
    return bool(result.rowcount == 1)


def _end_hold(versioned: bool, expired: bool | None) -> Any:
    conditions = [holds.c.id == bindparam("p_hold_id"), holds.c.status == HoldStatus.ACTIVE]
    if versioned:
        conditions.append(holds.c.version == bindparam("p_version"))
    if expired is True:
        conditions.append(holds.c.expires_at <= bindparam("p_now"))
    elif expired is False:
        conditions.append(holds.c.expires_at > bindparam("p_now"))
    return update(holds).where(*conditions).values(status=bindparam("p_to"), version=holds.c.version + 1)


# Built once, one for each way of ending a hold (the confirmation's is on every flow's hot path).
_END_HOLD = {(v, e): _end_hold(v, e) for v in (True, False) for e in (True, False, None)}


async def set_hold_status(conn: AsyncConnection, hold_id: str, status: str) -> None:
    await conn.execute(update(holds).where(holds.c.id == hold_id).values(status=status, version=holds.c.version + 1))


async def expired_hold_ids(
    conn: AsyncConnection, now: datetime, *, section_id: str | None = None, limit: int = 200
) -> list[str]:
    conditions = [holds.c.status == HoldStatus.ACTIVE, holds.c.expires_at <= now]
    if section_id is not None:
        conditions.append(holds.c.section_id == section_id)
    rows = await conn.execute(select(holds.c.id).where(*conditions).order_by(holds.c.expires_at).limit(limit))
    return [row.id for row in rows]


def _order(row: Any) -> Order:
    return Order(
        id=row.id,
        hold_id=row.hold_id,
        user_id=row.user_id,
        holder_name=row.holder_name,
        status=OrderStatus(row.status),
        kind=OrderKind(row.kind),
        event_id=row.event_id,
        total=row.total,
        currency=row.currency,
        items=_items(row.items),
        payment_id=row.payment_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        hold_version=row.hold_version,
        number=row.number or "",
        email=row.email or "",
        details=_details(row.details),
    )


def _orders_with_hold() -> Any:
    return select(orders, holds.c.expires_at, holds.c.version.label("hold_version")).join(
        holds, holds.c.id == orders.c.hold_id
    )


# Built once: each order and payment runs several of them.
# A new order, or nothing when its hold has one or its number is taken (the unique indexes decide).
_INSERT_NEW_ORDER = {
    "sqlite": sqlite.insert(orders).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(orders).on_conflict_do_nothing(),
}
_ORDER = _orders_with_hold().where(orders.c.id == bindparam("p_order_id"))
_ORDER_FOR_UPDATE = _ORDER.with_for_update(of=orders)
_ORDER_FOR_HOLD = _orders_with_hold().where(orders.c.hold_id == bindparam("p_hold_id"))
# The order with the whole of its hold (payments' confirmation): one statement instead of two.
_ORDER_AND_HOLD = _orders_with_hold().add_columns(*_prefixed(holds, "h_")).where(orders.c.id == bindparam("p_order_id"))
_ORDER_AND_HOLD_FOR_UPDATE = _ORDER_AND_HOLD.with_for_update(of=orders)
_SET_ORDER = update(orders).where(orders.c.id == bindparam("p_order_id"))  # SET: the columns given


async def insert_order(conn: AsyncConnection, order: Order) -> bool:
    """Insert a new order; False (and nothing written) when its hold has an order or its number is taken."""
    result = await hotsql.run(
        conn,
        _INSERT_NEW_ORDER[conn.dialect.name],
        {
            "id": order.id,
            "hold_id": order.hold_id,
            "user_id": order.user_id,
            "holder_name": order.holder_name,
            "status": order.status,
            "kind": order.kind,
            "event_id": order.event_id,
            "total": order.total,
            "currency": order.currency,
            "items": _items_json(order.items),
            "payment_id": order.payment_id,
            "created_at": order.created_at,
            "number": order.number or None,
            "email": order.email or None,
            "details": details_json(order.details),
        },
    )
    return bool(result.rowcount == 1)


async def order_of(conn: AsyncConnection, order_id: str, *, for_update: bool = False) -> Order | None:
    """The order with its hold's expiry and version; ``for_update`` locks the order's row only."""
    stmt = _ORDER_FOR_UPDATE if for_update and is_postgres(conn) else _ORDER
    row = (await hotsql.run(conn, stmt, {"p_order_id": order_id})).first()
    return None if row is None else _order(row)


async def order_and_hold(
    conn: AsyncConnection, order_id: str, *, for_update: bool = False
) -> tuple[Order, Hold] | None:
    """The order and its hold, in one statement; ``for_update`` locks the order's row only."""
    stmt = _ORDER_AND_HOLD_FOR_UPDATE if for_update and is_postgres(conn) else _ORDER_AND_HOLD
    row = (await hotsql.run(conn, stmt, {"p_order_id": order_id})).first()
    return None if row is None else (_order(row), _hold(_HoldRow._make(row[-_HOLD_WIDTH:])))


async def order_for_hold(conn: AsyncConnection, hold_id: str) -> Order | None:
    row = (await hotsql.run(conn, _ORDER_FOR_HOLD, {"p_hold_id": hold_id})).first()
    return None if row is None else _order(row)


async def set_order(
    conn: AsyncConnection,
    order_id: str,
    *,
    status: OrderStatus,
    payment_id: str | None = None,
    confirmed_at: datetime | None = None,
    cancelled_at: datetime | None = None,
) -> None:
    values: dict[str, object] = {"p_order_id": order_id, "status": status}
    if payment_id is not None:
        values.update(payment_id=payment_id, confirmed_at=confirmed_at)
    if cancelled_at is not None:
        values["cancelled_at"] = cancelled_at
    await hotsql.run(conn, _SET_ORDER, values)


async def orders_of(
    conn: AsyncConnection, user_id: str, *, before: tuple[datetime, str] | None, limit: int, number: str | None = None
) -> list[Order]:
    stmt = _orders_with_hold().where(orders.c.user_id == user_id)
    if number is not None:
        stmt = stmt.where(orders.c.number == number)
    if before is not None:
        created, order_id = before
        stmt = stmt.where(
            or_(orders.c.created_at < created, and_(orders.c.created_at == created, orders.c.id < order_id))
        )
    stmt = stmt.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit)
    return [_order(row) for row in await conn.execute(stmt)]


# The audit trail (platform.audit writes it).
async def order_audit(conn: AsyncConnection, order_id: str, hold_id: str) -> list[HistoryEntry]:
    """Booking's entries for an order, oldest first: the order's, and its hold's from before the order."""
    rows = await conn.execute(
        select(audit_log.c.at, audit_log.c.actor, audit_log.c.action, audit_log.c.detail)
        .where(
            or_(
                audit_log.c.order_id == order_id,
                and_(audit_log.c.entity == "hold", audit_log.c.entity_id == hold_id),
            )
        )
        .order_by(audit_log.c.id)
    )
    return [HistoryEntry(r.at, r.actor, r.action, json.loads(r.detail)) for r in rows]
