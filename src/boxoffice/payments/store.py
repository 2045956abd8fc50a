"""Payments' tables (with the outbox, inbox and audit trail) and the queries on them, in domain types."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, bindparam, false, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.payments.domain import Payment, PaymentStatus
from boxoffice.platform import hotsql
from boxoffice.platform.audit import add_audit_table
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
audit_log = add_audit_table(metadata)


def _payment(row: Any) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        user_id=row.user_id,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
        amount_minor=row.amount_minor,
        currency=row.currency,
        status=PaymentStatus(row.status),
        card_last4=row.card_last4,
        created_at=row.created_at,
        updated_at=row.updated_at,
        authorization_id=row.authorization_id,
        decline_code=row.decline_code,
        failure=row.failure,
    )


# Built once: every payment runs them (SQLAlchemy's per-statement work, or none: platform.hotsql).
# A new payment, or nothing when its Idempotency-Key has one already (the unique index decides, atomically).
_INSERT_NEW_PAYMENT = {
    "sqlite": sqlite.insert(payments).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(payments).on_conflict_do_nothing(),
}
_BY_KEY = select(payments).where(
    payments.c.user_id == bindparam("p_user_id"), payments.c.idempotency_key == bindparam("p_key")
)
_BY_ID = select(payments).where(payments.c.id == bindparam("p_id"))
_MOVES: dict[frozenset[PaymentStatus], Any] = {}


def _move_from(frm: frozenset[PaymentStatus]) -> Any:
    """The conditional update out of the states ``frm`` (built once per set of states)."""
    if (stmt := _MOVES.get(frm)) is None:
        sources = [payments.c.status == s.value for s in sorted(frm)]
        stmt = _MOVES[frm] = update(payments).where(
            payments.c.id == bindparam("p_id"), or_(*sources) if sources else false()
        )
    return stmt


async def insert_payment(conn: AsyncConnection, payment: Payment) -> bool:
    """Insert a new payment; False (and nothing written) when the customer's Idempotency-Key has one."""
    result = await hotsql.run(
        conn,
        _INSERT_NEW_PAYMENT[conn.dialect.name],
        {
            "id": payment.id,
            "order_id": payment.order_id,
            "user_id": payment.user_id,
            "idempotency_key": payment.idempotency_key,
            "request_hash": payment.request_hash,
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
            "status": payment.status.value,
            "authorization_id": payment.authorization_id,
            "card_last4": payment.card_last4,
            "decline_code": payment.decline_code,
            "failure": payment.failure,
            "created_at": payment.created_at,
            "updated_at": payment.updated_at,
        },
    )
    return bool(result.rowcount == 1)


async def payment_by_key(conn: AsyncConnection, user_id: str, key: str) -> Payment | None:
    row = (await hotsql.run(conn, _BY_KEY, {"p_user_id": user_id, "p_key": key})).first()
    return _payment(row) if row is not None else None


async def payment_row(conn: AsyncConnection, payment_id: str) -> Payment | None:
    row = (await hotsql.run(conn, _BY_ID, {"p_id": payment_id})).first()
    return _payment(row) if row is not None else None


async def move(conn: AsyncConnection, moved: Payment, *, frm: Collection[PaymentStatus]) -> bool:
    """Conditional state change to ``moved``'s state: False if the stored payment was not in one of ``frm``
    (someone else moved it first)."""
    result = await hotsql.run(
        conn,
        _move_from(frozenset(frm)),
        {
            "p_id": moved.id,
            "status": moved.status.value,
            "updated_at": moved.updated_at,
            "authorization_id": moved.authorization_id,
            "decline_code": moved.decline_code,
            "failure": moved.failure,
        },
    )
    return bool(result.rowcount == 1)


async def captured_for_order(conn: AsyncConnection, order_id: str) -> list[Payment]:
    stmt = select(payments).where(payments.c.order_id == order_id, payments.c.status == PaymentStatus.CAPTURED.value)
    return [_payment(row) for row in await conn.execute(stmt)]


async def stuck(conn: AsyncConnection, older_than: datetime, limit: int = 100) -> list[Payment]:
    """Payments a crash (or an unreachable booking) left half-way, untouched since ``older_than``."""
    unfinished = [PaymentStatus.AUTHORIZING.value, PaymentStatus.AUTHORIZED.value]
    stmt = (
        select(payments)
        .where(payments.c.status.in_(unfinished), payments.c.updated_at < older_than)
        .order_by(payments.c.updated_at)
        .limit(limit)
    )
    return [_payment(row) for row in await conn.execute(stmt)]
