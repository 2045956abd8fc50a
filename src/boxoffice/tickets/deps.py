"""What tickets runs with: its settings (``BOXOFFICE_TICKETS_*``)."""

from __future__ import annotations

from boxoffice.platform.settings import ServiceSettings, service_config


class TicketsSettings(ServiceSettings):
    model_config = service_config("tickets")

    max_upload_bytes: int = 5 * 1024 * 1024
    pdf_batch: int = 20
    pdf_processes: int = 1
    """Worker processes that render ticket PDFs (0: a thread of the tickets service)."""
