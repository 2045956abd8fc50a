"""``platform.mail.compose``: the bytes a mailer delivers read back as the message that was meant."""

from __future__ import annotations

import pickle
from email import policy
from email.parser import BytesParser

import pytest

from boxoffice.platform.mail import Attachment, compose


def test_a_composed_message_reads_back_whole() -> None:
    pdf = bytes(range(256)) * 200
    data = compose(
        "boxoffice <no-reply@boxoffice.localhost>",
        "zoë@example.com",
        "Your tickets for Rock Night — Zürich",
        "Hello Zoë,\nyour tickets are attached.\n",
        (Attachment("ticket-1.pdf", pdf), Attachment("ticket-2.pdf", pdf[::-1])),
        "order-1.confirmation",
    )
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert message["Subject"] == "Your tickets for Rock Night — Zürich"
    assert message["To"] == "zoë@example.com"
    assert message["Message-ID"] == "<order-1.confirmation@boxoffice.localhost>"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content() == "Hello Zoë,\nyour tickets are attached.\n"
    parts = list(message.iter_attachments())
    assert [p.get_filename() for p in parts] == ["ticket-1.pdf", "ticket-2.pdf"]
    assert [p.get_content() for p in parts] == [pdf, pdf[::-1]]



@pytest.mark.parametrize("to", ["buyer-17@example.com", "zoë@example.com"])
def test_every_message_reads_back_whole_whatever_its_text(to: str) -> None:
    """ASCII addresses (the common case) are composed by the email.mime classes, others by EmailMessage:
    both read back as the same message, non-ASCII subject, body and file names included."""
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 20
    data = compose(
        "boxoffice <no-reply@boxoffice.localhost>",
        to,
        "Deine Tickets für Zürich — 東京",
        "Hallo Zoë,\nhier sind deine Tickets.\n",
        (Attachment("ticket-1.pdf", pdf), Attachment("Fahrkarte-Zürich.pdf", pdf[::-1])),
        "order-2.confirmation",
    )
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert not message.defects and not any(part.defects for part in message.walk())
    assert message["From"] == "boxoffice <no-reply@boxoffice.localhost>"
    assert message["To"] == to
    assert message["Subject"] == "Deine Tickets für Zürich — 東京"
    assert message["Message-ID"] == "<order-2.confirmation@boxoffice.localhost>"
    assert message["Date"].datetime.tzinfo is not None
    body = message.get_body(("plain",))
    assert body is not None and body.get_content() == "Hallo Zoë,\nhier sind deine Tickets.\n"
    parts = list(message.iter_attachments())
    assert [p.get_filename() for p in parts] == ["ticket-1.pdf", "Fahrkarte-Zürich.pdf"]
    assert [p.get_content_type() for p in parts] == ["application/pdf", "application/pdf"]
    assert [p.get_content() for p in parts] == [pdf, pdf[::-1]]


def test_a_message_without_attachments_is_one_plain_part() -> None:
    message = BytesParser(policy=policy.default).parsebytes(
        compose("boxoffice <no-reply@boxoffice.localhost>", "a@example.com", "Your code", "Code: 123456\n")
    )
    assert not message.is_multipart() and message.get_content_type() == "text/plain"
    assert message.get_content() == "Code: 123456\n"


def test_compose_and_its_arguments_cross_a_process_boundary() -> None:
    # The tickets worker composes in its PDF worker processes: the function and attachments must pickle.
    attachment = Attachment("ticket.pdf", b"%PDF-1.4")
    assert pickle.loads(pickle.dumps(compose)) is compose
    assert pickle.loads(pickle.dumps(attachment)) == attachment
