"""What tickets runs with: its settings (``BOXOFFICE_TICKETS_*``) and the dependencies its handlers take."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field

from boxoffice.platform.db import Database
from boxoffice.platform.mail import Mailer
from boxoffice.platform.objectstore import ObjectStore
from boxoffice.platform.settings import ServiceSettings, service_config
from boxoffice.tickets.clients import BookingOrders
from boxoffice.tickets.keys import TicketKeys
from boxoffice.tickets.pdf import PdfRenderer


class TicketsSettings(ServiceSettings):
    model_config = service_config("tickets")

    max_upload_bytes: int = 5 * 1024 * 1024
    pdf_batch: int = 20
    pdf_processes: int = 1
    """Worker processes that render ticket PDFs (0: a thread of the tickets service)."""
    pdf_nice: int = Field(default=10, ge=0, le=19)
    """How much lower the PDF workers' scheduling priority is than the service's (Unix nice). Rendering
    ahead of downloads is work that can wait: during a sale the buyers' requests get the cores first, and
    the workers use what is left (and all of it when nothing else runs)."""
    public_url: str | None = None
    """Where buyers reach the shop (links in e-mails), e.g. https://tickets.example.com; unset: this process's
    own http://host:port."""


@dataclass(frozen=True, slots=True)
class TicketsDeps:
    db: Database
    config: TicketsSettings
    now: Callable[[], datetime]
    """The service's clock; tests move it instead of sleeping."""
    orders: BookingOrders
    objects: ObjectStore
    keys: TicketKeys
    """The signing keys, loaded at start-up."""
    render: PdfRenderer
    pdf_wanted: asyncio.Event
    """Set when tickets are issued: wakes the PDF renderer at once instead of at its next round."""
    mailer: Mailer
    mail_wanted: asyncio.Event
    """Set after a commit that queued mail: wakes the mail sender at once."""
    site: str
    """The shop's address for links in e-mails (no trailing slash)."""
