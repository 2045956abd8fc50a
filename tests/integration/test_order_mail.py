"""The buyer's e-mails: the order confirmation with its tickets, and the refund after a cancellation.

Tickets sends both (docs/contracts.md): the confirmation once every PDF of the order is stored, the refund
e-mail on payments' ``payments.refunded``. Exactly one of each per order, whatever the bus redelivers. On
SQLite and PostgreSQL through the dev mailbox, and over SMTP to a real server (aiosmtpd).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest

from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.mail import DevMailbox, Mail
from boxoffice.platform.settings import Settings
from boxoffice.tickets import store
from boxoffice.tickets.deps import TicketsSettings
from boxoffice.tickets.domain import Letter
from tests.harness.app import Running, running, wait_for
from tests.harness.smtp import Inbox

BUYER = "asha@example.com"


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    configs = {"tickets": TicketsSettings(database_url=db_url, public_url="https://tickets.example.com")}
    async with running(Settings(data_dir=tmp_path), ["tickets"], configs=configs) as app:
        yield app


def train_confirmed(order_id: str, *, number: str = "K7M29QXD") -> Envelope:
    run_id = "run-" + uuid.uuid4().hex[:8]
    data = {
        "event_id": run_id,
        "user_id": str(uuid.uuid4()),
        "order_id": order_id,
        "ticket_count": 2,
        "amount_minor": 590000,
        "currency": "INR",
        "status": "confirmed",
        "timestamp": "2026-11-28T10:00:00Z",
        "kind": "train",
        "number": number,
        "email": BUYER,
        "holder_name": "Asha Rao",
        "items": [
            {"seat_id": "s1", "label": "B1-7", "section": "3A", "price": 295000, "passenger": "Asha Rao"},
            {"seat_id": "s2", "label": "B1-8", "section": "3A", "price": 295000, "passenger": "Ravi Rao"},
        ],
        "train": {
            "run_id": run_id, "train_number": "12952", "name": "Mumbai Rajdhani Express",
            "origin": "NDLS", "destination": "BCT", "origin_name": "New Delhi", "destination_name": "Mumbai Central",
            "origin_timezone": "Asia/Kolkata", "destination_timezone": "Asia/Kolkata",
            "class_code": "3A", "class_name": "AC 3 Tier",
            "departs_at": "2026-12-01T11:25:00Z", "arrives_at": "2026-12-02T03:05:00Z",
        },
    }
    return new_event("booking.order-confirmed", source="booking", key=run_id, data=data, topic="ticket-bookings")


def again(envelope: Envelope) -> Envelope:
    """The same record under a new event id: a redelivery the inbox cannot recognise."""
    return new_event(envelope.type, source=envelope.source, key=envelope.key, data=envelope.data, topic=envelope.topic)


def refunded(confirmed: Envelope, amount: int = 590000) -> Envelope:
    data = {"payment_id": "pay-1", "order_id": confirmed.data["order_id"], "user_id": confirmed.data["user_id"],
            "amount_minor": amount, "currency": "INR"}
    return new_event("payments.refunded", source="payments", key=data["order_id"], data=data, topic="payments")


def mailbox(app: Running) -> DevMailbox:
    mailer = app.service("tickets").mailer
    assert isinstance(mailer, DevMailbox)
    return mailer


async def mails(app: Running, count: int) -> list[Mail]:
    async def arrived() -> list[Mail] | None:
        found = mailbox(app).messages(BUYER)
        return found if len(found) >= count else None

    result: list[Mail] = await wait_for(arrived, timeout=30)
    return result


async def mail_kinds(app: Running, order_id: str) -> dict[str, int]:
    async with app.service("tickets").db.read() as conn:
        return await store.mail_count(conn, order_id)


async def test_one_confirmation_with_the_tickets_and_one_refund_per_order(app: Running) -> None:
    order_id = str(uuid.uuid4())
    confirmed = train_confirmed(order_id)
    await app.runtime.bus.publish([confirmed, confirmed, again(confirmed)])  # delivered twice, resent once
    [confirmation] = await mails(app, 1)
    assert confirmation.subject == (
        "Your tickets for 12952 Mumbai Rajdhani Express, New Delhi to Mumbai Central - order K7M29QXD"
    )
    text = confirmation.text
    for expected in (
        "Hello Asha Rao",
        "order K7M29QXD",
        "New Delhi (NDLS)",
        "Tue 01 Dec 2026, 16:55 IST",  # local time in India, not 11:25 UTC
        "Wed 02 Dec 2026, 08:35 IST",
        "Coach B1, seat 7 - passenger Asha Rao",
        "Coach B1, seat 8 - passenger Ravi Rao",
        "Total paid: 5,900.00 INR",
        f"https://tickets.example.com/orders/{order_id}",
        "photo ID matching the passenger name",
    ):
        assert expected in text, expected
    assert "UTC" not in text
    assert len(confirmation.attachments) == 2 and all(a.endswith(".pdf") for a in confirmation.attachments)

    # Payments refunds; the refund e-mail says how much. A redelivered refund sends nothing more.
    refund = refunded(confirmed)
    await app.runtime.bus.publish([refund, refund, again(refund)])
    newest, _ = await mails(app, 2)
    assert newest.subject.startswith("Refund of 5,900.00 INR for order K7M29QXD")
    assert "Refunded: 5,900.00 INR" in newest.text and "tickets are void" in newest.text

    # Redeliveries after the fact (the confirmation again, another refund event) still send nothing.
    await app.runtime.bus.publish([again(confirmed), again(refund)])
    marker_id = str(uuid.uuid4())
    marker = train_confirmed(marker_id, number="MARK0000")
    await app.runtime.bus.publish([marker])
    await mails(app, 3)  # the marker's confirmation: everything published before it was handled
    assert await mail_kinds(app, order_id) == {"confirmation": 1, "refund": 1}
    assert len([m for m in mailbox(app).messages(BUYER) if "K7M29QXD" in m.subject]) == 2


async def test_an_order_without_an_address_gets_no_mail_and_its_tickets_all_the_same(app: Running) -> None:
    old = train_confirmed(str(uuid.uuid4()))
    old.data.pop("email")
    await app.runtime.bus.publish([old])

    async def issued() -> bool:
        async with app.service("tickets").db.read() as conn:
            tickets = await store.tickets_of_order(conn, old.data["order_id"])
        return len(tickets) == 2 and all(t.pdf_key for t in tickets)

    await wait_for(issued, timeout=30)
    assert await mail_kinds(app, old.data["order_id"]) == {}


async def test_the_confirmation_arrives_over_smtp_with_the_pdfs(tmp_path: Path, smtp: Inbox) -> None:
    settings = Settings(data_dir=tmp_path, mail_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port)
    async with running(settings, ["tickets"]) as app:
        confirmed = train_confirmed(str(uuid.uuid4()))
        await app.runtime.bus.publish([confirmed])

        async def delivered() -> list[Any] | None:
            return smtp.to(BUYER) or None

        [message] = await wait_for(delivered, timeout=30)
        assert "K7M29QXD" in str(message["Subject"])
        body = message.get_body(("plain",)).get_content()
        assert "16:55 IST" in body and "passenger Ravi Rao" in body
        pdfs = list(message.iter_attachments())
        assert len(pdfs) == 2 and {p.get_content_type() for p in pdfs} == {"application/pdf"}
        printed = pypdf.PdfReader(io.BytesIO(pdfs[0].get_content())).pages[0].extract_text()
        assert "K7M29QXD" in printed and "16:55 IST" in printed

        await app.runtime.bus.publish([refunded(confirmed, amount=295000)])

        async def refund_delivered() -> list[Any] | None:
            found = [m for m in smtp.to(BUYER) if str(m["Subject"]).startswith("Refund")]
            return found or None

        [refund] = await wait_for(refund_delivered, timeout=30)
        assert "Refunded: 2,950.00 INR" in refund.get_body(("plain",)).get_content()
        assert str(refund["Message-ID"]) == f"<{confirmed.data['order_id']}.refund@boxoffice.localhost>"


async def test_mails_queued_together_count_only_the_new_ones(app: Running) -> None:
    """``queue_mails``: one statement for a batch; a mail already queued for its order and kind stays as it was."""

    def letter(order_id: str, subject: str) -> Letter:
        return Letter(order_id, "confirmation", BUYER, subject, "body", (("ticket-1.pdf", f"tickets/{order_id}/1.pdf"),))

    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    now = datetime.now(UTC)
    db = app.service("tickets").db
    async with db.uow() as uow:
        assert await store.queue_mail(uow.conn, letter(first, "first"), now=now)
        await uow.commit()
    async with db.uow() as uow:
        batch = [letter(first, "again"), letter(second, "second"), letter(third, "third")]
        assert await store.queue_mails(uow.conn, batch, now=now) == 2
        await uow.commit()
    async with db.read() as conn:
        queued = {q.letter.order_id: q.letter for q in await store.pending_mail(conn, 10)}
    assert {order_id: m.subject for order_id, m in queued.items()} == {first: "first", second: "second", third: "third"}
    assert queued[third].attachments == (("ticket-1.pdf", f"tickets/{third}/1.pdf"),)
