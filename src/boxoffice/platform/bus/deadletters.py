"""Dead letters: events a consumer group gave up on after ``BOXOFFICE_BUS_MAX_ATTEMPTS`` failed attempts.

The table lives in the consuming service's own database, next to its ``inbox``: that is where the group
applies its events, it exists whatever the bus backend (Kafka has no database of ours), and a dead letter
is found and replayed with the service that can apply it. The platform migrates it in every service
database (``boxoffice.platform:migrations``, its own Alembic history), so no service declares it.

An event is dead-lettered at most once per group (a second failure of the same event, delivered again
after a crash, updates the row). ``boxoffice bus dead-letters`` lists them; ``boxoffice bus replay ID``
hands one to its group's handler again and removes it once the handler succeeds.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from boxoffice.platform.bus.envelope import Envelope, uuid7
from boxoffice.platform.bus.port import Record
from boxoffice.platform.db import Database, UtcDateTime, utcnow

metadata = MetaData()
"""The tables the platform itself keeps in every service database (migrated by its own history)."""

dead_letters = Table(
    "bus_dead_letters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("consumer_group", String(200), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", UtcDateTime, nullable=False),
    UniqueConstraint("consumer_group", "event_id", name="uq_bus_dead_letters_group_event"),
)

MAX_ERROR_CHARS = 8000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    group: str
    topic: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    key: str
    payload: str
    error: str
    attempts: int
    failed_at: datetime

    def envelope(self) -> Envelope:
        return Envelope.from_json(self.payload, topic=self.topic)


def describe(exc: BaseException) -> str:
    """The error as stored: the exception and its traceback, cut to a bounded size."""
    text = "".join(traceback.format_exception(exc))
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 20] + "\n...(cut)"


class DeadLetters:
    """The dead letters of one service database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def exists(self) -> bool:
        """Whether the database has the table (it is migrated with the service's database)."""
        async with self.db.read() as conn:
            return bool(await conn.run_sync(lambda sync: inspect(sync).has_table(dead_letters.name)))

    async def add(self, group: str, record: Record, *, error: str, attempts: int, now: datetime | None = None) -> None:
        envelope = record.envelope
        values = {
            "id": uuid7(),
            "consumer_group": group,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "key": envelope.key,
            "payload": envelope.to_json().decode(),
            "error": error,
            "attempts": attempts,
            "failed_at": now or utcnow(),
        }
        again = {k: values[k] for k in ("topic", "partition", "offset", "error", "failed_at")}
        async with self.db.uow() as uow:
            insert = postgresql.insert if uow.conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(dead_letters).values(values)
            await uow.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["consumer_group", "event_id"],
                    set_={**again, "attempts": dead_letters.c.attempts + attempts},
                )
            )
            await uow.commit()

    async def list(self, *, group: str | None = None, limit: int = 1000) -> list[DeadLetter]:
        query = select(dead_letters).order_by(dead_letters.c.failed_at, dead_letters.c.id).limit(limit)
        if group is not None:
            query = query.where(dead_letters.c.consumer_group == group)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_dead_letter(row) for row in rows]

    async def get(self, id_: str) -> DeadLetter | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(dead_letters).where(dead_letters.c.id == id_))).first()
        return None if row is None else _dead_letter(row)

    async def remove(self, id_: str) -> bool:
        async with self.db.uow() as uow:
            result = await uow.conn.execute(delete(dead_letters).where(dead_letters.c.id == id_))
            await uow.commit()
        return bool(result.rowcount == 1)

    async def failed_again(self, id_: str, *, error: str, now: datetime | None = None) -> None:
        """A replay failed too: count the attempt and keep the newest error."""
        async with self.db.uow() as uow:
            await uow.conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == id_)
                .values(attempts=dead_letters.c.attempts + 1, error=error, failed_at=now or utcnow())
            )
            await uow.commit()


def _dead_letter(row: Row[Any]) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        group=row.consumer_group,
        topic=row.topic,
        partition=row.partition,
        offset=row.offset,
        event_id=row.event_id,
        event_type=row.event_type,
        key=row.key,
        payload=row.payload,
        error=row.error,
        attempts=row.attempts,
        failed_at=row.failed_at,
    )
