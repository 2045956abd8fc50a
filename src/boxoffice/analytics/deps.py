"""What analytics runs with: its settings (``BOXOFFICE_ANALYTICS_*``) and its dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field

from boxoffice.analytics.domain import Config
from boxoffice.platform.aio import wait_event
from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config


class AnalyticsSettings(ServiceSettings):
    model_config = service_config("analytics")

    window_seconds: int = Field(default=60, ge=1, le=86_400)
    """The tumbling window's length (the contract's windows are one minute; tests shorten it)."""
    max_out_of_order_seconds: float = Field(default=5.0, ge=0)
    """The watermark's bound: how far behind the newest booking an older one may still arrive in time."""
    allowed_lateness_seconds: float = Field(default=60.0, ge=0)
    """How long after its window closed a booking still revises it; later ones become corrections."""
    batch_size: int = Field(default=2000, ge=1)
    """Bookings read and committed per transaction."""
    idle_check_seconds: float = Field(default=0.2, gt=0)
    """How often a quiet stream checks whether the wall clock closed a window."""
    stream_poll_seconds: float = Field(default=0.5, gt=0)
    """How often a ``/stream`` connection looks for results a worker in another process emitted."""
    stream_max_seconds: float = Field(default=300.0, gt=0)
    """A ``/stream`` connection ends after this long; the browser's EventSource connects again after the
    stream's ``retry`` (2 s) with ``Last-Event-ID`` and misses nothing. Connections that end let a rolling
    update drain its old processes and a load balancer spread the streams again."""

    def windowing(self) -> Config:
        return Config(
            window=timedelta(seconds=self.window_seconds),
            max_out_of_order=timedelta(seconds=self.max_out_of_order_seconds),
            allowed_lateness=timedelta(seconds=self.allowed_lateness_seconds),
        )


class Signal:
    """Wakes every waiter once (``fire``): the worker tells the ``/stream`` connections of this process that
    results were published; connections to other processes find them by polling."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        return await wait_event(self._event, timeout)


@dataclass(frozen=True, slots=True)
class AnalyticsDeps:
    db: Database
    config: AnalyticsSettings
    now: Callable[[], datetime]
    """The service's clock (the wall clock of idle windows); tests move it instead of sleeping."""
    published: Signal

    @property
    def windowing(self) -> Config:
        return self.config.windowing()
