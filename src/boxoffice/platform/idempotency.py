"""``Idempotency-Key`` for creating requests: the same key and body get the first answer again.

The record is written in the SAME transaction as the effect it answers for, so a retry either finds the
committed answer or finds nothing and does the work; two racing requests with one key cannot both win (the
second one's insert hits the primary key, rolls back, and replays the first one's answer).
Same key with a different body -> 422.

A replayed answer carries ``Idempotent-Replayed: true``: ``run_idempotent`` marks the request it serves
and ``platform.ingress`` (every service app has it) adds the header, so a route only returns the
stored answer. A service with its own idempotency table (payments) calls ``mark_replayed()`` itself.

Records are kept ``BOXOFFICE_IDEMPOTENCY_TTL_HOURS`` (24 by default) and then purged by every service's
``idempotency-purge`` loop (``purge_expired``), which does nothing in a database without the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, bindparam, delete, inspect, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform import hotsql
from boxoffice.platform.db import Database, UnitOfWork, UtcDateTime
from boxoffice.platform.jsonutil import dumps, loads
from boxoffice.platform.problems import BadRequest, Unprocessable

MAX_KEY_LENGTH = 200
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyMismatch(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused"


def add_idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("owner", String(64), primary_key=True),
        Column("scope", String(64), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )


_metadata = MetaData()
IDEMPOTENCY = add_idempotency_table(_metadata)
# Built once (every creating request runs both): SQLAlchemy then skips building and keying them each time.
_FIND = select(IDEMPOTENCY.c.request_hash, IDEMPOTENCY.c.status_code, IDEMPOTENCY.c.body).where(
    IDEMPOTENCY.c.owner == bindparam("p_owner"),
    IDEMPOTENCY.c.scope == bindparam("p_scope"),
    IDEMPOTENCY.c.key == bindparam("p_key"),
)
_RECORD = IDEMPOTENCY.insert()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any
    replayed: bool = False
    """True when this is the answer an earlier request with the same key got."""


def request_hash(body: Any) -> str:
    return hashlib.sha256(dumps(body)).hexdigest()


async def find(conn: AsyncConnection, *, owner: str, scope: str, key: str, body_hash: str) -> StoredResponse | None:
    row = (await hotsql.run(conn, _FIND, {"p_owner": owner, "p_scope": scope, "p_key": key})).first()
    if row is None:
        return None
    if row.request_hash != body_hash:
        raise IdempotencyMismatch("This Idempotency-Key was used with a different request body.")
    return StoredResponse(row.status_code, loads(row.body), replayed=True)


async def record(
    conn: AsyncConnection,
    *,
    owner: str,
    scope: str,
    key: str,
    body_hash: str,
    status_code: int,
    body: Any,
    now: datetime,
) -> None:
    await hotsql.run(
        conn,
        _RECORD,
        {
            "owner": owner,
            "scope": scope,
            "key": key,
            "request_hash": body_hash,
            "status_code": status_code,
            "body": dumps(body).decode(),
            "created_at": now,
        },
    )


async def run_idempotent(
    db: Database,
    work: Callable[[UnitOfWork], Awaitable[Any]],
    *,
    owner: str,
    scope: str,
    key: str | None,
    body: Any,
    status_code: int,
    now: Callable[[], datetime],
) -> StoredResponse:
    """Run ``work`` in a transaction, or replay the answer a previous request with this key got.

    ``work`` returns the JSON body of the answer; it is recorded with the transaction that produced it.
    Errors are not recorded: a retry after a 409 tries again.
    """
    if key is None:
        return StoredResponse(status_code, await db.transact(work))
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters.")
    body_hash = request_hash(body)

    async def work_and_record(uow: UnitOfWork) -> StoredResponse:
        # Looked up in the same transaction as the work: one round of the database instead of two.
        found = await find(uow.conn, owner=owner, scope=scope, key=key, body_hash=body_hash)
        if found is not None:
            mark_replayed()
            return found
        answer = await work(uow)
        await record(
            uow.conn,
            owner=owner,
            scope=scope,
            key=key,
            body_hash=body_hash,
            status_code=status_code,
            body=answer,
            now=now(),
        )
        return StoredResponse(status_code, answer)

    try:
        return await db.transact(work_and_record)
    except IntegrityError:
        # A concurrent request with the same key committed first: answer what it answered.
        async with db.read() as conn:
            found = await find(conn, owner=owner, scope=scope, key=key, body_hash=body_hash)
        if found is None:
            raise
        mark_replayed()
        return found


async def purge_expired(db: Database, *, before: datetime, batch: int = 1000) -> int:
    """Delete up to ``batch`` records created before ``before``; returns how many (0 without the table)."""
    expired = select(IDEMPOTENCY.c.owner, IDEMPOTENCY.c.scope, IDEMPOTENCY.c.key).where(
        IDEMPOTENCY.c.created_at < before
    )
    async with db.read() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table(IDEMPOTENCY.name)):
            return 0
        # Looked for on the read pool first: no write transaction (SQLite's one writer) when nothing expired.
        if (await conn.execute(expired.limit(1))).first() is None:
            return 0
    pk = tuple_(IDEMPOTENCY.c.owner, IDEMPOTENCY.c.scope, IDEMPOTENCY.c.key)
    async with db.uow() as uow:
        result = await uow.conn.execute(delete(IDEMPOTENCY).where(pk.in_(expired.limit(batch))))
        await uow.commit()
    return int(result.rowcount or 0)


class KeyPurge:
    """The step of a service's ``idempotency-purge`` loop: records older than ``ttl`` go, a batch at a time."""

    def __init__(self, db: Database, *, ttl: timedelta, now: Callable[[], datetime], batch: int = 1000) -> None:
        self.db = db
        self.ttl = ttl
        self.now = now
        self.batch = batch

    async def __call__(self) -> bool:
        """True while there may be more to purge (a full batch went)."""
        return await purge_expired(self.db, before=self.now() - self.ttl, batch=self.batch) >= self.batch


class ReplayMarker:
    """Whether the answer to the request being served is a replay (set by ``mark_replayed``)."""

    __slots__ = ("replayed",)

    def __init__(self) -> None:
        self.replayed = False


_current_replay: ContextVar[ReplayMarker | None] = ContextVar("idempotent_replay", default=None)


def watch_replay() -> tuple[ReplayMarker, Token[ReplayMarker | None]]:
    """A marker for the request about to be served, current until ``unwatch_replay(token)``."""
    marker = ReplayMarker()
    return marker, _current_replay.set(marker)


def unwatch_replay(token: Token[ReplayMarker | None]) -> None:
    _current_replay.reset(token)


def mark_replayed() -> None:
    """Mark the response to the request being served as a replay (``Idempotent-Replayed: true``)."""
    marker = _current_replay.get()
    if marker is not None:
        marker.replayed = True

