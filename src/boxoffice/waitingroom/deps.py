"""What the waiting room runs with: its settings (``BOXOFFICE_WAITINGROOM_*``) and its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import Field

from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config
from boxoffice.waitingroom.memory import LineMemory


class WaitingRoomSettings(ServiceSettings):
    model_config = service_config("waitingroom")

    admission_ttl_seconds: int = 600
    """How long an admission lets its holder place holds (10 minutes)."""
    initial_admit_per_minute: float = 600.0
    """Where the adaptive rate starts when the organiser set none."""
    min_admit_per_minute: float = Field(default=30.0, gt=0)
    """The adaptive rate's floor: it never goes below (so never reaches zero)."""
    max_admit_per_minute: float = 12_000.0
    rate_step_per_minute: float = Field(default=60.0, ge=0)
    """Additive increase: what a healthy adjustment adds to the rate (people per minute)."""
    adjust_seconds: float = Field(default=5.0, gt=0)
    """How often the adaptive rate is adjusted (it halves at most once per period)."""
    hold_latency_target_ms: int = Field(default=1000, gt=0)
    """Holds slower than this inside booking (booking.hold-placed ``latency_ms``) are a sign of saturation."""
    hold_grace_seconds: int = Field(default=90, gt=0)
    """An admitted buyer with no hold after this long counts as failing to hold."""
    admission_window: int = Field(default=200, gt=0)
    """At most this many admitted buyers without a hold yet (the concurrency window)."""
    abandon_after_seconds: int = 600
    """A waiting place whose holder has not asked for this long is passed over (tab closed)."""
    tick_seconds: float = 1.0
    status_max_age_seconds: float = Field(default=0.5, ge=0)
    """How old this process's copy of a room may be when it answers a status poll (the database is read at
    most this often per room, however many buyers poll; 0: every poll reads)."""


@dataclass(frozen=True, slots=True)
class WaitingRoomDeps:
    db: Database
    config: WaitingRoomSettings
    secret: bytes  # signs admissions (platform.admission)
    now: Callable[[], datetime]
    memory: LineMemory = field(default_factory=LineMemory)  # this process's copy of its lines (memory.py)
