"""Tickets' tables (with the outbox, inbox and audit trail) and the queries on them, in domain types."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
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
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform import audit, hotsql
from boxoffice.platform.audit import add_audit_table
from boxoffice.platform.bus.tables import BigId, add_messaging_tables
from boxoffice.platform.db import UtcDateTime
from boxoffice.platform.keys import add_signing_keys_table
from boxoffice.tickets.domain import (
    Booking,
    Letter,
    OrderSummary,
    QueuedLetter,
    Ticket,
    TicketStatus,
    TicketToRender,
    Upload,
    UploadStatus,
)

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
    Column("number", String(16), nullable=True),  # the readable order number
    Column("email", String(320), nullable=True),  # where the order's e-mails go
    Column("amount_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
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
    Column("checkin_gate", String(64), nullable=True),  # the gate's name, as staff picked it
    Column("checkin_nonce", String(64), nullable=True),  # the admitting scan's client nonce (a retry repeats it)
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

# E-mails to buyers, written in the transaction that decided to send them (an outbox for mail). One of each
# kind per order, whatever is redelivered: the unique key is the guard. Kept once sent (sent_at), so that
# a late duplicate finds it and sends nothing.
mail_queue = Table(
    "mail_queue",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),  # confirmation | refund
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("attachments", Text, nullable=False),  # JSON: [[file name, object key], ...]
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    UniqueConstraint("order_id", "kind", name="uq_mail_queue_order_kind"),
    Index("ix_mail_queue_pending", "sent_at", "id"),
)

outbox, inbox = add_messaging_tables(metadata)
audit_log = add_audit_table(metadata)


# Orders.
async def order_status(conn: AsyncConnection, order_id: str) -> str | None:
    """What tickets knows of the order: confirmed, cancelled, or None (nothing yet)."""
    status: str | None = await conn.scalar(select(orders.c.status).where(orders.c.id == order_id))
    return status


async def insert_order(conn: AsyncConnection, booking: Booking, *, status: str, now: datetime) -> None:
    await conn.execute(
        insert(orders).values(
            id=booking.order_id,
            user_id=booking.user_id,
            status=status,
            kind=booking.kind,
            subject_id=booking.subject_id,
            holder_name=booking.holder_name,
            details=json.dumps(booking.details),
            updated_at=now,
            number=booking.number or None,
            email=booking.email or None,
            amount_minor=booking.amount_minor,
            currency=booking.currency or None,
        )
    )


async def order_statuses(conn: AsyncConnection, order_ids: Collection[str]) -> dict[str, str]:
    """``order_status`` of several orders in one query (the orders tickets knows nothing of are left out)."""
    if not order_ids:
        return {}
    rows = await conn.execute(select(orders.c.id, orders.c.status).where(orders.c.id.in_(sorted(order_ids))))
    return {order_id: status for order_id, status in rows}


_INSERT_ORDERS = insert(orders)
_INSERT_TICKETS = insert(tickets)
"""Built once (``platform.hotsql``): a batch of issued orders and their tickets, each one executemany."""


async def insert_orders(conn: AsyncConnection, bookings: Sequence[Booking], *, status: str, now: datetime) -> None:
    """``insert_order`` of several orders in one statement."""
    if bookings:
        await hotsql.run(conn, _INSERT_ORDERS, [_order_row(booking, status=status, now=now) for booking in bookings])


def _order_row(booking: Booking, *, status: str, now: datetime) -> dict[str, Any]:
    return {
        "id": booking.order_id,
        "user_id": booking.user_id,
        "status": status,
        "kind": booking.kind,
        "subject_id": booking.subject_id,
        "holder_name": booking.holder_name,
        "details": json.dumps(booking.details),
        "updated_at": now,
        "number": booking.number or None,
        "email": booking.email or None,
        "amount_minor": booking.amount_minor,
        "currency": booking.currency or None,
    }


async def order_of(conn: AsyncConnection, order_id: str) -> OrderSummary | None:
    row = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
    return _order_summary(row) if row is not None else None


async def orders_of(conn: AsyncConnection, order_ids: Collection[str]) -> dict[str, OrderSummary]:
    """The orders of these ids that are known here, by id (one read)."""
    if not order_ids:
        return {}
    rows = await conn.execute(select(orders).where(orders.c.id.in_(sorted(order_ids))))
    return {row.id: _order_summary(row) for row in rows}


def _order_summary(row: Any) -> OrderSummary:
    return OrderSummary(
        id=row.id,
        status=row.status,
        kind=row.kind,
        holder_name=row.holder_name,
        details=json.loads(row.details),
        number=row.number or "",
        email=row.email or "",
        amount_minor=row.amount_minor or 0,
        currency=row.currency or "",
    )


async def set_order_status(conn: AsyncConnection, order_id: str, status: str, *, now: datetime) -> None:
    await conn.execute(update(orders).where(orders.c.id == order_id).values(status=status, updated_at=now))


async def lock_order(conn: AsyncConnection, order_id: str) -> str | None:
    """The order's status, its row locked until the transaction ends (PostgreSQL; a SQLite writer holds the
    whole database already): issuance and a refund fence of one order take turns."""
    query = select(orders.c.status).where(orders.c.id == order_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    status: str | None = await conn.scalar(query)
    return status


async def order_details(conn: AsyncConnection, order_id: str) -> dict[str, Any]:
    """The event or train object an order's tickets print (empty for an order tickets knows only as a fence)."""
    details: str | None = await conn.scalar(select(orders.c.details).where(orders.c.id == order_id))
    loaded = json.loads(details) if details else {}
    return loaded if isinstance(loaded, dict) else {}


