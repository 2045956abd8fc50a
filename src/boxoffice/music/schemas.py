"""Music's request and response models (ARCHITECTURE.md section 5, "Music")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from boxoffice.music.domain import (
    MAX_LINEUP,
    MAX_TRACKS,
    Artist,
    ArtistDetail,
    KnownEvent,
    Lineup,
    NewArtist,
    NewPlaylist,
    NewTrack,
    Playlist,
    PlaylistHead,
    PlaylistPatch,
    Track,
)
from boxoffice.platform.requests import RequestBody

Id = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Genre = Annotated[str, Field(pattern=r"^[a-z][a-z&-]{1,39}$", description="lower case, e.g. jazz, hip-hop, r&b")]


class In(RequestBody):
    model_config = ConfigDict(str_strip_whitespace=True)


class ArtistIn(In):
    name: Name
    genres: list[Genre] = Field(min_length=1, max_length=5)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    popularity: int = Field(default=50, strict=True, ge=0, le=100)

    def command(self) -> NewArtist:
        return NewArtist(self.name, tuple(dict.fromkeys(self.genres)), self.country, self.popularity)


class TrackIn(In):
    title: Name
    artist_id: Id
    album: Annotated[str, Field(max_length=200)] = ""
    duration_s: int = Field(strict=True, ge=1, le=24 * 3600)
    genre: Genre
    popularity: int = Field(default=50, strict=True, ge=0, le=100)

    def command(self) -> NewTrack:
        return NewTrack(self.title, self.artist_id, self.album, self.duration_s, self.genre, self.popularity)


Description = Annotated[str, Field(max_length=2000)]


class PlaylistIn(In):
    name: Name
    description: Description = ""
    public: bool = False

    def command(self) -> NewPlaylist:
        return NewPlaylist(self.name, self.description, self.public)


class PlaylistPatchIn(In):
    name: Name | None = None
    description: Description | None = None
    public: bool | None = None

    def command(self) -> PlaylistPatch:
        return PlaylistPatch(self.name, self.description, self.public)


class PlaylistTrackIn(In):
    track_id: Id
    position: int | None = Field(default=None, strict=True, ge=0, description="default: at the end")


class ReorderIn(In):
    track_ids: list[Id] = Field(max_length=MAX_TRACKS * 2, description=f"the new order; at most {MAX_TRACKS}")


class LineupIn(In):
    artist_ids: list[Id] = Field(max_length=MAX_LINEUP, description="headliner first")


class ArtistOut(BaseModel):
    id: str
    name: str
    genres: list[str]
    country: str

    @classmethod
    def of(cls, artist: Artist) -> ArtistOut:
        return cls(id=artist.id, name=artist.name, genres=list(artist.genres), country=artist.country)


class TrackOut(BaseModel):
    id: str
    title: str
    artist_id: str
    artist_name: str
    album: str
    duration_s: int
    genre: str

    @classmethod
    def of(cls, track: Track) -> TrackOut:
        return cls(id=track.id, title=track.title, artist_id=track.artist_id, artist_name=track.artist_name,
                   album=track.album, duration_s=track.duration_s, genre=track.genre)


class UpcomingEventOut(BaseModel):
    event_id: str
    name: str
    starts_at: datetime
    venue: str
    city: str
    tickets_url: str

    @classmethod
    def of(cls, event: KnownEvent) -> UpcomingEventOut:
        return cls(event_id=event.id, name=event.name, starts_at=event.starts_at, venue=event.venue,
                   city=event.city, tickets_url=f"/events/{event.id}")


class ArtistDetailOut(ArtistOut):
    tracks: list[TrackOut]
    upcoming_events: list[UpcomingEventOut]

    @classmethod
    def of_detail(cls, detail: ArtistDetail) -> ArtistDetailOut:
        a = detail.artist
        return cls(id=a.id, name=a.name, genres=list(a.genres), country=a.country,
                   tracks=[TrackOut.of(t) for t in detail.tracks],
                   upcoming_events=[UpcomingEventOut.of(e) for e in detail.upcoming_events])


class ArtistPageOut(BaseModel):
    items: list[ArtistOut]
    next_cursor: str | None


class TrackPageOut(BaseModel):
    items: list[TrackOut]
    next_cursor: str | None


class PlaylistEntryOut(BaseModel):
    position: int
    track: TrackOut


def share_url(playlist_id: str) -> str:
    return f"/playlists/{playlist_id}"


class PlaylistOut(BaseModel):
    id: str
    name: str
    description: str
    owner_id: str
    public: bool
    version: int
    tracks: list[PlaylistEntryOut]
    share_url: str
    updated_at: datetime

    @classmethod
    def of(cls, p: Playlist) -> PlaylistOut:
        return cls(id=p.id, name=p.name, description=p.description, owner_id=p.owner_id, public=p.public,
                   version=p.version, share_url=share_url(p.id), updated_at=p.updated_at,
                   tracks=[PlaylistEntryOut(position=e.position, track=TrackOut.of(e.track)) for e in p.tracks])


class PlaylistSummaryOut(BaseModel):
    id: str
    name: str
    description: str
    owner_id: str
    public: bool
    version: int
    track_count: int
    share_url: str
    updated_at: datetime

    @classmethod
    def of(cls, h: PlaylistHead) -> PlaylistSummaryOut:
        return cls(id=h.id, name=h.name, description=h.description, owner_id=h.owner_id, public=h.public,
                   version=h.version, track_count=h.track_count, share_url=share_url(h.id), updated_at=h.updated_at)


class PlaylistPageOut(BaseModel):
    items: list[PlaylistSummaryOut]
    next_cursor: str | None


class LineupEventOut(BaseModel):
    name: str
    category: str
    starts_at: datetime


class LineupOut(BaseModel):
    event_id: str
    event: LineupEventOut
    artists: list[ArtistOut]

    @classmethod
    def of(cls, lineup: Lineup) -> LineupOut:
        e = lineup.event
        return cls(event_id=e.id, event=LineupEventOut(name=e.name, category=e.category, starts_at=e.starts_at),
                   artists=[ArtistOut.of(a) for a in lineup.artists])
