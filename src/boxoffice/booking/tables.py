"""Booking's tables: its copy of what is on sale, the claims on it, holds, orders, and the outbox, inbox,
idempotency and audit tables every service has. Queries are in store.py (and inventory.py, availability.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.audit import add_audit_table
from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import UtcDateTime
from boxoffice.platform.idempotency import add_idempotency_table

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("venue", String(300), nullable=False),
    Column("city", String(200), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("seating", String(16), nullable=False),
    Column("on_sale_at", UtcDateTime, nullable=True),  # a queued sale (the waiting room's line)
    Column("timezone", String(64), nullable=False, server_default="UTC"),  # the venue's IANA zone
    Column("address", String(300), nullable=True),
)

sections = Table(
    "sections",
    metadata,
    Column("section_id", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("price", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("held", Integer, nullable=False, server_default="0"),
    Column("sold", Integer, nullable=False, server_default="0"),
)

seats = Table(
    "seats",
    metadata,
    Column("seat_id", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("section_id", String(64), nullable=False),
    Column("label", String(64), nullable=False),
    Column("price", Integer, nullable=False),
    Column("status", String(16), nullable=False, server_default="available"),
    Column("hold_id", String(36), nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Index("ix_seats_event_status", "event_id", "status"),
    Index("ix_seats_hold_id", "hold_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("train_number", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stops", JSON, nullable=False),
    Column("fares", JSON, nullable=False),  # {class_code: {"A>B": amount}}
    Column("class_names", JSON, nullable=False),  # {class_code: name}
    Column("on_sale_at", UtcDateTime, nullable=True),  # a queued booking day (the waiting room's line)
)

train_seats = Table(
    "train_seats",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("seat_id", String(64), primary_key=True),
    Column("class_code", String(16), nullable=False),
    Column("label", String(64), nullable=False),
    Index("ix_train_seats_class", "run_id", "class_code"),
)

train_claims = Table(
    "train_claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("seat_id", String(64), nullable=False),
    Column("from_index", Integer, nullable=False),
    Column("to_index", Integer, nullable=False),
    Column("hold_id", String(36), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # held | sold
    Column("expires_at", UtcDateTime, nullable=True),
    Index("ix_train_claims_seat", "run_id", "seat_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event_id", String(64), nullable=False),  # the run id for trains
    Column("section_id", String(64), nullable=True),
    Column("class_code", String(16), nullable=True),
    Column("origin", String(16), nullable=True),
    Column("destination", String(16), nullable=True),
    Column("from_index", Integer, nullable=True),
    Column("to_index", Integer, nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("total", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("items", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_holds_user_status", "user_id", "status"),
    Index("ix_holds_section_status", "section_id", "status", "expires_at"),
    Index("ix_holds_status_expires", "status", "expires_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("hold_id", String(36), nullable=False, unique=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("holder_name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("total", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("items", JSON, nullable=False),
    Column("payment_id", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("confirmed_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    # The number a buyer reads out (Crockford base32; null for orders from before numbers existed).
    Column("number", String(8), nullable=True),
    Column("email", String(320), nullable=True),  # where the order's e-mails go
    Column("details", JSON, nullable=True),  # what was bought: the event, or the train journey
    Index("uq_orders_number", "number", unique=True),
)

# One row per customer: locked (PostgreSQL) while their limits are checked, so two concurrent holds of one
# customer cannot both pass the check.
customer_locks = Table("customer_locks", metadata, Column("user_id", String(36), primary_key=True))

idempotency_keys = add_idempotency_table(metadata)
outbox, inbox = add_messaging_tables(metadata)
audit_log = add_audit_table(metadata)


def upsert_into(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that can say ``on_conflict_do_...`` on either database."""
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"