# Tickets.
def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row.id,
        order_id=row.order_id,
        line_no=row.line_no,
        user_id=row.user_id,
        kind=row.kind,
        subject_id=row.subject_id,
        seat_id=row.seat_id,
        label=row.label,
        section=row.section,
        holder_name=row.holder_name,
        version=row.version,
        code=row.code,
        status=TicketStatus(row.status),
        created_at=row.created_at,
        pdf_key=row.pdf_key,
        used_at=row.used_at,
        checked_in_by=row.checked_in_by,
        voided_at=row.voided_at,
        checkin_gate=row.checkin_gate,
        checkin_nonce=row.checkin_nonce,
    )


async def insert_tickets(conn: AsyncConnection, new: list[Ticket]) -> None:
    if new:
        await hotsql.run(
            conn,
            _INSERT_TICKETS,
            [
                {
                    "id": t.id,
                    "order_id": t.order_id,
                    "line_no": t.line_no,
                    "user_id": t.user_id,
                    "kind": t.kind,
                    "subject_id": t.subject_id,
                    "seat_id": t.seat_id,
                    "label": t.label,
                    "section": t.section,
                    "holder_name": t.holder_name,
                    "version": t.version,
                    "code": t.code,
                    "status": t.status.value,
                    "created_at": t.created_at,
                }
                for t in new
            ],
        )


async def ticket_by_id(conn: AsyncConnection, ticket_id: str) -> Ticket | None:
    row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
    return _ticket(row) if row is not None else None


async def tickets_of_order(conn: AsyncConnection, order_id: str) -> list[Ticket]:
    rows = await conn.execute(select(tickets).where(tickets.c.order_id == order_id).order_by(tickets.c.line_no))
    return [_ticket(row) for row in rows]


async def tickets_of_orders(conn: AsyncConnection, order_ids: Collection[str]) -> dict[str, list[Ticket]]:
    """Each of these orders' tickets in line order, by order id (one read; an order without any is absent)."""
    if not order_ids:
        return {}
    query = (
        select(tickets)
        .where(tickets.c.order_id.in_(sorted(order_ids)))
        .order_by(tickets.c.order_id, tickets.c.line_no)
    )
    found: dict[str, list[Ticket]] = {}
    for row in await conn.execute(query):
        found.setdefault(row.order_id, []).append(_ticket(row))
    return found


async def tickets_of_user(
    conn: AsyncConnection, user_id: str, *, order_id: str | None, after: str | None, limit: int
) -> list[Ticket]:
    query = select(tickets).where(tickets.c.user_id == user_id)
    if order_id is not None:
        query = query.where(tickets.c.order_id == order_id)
    if after is not None:
        query = query.where(tickets.c.id > after)
    return [_ticket(row) for row in await conn.execute(query.order_by(tickets.c.id).limit(limit))]


async def lock_tickets_of_order(conn: AsyncConnection, order_id: str) -> list[Ticket]:
    """The order's tickets, their rows locked until the transaction ends (PostgreSQL; a SQLite writer holds
    the whole database already). A check-in's conditional UPDATE of one of them waits for the lock and then
    sees the row as this transaction left it; a check-in that got there first is seen as ``used`` (READ
    COMMITTED re-reads a locked row's newest version)."""
    query = select(tickets).where(tickets.c.order_id == order_id).order_by(tickets.c.line_no)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return [_ticket(row) for row in await conn.execute(query)]


