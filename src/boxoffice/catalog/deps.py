"""What catalog runs with: its settings (``BOXOFFICE_CATALOG_*``)."""

from __future__ import annotations

from boxoffice.platform.settings import ServiceSettings, service_config


class CatalogSettings(ServiceSettings):
    model_config = service_config("catalog")
