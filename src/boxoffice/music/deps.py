"""What music runs with: its settings (``BOXOFFICE_MUSIC_*``) and the dependencies its handlers take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field

from boxoffice.music.domain import MAX_TRACKS
from boxoffice.platform.db import Database
from boxoffice.platform.settings import ServiceSettings, service_config


class MusicSettings(ServiceSettings):
    model_config = service_config("music")

    max_playlist_tracks: int = Field(default=MAX_TRACKS, ge=1, le=MAX_TRACKS)
    """At most this many tracks per playlist (never more than the contract's 1,000)."""
    lineup_tracks_per_artist: int = Field(default=3, ge=1, le=20)
    """How many of each artist's most popular tracks a line-up playlist takes."""


@dataclass(frozen=True, slots=True)
class MusicDeps:
    db: Database
    config: MusicSettings
    now: Callable[[], datetime]
    demo: bool
    """Seed the demo artists and tracks, and give the demo concerts and festivals their line-ups."""
