"""Sending e-mail: the dev mailbox (files in the data dir, readable at /api/dev/mailbox) or SMTP."""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.encoders import encode_base64
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Protocol

import aiosmtplib

from boxoffice.platform.settings import Settings


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    sent_at: datetime
    attachments: tuple[str, ...] = ()
    """The attached files' names."""


class Mailer(Protocol):
    sender: str
    """The From address of every message."""

    async def send(
        self, to: str, subject: str, text: str, *, attachments: Sequence[Attachment] = (), message_id: str | None = None
    ) -> None:
        """Send one message. ``message_id``: a stable id for a message that may be sent again after a crash
        (receivers that keep Message-IDs show it once)."""
        ...

    async def deliver(self, to: str, message: bytes) -> None:
        """Send a message already composed by ``compose`` (which a caller may run in another process: a
        message with PDFs attached costs milliseconds of CPU to build)."""
        ...


def compose(
    sender: str,
    to: str,
    subject: str,
    text: str,
    attachments: Sequence[Attachment] = (),
    message_id: str | None = None,
) -> bytes:
    """One message as it goes over the wire (RFC 5322 bytes, MIME parts, non-ASCII headers encoded).

    Built with the ``email.mime`` classes (the package's compat32 API) when both addresses are ASCII, as they
    nearly always are: ``EmailMessage`` parses and folds every header through its header registry, 0.9 ms of
    CPU for a message with one ticket's PDF against 0.3 ms (``loadtest/mail_compose.py``), and the tickets
    worker composes one per order. A non-ASCII address goes through ``EmailMessage``, which encodes it."""
    if not (sender.isascii() and to.isascii()):
        return _compose_unicode(sender, to, subject, text, attachments, message_id)
    body = MIMEText(text, "plain", "utf-8")
    message: Message = MIMEMultipart() if attachments else body
    message["From"] = sender
    message["To"] = to
    if subject.isascii():
        message["Subject"] = subject
    else:
        message["Subject"] = Header(subject, "utf-8")  # type: ignore[assignment]  # RFC 2047; compat32 takes it
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{message_id or uuid.uuid4().hex}@boxoffice.localhost>"
    if attachments:
        message.attach(body)
        for attachment in attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            part = MIMEBase(maintype, subtype)
            part.set_payload(attachment.content)
            encode_base64(part)
            name = attachment.filename
            filename = name if name.isascii() else ("utf-8", "", name)  # RFC 2231
            part.add_header("Content-Disposition", "attachment", filename=filename)
            message.attach(part)
    return message.as_bytes()


def _compose_unicode(
    sender: str, to: str, subject: str, text: str, attachments: Sequence[Attachment], message_id: str | None
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{message_id or uuid.uuid4().hex}@boxoffice.localhost>"
    message.set_content(text)
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message.as_bytes()


def _address_tag(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:12]


class DevMailbox:
    """Every message is an .eml file under ``<data dir>/mailbox/<recipient tag>/``; nothing leaves the machine.

    One folder per recipient, so reading one person's mail does not list everyone's (a load test registers
    thousands of customers)."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(
        self, to: str, subject: str, text: str, *, attachments: Sequence[Attachment] = (), message_id: str | None = None
    ) -> None:
        await self.deliver(to, compose(self.sender, to, subject, text, attachments, message_id))

    async def deliver(self, to: str, message: bytes) -> None:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        await asyncio.to_thread(self._write, self.directory / _address_tag(to), name, message)

    def _write(self, folder: Path, name: str, data: bytes) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.tmp"
        partial.write_bytes(data)
        partial.rename(folder / name)  # readers never see half a message

    def messages(self, to: str | None = None, *, limit: int = 50) -> list[Mail]:
        """Newest first, optionally only those addressed to ``to`` (case-insensitive)."""
        if not self.directory.exists():
            return []
        found: list[Mail] = []
        parser = BytesParser(policy=email.policy.default)
        paths = (self.directory / _address_tag(to)).glob("*.eml") if to is not None else self.directory.glob("*/*.eml")
        for path in sorted(paths, key=lambda p: p.name, reverse=True):
            message = parser.parsebytes(path.read_bytes())
            if to is not None and str(message["To"]).strip().lower() != to.strip().lower():
                continue
            body = message.get_body(("plain",))
            found.append(
                Mail(
                    to=str(message["To"]),
                    subject=str(message["Subject"]),
                    text=body.get_content() if body is not None else "",
                    sent_at=parsedate_to_datetime(str(message["Date"])),
                    attachments=tuple(str(part.get_filename()) for part in message.iter_attachments()),
                )
            )
            if len(found) >= limit:
                break
        return found


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sender = settings.mail_from

    async def send(
        self, to: str, subject: str, text: str, *, attachments: Sequence[Attachment] = (), message_id: str | None = None
    ) -> None:
        await self.deliver(to, compose(self.sender, to, subject, text, attachments, message_id))

    async def deliver(self, to: str, message: bytes) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            sender=parseaddr(self.sender)[1],
            recipients=[to],
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )


def build_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings)
    return DevMailbox(settings.data_dir / "mailbox", sender=settings.mail_from)
