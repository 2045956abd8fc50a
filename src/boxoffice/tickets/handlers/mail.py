"""Mail to buyers: the order confirmation once every ticket's PDF is stored, the refund e-mail once payments
refunded a cancelled order, and the sender that delivers what is queued.

Exactly one of each per order: the queue's unique (order, kind) key holds whatever is redelivered (a second
``payments.refunded``, a PDF stored twice by two renderers), and the inbox makes each event count once. The
sender marks a row sent after the server took it; a crash in between sends that one again, with the same
Message-ID (``order id.kind``), which mail clients show once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.mail import Attachment, compose
from boxoffice.platform.metrics import counter
from boxoffice.tickets import letters, store
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import TicketStatus

log = structlog.get_logger("boxoffice.tickets.mail")

MAILS_SENT = counter("boxoffice_tickets_mails_sent_total", "E-mails to buyers sent (confirmation, refund)", ("kind",))


class OrderNotSeenYet(Exception):
    """A refund for an order whose confirmation tickets has not applied yet: the consumer retries it."""


async def queue_confirmations(deps: TicketsDeps, conn: AsyncConnection, order_ids: Iterable[str]) -> int:
    """Queue the confirmation of each order whose tickets all have their PDF (in the caller's transaction).
    Orders without an e-mail address (records from before booking sent one) get none."""
    wanted = set(order_ids)
    orders = await store.orders_of(conn, wanted)  # two reads for a batch of PDFs, not two per order
    mailed = {order_id for order_id, order in orders.items() if order.status == "confirmed" and order.email}
    tickets_of = await store.tickets_of_orders(conn, mailed)
    ready = []
    for order_id in sorted(mailed):
        tickets = [t for t in tickets_of.get(order_id, ()) if t.status != TicketStatus.VOIDED]
        if not tickets or any(t.pdf_key is None for t in tickets):
            continue  # the last PDF's renderer queues it
        ready.append(letters.confirmation(orders[order_id], tickets, site=deps.site))
    return await store.queue_mails(conn, ready, now=deps.now())


async def mail_refund(deps: TicketsDeps, data: Mapping[str, Any], *, inbox: tuple[str, str]) -> None:
    """``payments.refunded``: tell the buyer what came back. Once per order (a second refund of the same order
    finds the first e-mail queued)."""
    order_id, amount, currency = data.get("order_id"), data.get("amount_minor"), data.get("currency")
    if not (isinstance(order_id, str) and isinstance(amount, int) and isinstance(currency, str)):
        log.error("malformed payments.refunded skipped", event_id=inbox[1])
        return
    async with deps.db.uow() as uow:
        order = await store.order_of(uow.conn, order_id)
        if order is None:
            raise OrderNotSeenYet(f"refund for order {order_id} before its ticket-bookings record")
        if not await claim_inbox(uow.conn, *inbox):
            return
        queued = False
        if order.email:
            letter = letters.refund(order, amount_minor=amount, currency=currency, site=deps.site)
            queued = await store.queue_mail(uow.conn, letter, now=deps.now())
        await uow.commit()
    if queued:
        deps.mail_wanted.set()


async def send_pending_mail(deps: TicketsDeps, *, batch: int = 20) -> int:
    """Send queued e-mails (with their PDFs from the object store); those that went out are marked sent
    together, also when a later one of the batch fails.

    Each message is composed in the PDF worker processes (``PdfRenderer.offload``): Python's ``email`` package
    takes ~5 ms of CPU for a message with two PDFs, which during a sale was a fifth of the event loop."""
    async with deps.db.read() as conn:
        queued = await store.pending_mail(conn, batch)
    sent: list[int] = []
    try:
        for item in queued:
            letter = item.letter
            files = tuple([Attachment(name, await deps.objects.get(key)) for name, key in letter.attachments])
            message = await deps.render.offload(
                compose,
                deps.mailer.sender,
                letter.recipient,
                letter.subject,
                letter.body,
                files,
                f"{letter.order_id}.{letter.kind}",
            )
            await deps.mailer.deliver(letter.recipient, message)
            sent.append(item.id)
            MAILS_SENT.labels(letter.kind).inc()
    finally:
        if sent:
            async with deps.db.uow() as uow:
                await store.mark_mails_sent(uow.conn, sent, now=deps.now())
                await uow.commit()
    return len(queued)