async def void_tickets(conn: AsyncConnection, order_id: str, now: datetime) -> list[Ticket]:
    """Void the order's valid tickets; returns the ones this call voided, as they are now."""
    condition = and_(tickets.c.order_id == order_id, tickets.c.status == TicketStatus.VALID.value)
    victims = [_ticket(row) for row in await conn.execute(select(tickets).where(condition))]
    if victims:
        await conn.execute(update(tickets).where(condition).values(status=TicketStatus.VOIDED.value, voided_at=now))
    return [replace(t, status=TicketStatus.VOIDED, voided_at=now) for t in victims]


async def admit_ticket(
    conn: AsyncConnection,
    ticket_id: str,
    *,
    version: int,
    by: str,
    now: datetime,
    gate: str | None = None,
    nonce: str | None = None,
) -> bool:
    """Mark a valid ticket used; False if it was not valid (used, voided, reissued). The conditional UPDATE
    is the referee between two gates scanning the same code at once, and between a gate and booking's refund
    fence (``lock_tickets_of_order``): exactly one of them changes the row."""
    result = await conn.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id, tickets.c.status == TicketStatus.VALID.value, tickets.c.version == version)
        .values(status=TicketStatus.USED.value, used_at=now, checked_in_by=by, checkin_gate=gate, checkin_nonce=nonce)
    )
    return bool(result.rowcount == 1)


async def tickets_without_pdf(conn: AsyncConnection, limit: int) -> list[TicketToRender]:
    query = (
        select(tickets, orders.c.details, orders.c.number)
        .join(orders, orders.c.id == tickets.c.order_id)
        .where(and_(tickets.c.status == TicketStatus.VALID.value, tickets.c.pdf_key.is_(None)))
        .order_by(tickets.c.id)
        .limit(limit)
    )
    rows = await conn.execute(query)
    return [TicketToRender(_ticket(row), json.loads(row.details), row.number or "") for row in rows]


async def ticket_to_render(conn: AsyncConnection, ticket_id: str) -> TicketToRender | None:
    """One valid ticket without its PDF, with what it prints; None once it has one or is no longer valid."""
    query = (
        select(tickets, orders.c.details, orders.c.number)
        .join(orders, orders.c.id == tickets.c.order_id)
        .where(
            and_(
                tickets.c.id == ticket_id,
                tickets.c.status == TicketStatus.VALID.value,
                tickets.c.pdf_key.is_(None),
            )
        )
    )
    row = (await conn.execute(query)).first()
    return TicketToRender(_ticket(row), json.loads(row.details), row.number or "") if row is not None else None


