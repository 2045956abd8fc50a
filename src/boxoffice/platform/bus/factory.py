"""Choosing the bus backend from settings."""

from __future__ import annotations

from boxoffice.platform.bus.port import Bus
from boxoffice.platform.settings import Settings


def build_bus(settings: Settings) -> Bus:
    if settings.bus == "kafka":
        from boxoffice.platform.bus.kafka import KafkaBus

        return KafkaBus(settings)
    from boxoffice.platform.bus.sql import SqlBus

    return SqlBus(
        settings.bus_url(),
        partitions=settings.bus_partitions,
        poll_interval=settings.bus_poll_interval_seconds,
        retention_seconds=settings.bus_retention_hours * 3600,
        sqlite_inline=settings.sqlite_inline,
        sqlite_shared=settings.sqlite_shared,
    )
