"""The ``outbox`` and ``inbox`` tables every service database carries.

Each service adds them to its own metadata with ``add_messaging_tables`` (so its Alembic migrations create
them); the statements below are built on a private copy and run against any service's database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Delete, Insert

from boxoffice.platform import hotsql

BigId = BigInteger().with_variant(Integer(), "sqlite")


def add_messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer_group", String(200), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_inbox_processed_at", "processed_at"),
    )
    return outbox, inbox


_metadata = MetaData()
OUTBOX, INBOX = add_messaging_tables(_metadata)


_OUTBOX_INSERT = insert(OUTBOX)


def outbox_insert() -> Insert:
    return _OUTBOX_INSERT


_OUTBOX_BATCH = (
    select(OUTBOX.c.id, OUTBOX.c.event_id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.payload)
    .order_by(OUTBOX.c.id)
    .limit(bindparam("p_limit", type_=Integer))
)
"""Built once (``platform.hotsql``): a relay reads the outbox after nearly every commit of its service."""


async def outbox_batch(conn: AsyncConnection, limit: int) -> Sequence[Any]:
    """The oldest ``limit`` outbox rows: (id, event id, topic, key, payload)."""
    return (await hotsql.run(conn, _OUTBOX_BATCH, {"p_limit": limit})).all()


def outbox_delete(ids: list[int]) -> Delete:
    return delete(OUTBOX).where(OUTBOX.c.id.in_(ids))


async def outbox_backlog(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(OUTBOX))).scalar_one())


async def claim_inbox(conn: AsyncConnection, group: str, event_id: str) -> bool:
    """Record that ``group`` applies ``event_id`` in this transaction; False if it already did.

    Call it inside the transaction of the effect: the effect and the record commit together, so an event
    delivered again after a crash finds its record and is skipped, and one whose effect rolled back is not.
    """
    statement = _CLAIMS.get(conn.dialect.name)
    if statement is None:  # pragma: no cover - only the two dialects below are supported
        raise RuntimeError(f"unsupported dialect {conn.dialect.name}")
    result = await conn.execute(statement, {"consumer_group": group, "event_id": event_id})
    return bool(result.rowcount == 1)


_CLAIMS = {
    "postgresql": postgresql.insert(INBOX).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(INBOX).on_conflict_do_nothing(),
}


async def claim_inbox_many(conn: AsyncConnection, group: str, event_ids: Sequence[str]) -> set[str]:
    """``claim_inbox`` for several events in one statement: the ids this transaction claimed (the others
    were applied before, or appear earlier in ``event_ids``)."""
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    table_insert = postgresql.insert(INBOX) if conn.dialect.name == "postgresql" else sqlite.insert(INBOX)
    statement = (
        table_insert.values([{"consumer_group": group, "event_id": event_id} for event_id in unique])
        .on_conflict_do_nothing()
        .returning(INBOX.c.event_id)
    )
    return {event_id for (event_id,) in await conn.execute(statement)}
