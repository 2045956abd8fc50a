"""What web runs with: its settings (``BOXOFFICE_WEB_*``) and the dependencies of its pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import AliasChoices, Field

from boxoffice.platform.auth import TokenVerifier
from boxoffice.platform.settings import ServiceSettings, service_config
from boxoffice.web.clients import (
    BookingApi,
    CatalogApi,
    IdentityApi,
    PaymentsApi,
    Refresher,
    Remembered,
    ServiceApi,
    TicketsApi,
)
from boxoffice.web.resources import Station


class WebSettings(ServiceSettings):
    model_config = service_config("web")

    max_quantity: int = Field(
        default=10,
        validation_alias=AliasChoices(
            "max_quantity", "BOXOFFICE_WEB_MAX_QUANTITY", "BOXOFFICE_BOOKING_MAX_TICKETS_PER_EVENT"
        ),
    )
    """The largest quantity the ticket picker offers (booking enforces its own limit)."""


@dataclass(frozen=True, slots=True)
class WebDeps:
    """Everything web's pages may touch. Web keeps no data: it calls the services as the visitor."""

    config: WebSettings
    secret: bytes
    """Signs the CSRF tokens."""
    dev_mode: bool
    verifier: TokenVerifier
    identity: IdentityApi
    catalog: CatalogApi
    booking: BookingApi
    payments: PaymentsApi
    tickets: TicketsApi
    refresher: Refresher
    stations: Remembered[list[Station]]
    service: Callable[[str], ServiceApi]
    """Any service by name, untyped (``Visitor.call``): for a page whose service has no typed client yet."""
