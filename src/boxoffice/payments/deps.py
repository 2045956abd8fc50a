"""What payments runs with: its settings (``BOXOFFICE_PAYMENTS_*``) and the dependencies its handlers take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from boxoffice.payments.clients import BookingOrders
from boxoffice.payments.domain import CardProcessor
from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config


class PaymentsSettings(ServiceSettings):
    model_config = service_config("payments")


@dataclass(frozen=True, slots=True)
class PaymentsDeps:
    db: Database
    config: PaymentsSettings
    now: Callable[[], datetime]
    """The service's clock; tests move it instead of sleeping."""
    orders: BookingOrders
    processor: CardProcessor
