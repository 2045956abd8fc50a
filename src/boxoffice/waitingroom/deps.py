"""What the waiting room runs with: its settings (``BOXOFFICE_WAITINGROOM_*``) and its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config


class WaitingRoomSettings(ServiceSettings):
    model_config = service_config("waitingroom")

    admission_ttl_seconds: int = 600
    """How long an admission lets its holder place holds (10 minutes)."""
    initial_admit_per_minute: float = 600.0
    """Where the adaptive rate starts when the organiser set none."""
    min_admit_per_minute: float = 30.0
    max_admit_per_minute: float = 12_000.0
    abandon_after_seconds: int = 600
    """A waiting place whose holder has not asked for this long is passed over (tab closed)."""
    tick_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class WaitingRoomDeps:
    db: Database
    config: WaitingRoomSettings
    secret: bytes  # signs admissions (platform.admission)
    now: Callable[[], datetime]
