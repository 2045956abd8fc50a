"""Payments' tables and queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import UtcDateTime

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("user_id", String(36), nullable=False),
    # One payment per (customer, Idempotency-Key): a retry resumes that payment instead of charging again.
    Column("idempotency_key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("amount_minor", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("authorization_id", String(120), nullable=True),
    Column("card_last4", String(4), nullable=False),
    Column("decline_code", String(40), nullable=True),
    Column("failure", String(40), nullable=True),  # why an authorized payment was voided
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("uq_payments_idempotency", "user_id", "idempotency_key", unique=True),
    Index("ix_payments_status_updated", "status", "updated_at"),
)

outbox, inbox = add_messaging_tables(metadata)


async def insert_payment(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(payments).values(values))


async def payment_by_key(conn: AsyncConnection, user_id: str, key: str) -> Any:
    stmt = select(payments).where(payments.c.user_id == user_id, payments.c.idempotency_key == key)
    return (await conn.execute(stmt)).first()


async def payment_row(conn: AsyncConnection, payment_id: str) -> Any:
    return (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()


async def move(conn: AsyncConnection, payment_id: str, *, frm: set[str], to: str, now: datetime, **values: Any) -> bool:
    """Conditional state change: False if the payment was not in one of ``frm`` (someone else moved it)."""
    result = await conn.execute(
        update(payments)
        .where(payments.c.id == payment_id, payments.c.status.in_(frm))
        .values(status=to, updated_at=now, **values)
    )
    return bool(result.rowcount == 1)


async def captured_for_order(conn: AsyncConnection, order_id: str) -> list[Any]:
    stmt = select(payments).where(payments.c.order_id == order_id, payments.c.status == "captured")
    return list(await conn.execute(stmt))


async def stuck(conn: AsyncConnection, older_than: datetime, limit: int = 100) -> list[Any]:
    stmt = (
        select(payments)
        .where(payments.c.status.in_(["authorizing", "authorized"]), payments.c.updated_at < older_than)
        .limit(limit)
    )
    return list(await conn.execute(stmt))
