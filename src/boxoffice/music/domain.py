"""Music rules, free of I/O: artists, tracks, playlists and line-ups, their errors, search terms, cursors.

A playlist is an ordered list of tracks at positions 0..n-1 with no gaps, at most ``MAX_TRACKS`` long, and a
version that every change increments. Changes are computed here on the whole list (``insert_track``,
``remove_track``, ``replace_tracks``) and the store writes the result, so positions are gap-free by
construction rather than by careful shifting in SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from boxoffice.platform import pagination
from boxoffice.platform.problems import NotFound, Problem, Unprocessable

T = TypeVar("T")

MAX_TRACKS = 1000
MAX_LINEUP = 50


# Errors ------------------------------------------------------------------------------------------------------


class ArtistNotFound(NotFound):
    slug, title = "artist-not-found", "Artist not found"


class TrackNotFound(NotFound):
    slug, title = "track-not-found", "Track not found"


class PlaylistNotFound(NotFound):
    """Also what another user gets for a private playlist: its existence is not disclosed."""

    slug, title = "playlist-not-found", "Playlist not found"


class EventUnknown(NotFound):
    slug, title = "event-not-found", "Event not found"


class UnknownTracks(Unprocessable):
    slug, title = "unknown-tracks", "Unknown tracks"


class UnknownArtists(Unprocessable):
    slug, title = "unknown-artists", "Unknown artists"


class PlaylistFull(Unprocessable):
    slug, title = "playlist-full", "Playlist full"


class PositionOutOfRange(Unprocessable):
    slug, title = "position-out-of-range", "Position out of range"


class EmptyLineup(Unprocessable):
    slug, title = "empty-lineup", "Empty line-up"


class VersionMismatch(Problem):
    status, slug, title = 412, "version-mismatch", "Playlist changed"


class VersionRequired(Problem):
    status, slug, title = 428, "version-required", "If-Match required"


# Values ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Artist:
    id: str
    name: str
    genres: tuple[str, ...]
    country: str
    popularity: int


@dataclass(frozen=True, slots=True)
class Track:
    id: str
    title: str
    artist_id: str
    artist_name: str
    album: str
    duration_s: int
    genre: str
    popularity: int


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    position: int
    track: Track


@dataclass(frozen=True, slots=True)
class Playlist:
    id: str
    owner_id: str
    name: str
    description: str
    public: bool
    version: int
    tracks: tuple[PlaylistEntry, ...]
    updated_at: datetime

    def visible_to(self, user_id: str | None) -> bool:
        return self.public or self.owner_id == user_id


@dataclass(frozen=True, slots=True)
class PlaylistHead:
    """A playlist without its tracks (for lists)."""

    id: str
    owner_id: str
    name: str
    description: str
    public: bool
    version: int
    track_count: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KnownEvent:
    """An event music learned from ``catalog.event-published``."""

    id: str
    name: str
    category: str
    venue: str
    city: str
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class Lineup:
    event: KnownEvent
    artists: tuple[Artist, ...]


@dataclass(frozen=True, slots=True)
class ArtistDetail:
    artist: Artist
    tracks: tuple[Track, ...]
    upcoming_events: tuple[KnownEvent, ...]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None


# Commands ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewArtist:
    name: str
    genres: tuple[str, ...]
    country: str
    popularity: int = 50


@dataclass(frozen=True, slots=True)
class NewTrack:
    title: str
    artist_id: str
    album: str
    duration_s: int
    genre: str
    popularity: int = 50


@dataclass(frozen=True, slots=True)
class NewPlaylist:
    name: str
    description: str = ""
    public: bool = False


@dataclass(frozen=True, slots=True)
class PlaylistPatch:
    name: str | None = None
    description: str | None = None
    public: bool | None = None


# Playlist rules ----------------------------------------------------------------------------------------------


def check_version(current: int, expected: int | None, *, required: bool) -> None:
    """Optimistic concurrency: a change made against ``expected`` applies only if nobody changed it since."""
    if expected is None:
        if required:
            raise VersionRequired("Send 'If-Match: <version>' with the playlist's version you last saw.")
        return
    if expected != current:
        raise VersionMismatch(
            f"The playlist is at version {current}, not {expected}: someone changed it. Reload and retry.",
            version=current,
        )


def check_size(count: int, limit: int = MAX_TRACKS) -> None:
    if count > limit:
        raise PlaylistFull(f"A playlist holds at most {limit} tracks; this one would hold {count}.", limit=limit)


def insert_track(track_ids: Sequence[str], track_id: str, position: int | None, limit: int = MAX_TRACKS) -> list[str]:
    """The list with ``track_id`` at ``position`` (default: the end); later tracks move down by one."""
    if position is None:
        position = len(track_ids)
    if not 0 <= position <= len(track_ids):
        raise PositionOutOfRange(f"Position must be between 0 and {len(track_ids)}.")
    result = [*track_ids[:position], track_id, *track_ids[position:]]
    check_size(len(result), limit)
    return result


def remove_track(track_ids: Sequence[str], position: int) -> list[str]:
    """The list without the track at ``position``; later tracks move up by one, so no gap remains."""
    if not 0 <= position < len(track_ids):
        raise PositionOutOfRange(f"There is no track at position {position}.")
    return [*track_ids[:position], *track_ids[position + 1 :]]


def replace_tracks(track_ids: Sequence[str], limit: int = MAX_TRACKS) -> list[str]:
    """A new order (and content) for the whole playlist; a track may appear more than once."""
    check_size(len(track_ids), limit)
    return list(track_ids)


def top_tracks(artists: Sequence[Artist], tracks: Sequence[Track], per_artist: int) -> list[Track]:
    """A line-up's playlist: each artist's most popular tracks, artists in line-up order."""
    by_artist: dict[str, list[Track]] = {}
    for track in tracks:
        by_artist.setdefault(track.artist_id, []).append(track)
    chosen: list[Track] = []
    for artist in artists:
        ranked = sorted(by_artist.get(artist.id, []), key=lambda t: (-t.popularity, t.title, t.id))
        chosen.extend(ranked[:per_artist])
    return chosen


def lineup_playlist_name(event: KnownEvent) -> str:
    return f"{event.name}: the line-up"[:200]


# Search ------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def search_terms(q: str | None) -> tuple[str, ...]:
    """The words of a query (lower case, at most 8): each must match, as a word or the start of one."""
    if not q:
        return ()
    return tuple(dict.fromkeys(w.lower() for w in _WORD.findall(q)))[:8]


def fts5_query(terms: Sequence[str]) -> str:
    """SQLite FTS5: every term as a quoted prefix (quotes make any word a literal, never syntax)."""
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


def tsquery(terms: Sequence[str]) -> str:
    """PostgreSQL ``to_tsquery('simple', ...)``: every term as a prefix; terms are \\w+ so they are literal."""
    return " & ".join(f"{term}:*" for term in terms)


# Pagination: an opaque cursor holding the sort key of the last item of a page ---------------------------------


def encode_cursor(key: str | float, item_id: str) -> str:
    return pagination.encode_cursor(key, item_id)


def decode_cursor(cursor: str, kind: type[str] | type[float]) -> tuple[str | float, str]:
    """A search's cursor holds a relevance (float), a listing's a name (str): the other kind is refused."""
    if kind is float:
        return pagination.decode_cursor(cursor, float)
    return pagination.decode_cursor(cursor, str)


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: 3``, ``"3"`` or ``W/"3"`` → 3; absent → None."""
    if value is None or not value.strip():
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise Unprocessable("If-Match must carry the playlist's version, e.g. 'If-Match: 3'.", slug="invalid-if-match")
    return int(raw)
