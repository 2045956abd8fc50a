"""What booking runs with: its settings (``BOXOFFICE_BOOKING_*``)."""

from __future__ import annotations

from boxoffice.platform.settings import ServiceSettings, service_config


class BookingSettings(ServiceSettings):
    model_config = service_config("booking")

    hold_ttl_seconds: int = 600
    max_tickets_per_event: int = 10
    max_active_holds: int = 3
    sweep_interval_seconds: float = 1.0
