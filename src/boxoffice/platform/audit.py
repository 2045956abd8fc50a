"""The audit trail: every state change of a hold, order, payment or ticket, with who did it and when.

Like pretix's order log. Each service that changes such things adds the ``audit_log`` table to its own
metadata (``add_audit_table``, so its migrations create it) and calls ``record`` inside the transaction of
the change: the entry commits with the change or not at all. Entries are grouped by ``order_id`` so that an
order's history can be read from each service that touched it and merged by time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Column, Index, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform import hotsql
from boxoffice.platform.bus.tables import BigId
from boxoffice.platform.db import UtcDateTime

SYSTEM = "system"
"""The actor of changes nobody asked for at that moment: expiry, recovery, consumers."""


def add_audit_table(metadata: MetaData) -> Table:
    return Table(
        "audit_log",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("order_id", String(36), nullable=True),
        Column("entity", String(20), nullable=False),  # hold | order | payment | ticket
        Column("entity_id", String(36), nullable=False),
        Column("actor", String(64), nullable=False),  # a user id, "system", or "staff:<id>"
        Column("action", String(64), nullable=False),  # e.g. order.confirmed, payment.captured
        Column("detail", Text, nullable=False),  # JSON object
        Column("at", UtcDateTime, nullable=False),
        Index("ix_audit_log_order_id", "order_id", "id"),
        Index("ix_audit_log_entity", "entity", "entity_id"),
    )


_AUDIT = add_audit_table(MetaData())
_INSERT = insert(_AUDIT)
"""Built once: an ``insert().values(...)`` per entry cost more CPU in SQLAlchemy than the write itself."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: Mapping[str, Any] = field(default_factory=dict)


async def record(
    conn: AsyncConnection,
    *,
    entity: str,
    entity_id: str,
    action: str,
    actor: str,
    at: datetime,
    order_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add one entry, in the caller's transaction."""
    await hotsql.run(
        conn,
        _INSERT,
        {
            "order_id": order_id,
            "entity": entity,
            "entity_id": entity_id,
            "actor": actor,
            "action": action,
            "detail": json.dumps(dict(detail or {}), separators=(",", ":"), default=str),
            "at": at,
        },
    )


async def order_history(conn: AsyncConnection, order_id: str) -> list[AuditEntry]:
    """This service's entries for one order, oldest first."""
    rows = await conn.execute(
        select(_AUDIT.c.at, _AUDIT.c.actor, _AUDIT.c.action, _AUDIT.c.entity, _AUDIT.c.entity_id, _AUDIT.c.detail)
        .where(_AUDIT.c.order_id == order_id)
        .order_by(_AUDIT.c.id)
    )
    return [AuditEntry(r.at, r.actor, r.action, r.entity, r.entity_id, json.loads(r.detail)) for r in rows]


class AuditEntryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, Any]


class AuditOut(BaseModel):
    """``GET /internal/orders/{id}/audit``: a service's entries of one order, oldest first (payments and
    tickets answer it; booking merges them into the order's history)."""

    items: list[AuditEntryOut]

    @classmethod
    def of(cls, entries: list[AuditEntry]) -> AuditOut:
        return cls(
            items=[
                AuditEntryOut(
                    at=e.at, actor=e.actor, action=e.action, entity=e.entity, entity_id=e.entity_id,
                    detail=dict(e.detail),
                )
                for e in entries
            ]
        )
