"""What tracking runs with: its settings (``BOXOFFICE_TRACKING_*``) and the dependencies of its handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from boxoffice.platform.bus.port import Bus
from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config
from boxoffice.tracking.domain import RateWatch, TokenBucket
from boxoffice.tracking.publisher import GroupPublisher


class TrackingSettings(ServiceSettings):
    model_config = service_config("tracking")

    max_batch_events: int = 500
    max_batch_bytes: int = 65_536
    client_events_per_second: float = 200.0
    """The per-client token bucket's refill rate, in events (a browser sends at most 20 per 5 s)."""
    client_burst_events: float = 1_000.0
    trust_forwarded_for: bool = False
    """Key the rate limit by the first X-Forwarded-For address (behind a proxy that sets it) instead of the peer."""
    cors_origins: list[str] = []
    """Origins other than our own whose pages may send events to /collect (e.g. ["https://shop.example"])."""
    retention_days: int = 30
    """Events older than this are dropped (whole partitions on PostgreSQL); the collector refuses older ones."""
    partitions_ahead_days: int = 3
    processor_batch: int = 100
    """Bus records per poll and transaction; a record holds one collector request's events (20 from the tracker),
    so about 2,000 events (in one process, stored in slices: ``processor_hold_ms``)."""
    processor_hold_ms: float = 10.0
    """In one process, the longest the processor holds the event loop (and the collector's answers) before it lets
    waiting requests run; it works in slices of 250 events (``handlers.SLICE_EVENTS``). 0: yield after every slice."""
    bot_events_per_minute: int = 300
    """A session sending more events than this in one minute is flagged as a bot."""


@dataclass(frozen=True, slots=True)
class TrackingDeps:
    db: Database
    config: TrackingSettings
    bus: Bus
    publisher: GroupPublisher
    now: Callable[[], datetime]
    buckets: TokenBucket
    rates: RateWatch
    partitions: set[date] = field(default_factory=set)
    """Days known to have a partition (PostgreSQL), so the processor asks the catalog once per day."""
