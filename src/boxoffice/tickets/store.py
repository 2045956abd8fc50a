"""Tickets' tables and the queries on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import UtcDateTime
from boxoffice.platform.keys import add_signing_keys_table

metadata = MetaData()

# What tickets knows of an order, from the ``ticket-bookings`` events (event-carried state: what a ticket
# prints, so no call to catalog or booking is needed to render it).
orders = Table(
    "orders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),  # confirmed | cancelled
    Column("kind", String(10), nullable=False),  # event | train
    Column("subject_id", String(64), nullable=False),  # the event id, or the run id
    Column("holder_name", String(200), nullable=False),
    Column("details", Text, nullable=False),  # JSON: the record's "event" or "train" object
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_orders_user_id", "user_id"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("seat_id", String(64), nullable=True),
    Column("label", String(100), nullable=False),
    Column("section", String(100), nullable=True),
    Column("holder_name", String(200), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("code", Text, nullable=False),
    Column("status", String(10), nullable=False),  # valid | used | voided
    Column("pdf_key", String(300), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("checked_in_by", String(64), nullable=True),
    Column("voided_at", UtcDateTime, nullable=True),
    # One ticket per order line, whatever happens to the events: the last guard against a second set.
    UniqueConstraint("order_id", "line_no", name="uq_tickets_order_line"),
    Index("ix_tickets_user_id", "user_id"),
    Index("ix_tickets_pdf_pending", "status", "pdf_key"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("object_key", String(300), nullable=False, unique=True),
    Column("filename", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("status", String(10), nullable=False),  # pending | verified | rejected
    Column("reason", String(200), nullable=True),
    Column("receipt_key", String(300), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("checked_at", UtcDateTime, nullable=True),
)

signing_keys = add_signing_keys_table(metadata)

outbox, inbox = add_messaging_tables(metadata)


# Orders.
async def order_by_id(conn: AsyncConnection, order_id: str) -> Any:
    return (await conn.execute(select(orders).where(orders.c.id == order_id))).first()


async def insert_order(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(orders).values(**values))


async def update_order(conn: AsyncConnection, order_id: str, **values: Any) -> None:
    await conn.execute(update(orders).where(orders.c.id == order_id).values(**values))


# Tickets.
async def insert_tickets(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(tickets), rows)


async def ticket_by_id(conn: AsyncConnection, ticket_id: str) -> Any:
    return (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()


async def tickets_of_order(conn: AsyncConnection, order_id: str) -> list[Any]:
    rows = await conn.execute(select(tickets).where(tickets.c.order_id == order_id).order_by(tickets.c.line_no))
    return list(rows)


async def tickets_of_user(
    conn: AsyncConnection, user_id: str, *, order_id: str | None, after: str | None, limit: int
) -> list[Any]:
    query = select(tickets).where(tickets.c.user_id == user_id)
    if order_id is not None:
        query = query.where(tickets.c.order_id == order_id)
    if after is not None:
        query = query.where(tickets.c.id > after)
    return list(await conn.execute(query.order_by(tickets.c.id).limit(limit)))


async def void_tickets(conn: AsyncConnection, order_id: str, now: datetime) -> list[Any]:
    """Void the order's valid tickets; returns the ones this call voided."""
    condition = and_(tickets.c.order_id == order_id, tickets.c.status == "valid")
    victims = list(await conn.execute(select(tickets.c.id, tickets.c.user_id, tickets.c.subject_id).where(condition)))
    if victims:
        await conn.execute(update(tickets).where(condition).values(status="voided", voided_at=now))
    return victims


async def admit_ticket(conn: AsyncConnection, ticket_id: str, *, version: int, by: str, now: datetime) -> bool:
    """Mark a valid ticket used; False if it was not valid (used, voided, reissued). The conditional UPDATE
    is the referee between two gates scanning the same code at once: exactly one of them changes the row."""
    result = await conn.execute(
        update(tickets)
        .where(and_(tickets.c.id == ticket_id, tickets.c.status == "valid", tickets.c.version == version))
        .values(status="used", used_at=now, checked_in_by=by)
    )
    return bool(result.rowcount == 1)


async def tickets_without_pdf(conn: AsyncConnection, limit: int) -> list[Any]:
    query = (
        select(tickets, orders.c.details)
        .join(orders, orders.c.id == tickets.c.order_id)
        .where(and_(tickets.c.status == "valid", tickets.c.pdf_key.is_(None)))
        .order_by(tickets.c.id)
        .limit(limit)
    )
    return list(await conn.execute(query))


async def set_pdf_key(conn: AsyncConnection, ticket_id: str, pdf_key: str) -> bool:
    """Record the PDF; False when another renderer recorded it first (only the first announces it)."""
    result = await conn.execute(
        update(tickets).where(and_(tickets.c.id == ticket_id, tickets.c.pdf_key.is_(None))).values(pdf_key=pdf_key)
    )
    return bool(result.rowcount == 1)


# Uploads.
async def insert_upload(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(uploads).values(**values))


async def upload_by_id(conn: AsyncConnection, upload_id: str) -> Any:
    return (await conn.execute(select(uploads).where(uploads.c.id == upload_id))).first()


async def upload_by_key(conn: AsyncConnection, object_key: str) -> Any:
    return (await conn.execute(select(uploads).where(uploads.c.object_key == object_key))).first()


async def settle_upload(
    conn: AsyncConnection, upload_id: str, *, status: str, reason: str, receipt_key: str, now: datetime
) -> bool:
    """Record the ticket generator's verdict once: False if the upload was already settled."""
    result = await conn.execute(
        update(uploads)
        .where(and_(uploads.c.id == upload_id, uploads.c.status == "pending"))
        .values(status=status, reason=reason[:200], receipt_key=receipt_key, checked_at=now)
    )
    return bool(result.rowcount == 1)
