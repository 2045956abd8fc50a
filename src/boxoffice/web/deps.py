"""What web runs with: its settings (``BOXOFFICE_WEB_*``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from boxoffice.platform.settings import ServiceSettings, service_config


class WebSettings(ServiceSettings):
    model_config = service_config("web")

    max_quantity: int = Field(
        default=10,
        validation_alias=AliasChoices(
            "max_quantity", "BOXOFFICE_WEB_MAX_QUANTITY", "BOXOFFICE_BOOKING_MAX_TICKETS_PER_EVENT"
        ),
    )
    """The largest quantity the ticket picker offers (booking enforces its own limit)."""
