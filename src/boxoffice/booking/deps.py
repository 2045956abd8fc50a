"""What booking runs with: its settings (``BOXOFFICE_BOOKING_*``) and the dependencies its handlers take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from boxoffice.booking.clients import PaymentsClient, TicketsClient
from boxoffice.booking.domain import Limits
from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config


class BookingSettings(ServiceSettings):
    model_config = service_config("booking")

    hold_ttl_seconds: int = 600
    max_tickets_per_event: int = 10
    max_active_holds: int = 3
    sweep_interval_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class BookingDeps:
    """Everything booking's handlers may touch; ``service.py`` builds it once."""

    db: Database
    config: BookingSettings
    now: Callable[[], datetime]  # the service's clock; tests move it instead of sleeping
    limits: Limits
    tickets: TicketsClient
    payments: PaymentsClient
