"""``platform.mail.compose``: the bytes a mailer delivers read back as the message that was meant."""

from __future__ import annotations

import pickle
from email import policy
from email.parser import BytesParser

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


def test_compose_and_its_arguments_cross_a_process_boundary() -> None:
    # The tickets worker composes in its PDF worker processes: the function and attachments must pickle.
    attachment = Attachment("ticket.pdf", b"%PDF-1.4")
    assert pickle.loads(pickle.dumps(compose)) is compose
    assert pickle.loads(pickle.dumps(attachment)) == attachment
