"""What payments runs with: its settings (``BOXOFFICE_PAYMENTS_*``)."""

from __future__ import annotations

from boxoffice.platform.settings import ServiceSettings, service_config


class PaymentsSettings(ServiceSettings):
    model_config = service_config("payments")