async def set_pdf_keys(conn: AsyncConnection, keys: Mapping[str, str]) -> set[str]:
    """``set_pdf_key`` of several tickets (ticket id: PDF key) in two statements; the ids this call recorded.
    The rows are locked between the two (PostgreSQL; a SQLite writer holds the whole database already)."""
    if not keys:
        return set()
    query = select(tickets.c.id).where(and_(tickets.c.id.in_(sorted(keys)), tickets.c.pdf_key.is_(None)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    free = {ticket_id for (ticket_id,) in await conn.execute(query)}
    if free:
        await conn.execute(_SET_PDF_KEY, [{"ticket_id": t, "key": keys[t]} for t in sorted(free)])
    return free


_SET_PDF_KEY = (
    update(tickets)
    .where(and_(tickets.c.id == bindparam("ticket_id"), tickets.c.pdf_key.is_(None)))
    .values(pdf_key=bindparam("key"))
)


# Mail.
_QUEUE_MAIL = {
    # PostgreSQL: the rows a multi-row insert made are counted from RETURNING (the driver's count is not kept).
    "postgresql": postgresql.insert(mail_queue).on_conflict_do_nothing().returning(mail_queue.c.id),
    "sqlite": sqlite.insert(mail_queue).on_conflict_do_nothing(),
}
"""Built once (``platform.hotsql``): an order's mail of a kind is queued once; a second one changes nothing."""


async def queue_mail(conn: AsyncConnection, mail: Letter, *, now: datetime) -> bool:
    """Queue the order's mail of this kind unless one was queued before; True if this call queued it."""
    return await queue_mails(conn, [mail], now=now) == 1


async def queue_mails(conn: AsyncConnection, mails: Sequence[Letter], *, now: datetime) -> int:
    """Queue each order's mail of its kind unless one was queued before (one statement); how many it queued."""
    rows = [
        {
            "order_id": mail.order_id,
            "kind": mail.kind,
            "recipient": mail.recipient,
            "subject": mail.subject,
            "body": mail.body,
            "attachments": json.dumps([list(a) for a in mail.attachments]),
            "created_at": now,
        }
        for mail in mails
    ]
    if not rows:
        return 0
    done = await hotsql.run(conn, _QUEUE_MAIL[conn.dialect.name], rows)
    return len(done.all()) if conn.dialect.name == "postgresql" else done.rowcount


async def pending_mail(conn: AsyncConnection, limit: int) -> list[QueuedLetter]:
    query = select(mail_queue).where(mail_queue.c.sent_at.is_(None)).order_by(mail_queue.c.id).limit(limit)
    return [
        QueuedLetter(
            id=r.id,
            letter=Letter(
                order_id=r.order_id,
                kind=r.kind,
                recipient=r.recipient,
                subject=r.subject,
                body=r.body,
                attachments=tuple((str(name), str(key)) for name, key in json.loads(r.attachments)),
            ),
        )
        for r in await conn.execute(query)
    ]


async def mark_mails_sent(conn: AsyncConnection, mail_ids: Sequence[int], *, now: datetime) -> None:
    await conn.execute(update(mail_queue).where(mail_queue.c.id.in_(mail_ids)).values(sent_at=now))


async def mail_count(conn: AsyncConnection, order_id: str) -> dict[str, int]:
    rows = await conn.execute(select(mail_queue.c.kind).where(mail_queue.c.order_id == order_id))
    counts: dict[str, int] = {}
    for (kind,) in rows:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


# Uploads.
def _upload(row: Any) -> Upload:
    return Upload(
        id=row.id,
        user_id=row.user_id,
        order_id=row.order_id,
        object_key=row.object_key,
        filename=row.filename,
        size=row.size,
        content_type=row.content_type,
        status=UploadStatus(row.status),
        created_at=row.created_at,
        reason=row.reason,
        receipt_key=row.receipt_key,
        checked_at=row.checked_at,
    )


async def insert_upload(conn: AsyncConnection, upload: Upload) -> None:
    await conn.execute(
        insert(uploads).values(
            id=upload.id,
            user_id=upload.user_id,
            order_id=upload.order_id,
            object_key=upload.object_key,
            filename=upload.filename,
            size=upload.size,
            content_type=upload.content_type,
            status=upload.status.value,
            reason=upload.reason,
            receipt_key=upload.receipt_key,
            created_at=upload.created_at,
            checked_at=upload.checked_at,
        )
    )


async def upload_by_id(conn: AsyncConnection, upload_id: str) -> Upload | None:
    row = (await conn.execute(select(uploads).where(uploads.c.id == upload_id))).first()
    return _upload(row) if row is not None else None


async def upload_by_key(conn: AsyncConnection, object_key: str) -> Upload | None:
    row = (await conn.execute(select(uploads).where(uploads.c.object_key == object_key))).first()
    return _upload(row) if row is not None else None


async def settle_upload(
    conn: AsyncConnection, upload_id: str, *, status: str, reason: str, receipt_key: str, now: datetime
) -> bool:
    """Record the ticket generator's verdict once: False if the upload was already settled."""
    result = await conn.execute(
        update(uploads)
        .where(and_(uploads.c.id == upload_id, uploads.c.status == UploadStatus.PENDING.value))
        .values(status=status, reason=reason[:200], receipt_key=receipt_key, checked_at=now)
    )
    return bool(result.rowcount == 1)


# The audit trail.
AUDIT_ID_LENGTH = 36
"""The audit table's order and entity id columns (``platform.audit``): booking's order ids fit; an order id
of the seeds' older shape that does not is recorded without its order."""


async def record_ticket_audits(
    conn: AsyncConnection, entries: Sequence[tuple[Ticket, Mapping[str, Any]]], *, action: str, actor: str
) -> None:
    """``record_audit`` of one action on several tickets, in one statement: (ticket, detail) each."""
    if not entries:
        return
    rows = [
        {
            "order_id": ticket.order_id if len(ticket.order_id) <= AUDIT_ID_LENGTH else None,
            "entity": "ticket",
            "entity_id": ticket.id,
            "actor": actor,
            "action": action,
            "detail": json.dumps(dict(detail), separators=(",", ":"), default=str),
            "at": ticket.voided_at or ticket.used_at or ticket.created_at,
        }
        for ticket, detail in entries
    ]
    await conn.execute(insert(audit_log), rows)


async def record_audit(
    conn: AsyncConnection,
    *,
    entity: str,
    entity_id: str,
    action: str,
    actor: str,
    at: datetime,
    order_id: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One audit entry, in the caller's transaction."""
    await audit.record(
        conn,
        entity=entity,
        entity_id=entity_id,
        action=action,
        actor=actor,
        at=at,
        order_id=order_id if len(order_id) <= AUDIT_ID_LENGTH else None,
        detail=detail,
    )
