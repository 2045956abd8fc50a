"""What catalog runs with: its settings (``BOXOFFICE_CATALOG_*``) and the dependencies of its handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from boxoffice.catalog.availability import BookingAvailability
from boxoffice.catalog.cache import ReadCache
from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config


class CatalogSettings(ServiceSettings):
    model_config = service_config("catalog")


@dataclass(frozen=True, slots=True)
class CatalogDeps:
    """Everything catalog's handlers and routes may touch."""

    db: Database
    config: CatalogSettings
    now: Callable[[], datetime]
    cache: ReadCache
    """Catalog's own data, read often and changed rarely (see ``cache``); never availability."""
    availability: BookingAvailability
    """Booking's answer on what is left (a typed client with its fallback rule)."""
