"""What music does: browse and search the catalogue, keep playlists and line-ups, learn catalog's events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.music import demo, domain, store
from boxoffice.music.deps import MusicDeps
from boxoffice.music.domain import (
    Artist,
    ArtistDetail,
    KnownEvent,
    Lineup,
    NewArtist,
    NewPlaylist,
    NewTrack,
    Page,
    Playlist,
    PlaylistHead,
    PlaylistPatch,
    Track,
)
from boxoffice.platform import pagination
from boxoffice.platform.bus.envelope import Envelope, uuid7
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.db import UnitOfWork

T = TypeVar("T")

CATALOG_GROUP = "music.catalog"
PLAYLISTS_TOPIC = "music.playlists"


# Catalogue ---------------------------------------------------------------------------------------------------


async def seed_demo(deps: MusicDeps) -> dict[str, int]:
    """The demo artists and tracks that are missing (same ids in every process: inserting twice is a no-op)."""
    artists = demo.demo_artists()
    tracks = demo.demo_tracks(artists)

    async def work(uow: UnitOfWork) -> None:
        await store.insert_artists(uow.conn, artists, deps.now())
        await store.insert_tracks(uow.conn, tracks, deps.now())

    await deps.db.transact(work)
    return {"artists": len(artists), "tracks": len(tracks)}


async def list_artists(
    deps: MusicDeps, *, q: str | None, genre: str | None, cursor: str | None, limit: int
) -> Page[Artist]:
    """Artists by name, or by relevance when searching (``q``)."""
    terms = domain.search_terms(q)
    after = domain.decode_cursor(cursor, float if terms else str) if cursor else None
    async with deps.db.read() as conn:
        rows = await store.search_artists(conn, terms=terms, genre=genre, after=after, limit=limit + 1)
    return _page(rows, limit, key=lambda a: a.id)


async def list_tracks(
    deps: MusicDeps, *, q: str | None, artist_id: str | None, genre: str | None, cursor: str | None, limit: int
) -> Page[Track]:
    terms = domain.search_terms(q)
    after = domain.decode_cursor(cursor, float if terms else str) if cursor else None
    async with deps.db.read() as conn:
        rows = await store.search_tracks(conn, terms=terms, artist_id=artist_id, genre=genre, after=after,
                                         limit=limit + 1)
    return _page(rows, limit, key=lambda t: t.id)


def _page(rows: Sequence[tuple[T, Any]], limit: int, *, key: Callable[[T], str]) -> Page[T]:
    items = tuple(item for item, _ in rows[:limit])
    if len(rows) <= limit:
        return Page(items, None)
    last, sort_key = rows[limit - 1]
    return Page(items, domain.encode_cursor(sort_key, key(last)))


async def get_artist(deps: MusicDeps, artist_id: str) -> ArtistDetail:
    async with deps.db.read() as conn:
        artist = (await store.artists_by_id(conn, [artist_id])).get(artist_id)
        if artist is None:
            raise domain.ArtistNotFound(f"There is no artist {artist_id}.")
        tracks = await store.tracks_of_artists(conn, [artist_id])
        upcoming = await store.upcoming_events_of(conn, artist_id, deps.now())
    return ArtistDetail(artist, tuple(tracks), tuple(upcoming))


async def create_artist(deps: MusicDeps, cmd: NewArtist) -> Artist:
    artist = Artist(uuid7(), cmd.name, cmd.genres, cmd.country, cmd.popularity)

    async def work(uow: UnitOfWork) -> None:
        await store.insert_artists(uow.conn, [artist], deps.now())

    await deps.db.transact(work)
    return artist


async def create_track(deps: MusicDeps, cmd: NewTrack) -> Track:
    async def work(uow: UnitOfWork) -> Track:
        artist = (await store.artists_by_id(uow.conn, [cmd.artist_id])).get(cmd.artist_id)
        if artist is None:
            raise domain.UnknownArtists(f"There is no artist {cmd.artist_id}.")
        track = Track(uuid7(), cmd.title, artist.id, artist.name, cmd.album, cmd.duration_s, cmd.genre,
                      cmd.popularity)
        await store.insert_tracks(uow.conn, [track], deps.now())
        return track

    return await deps.db.transact(work)


# Playlists ---------------------------------------------------------------------------------------------------


async def _load(conn: AsyncConnection, playlist_id: str) -> Playlist | None:
    head = await store.playlist_head(conn, playlist_id)
    if head is None:
        return None
    entries = await store.playlist_entries(conn, playlist_id)
    return Playlist(head.id, head.owner_id, head.name, head.description, head.public, head.version,
                    tuple(entries), head.updated_at)


def _announce(uow: UnitOfWork, playlist: Playlist | None, change: str, *, playlist_id: str, owner_id: str) -> None:
    data: dict[str, Any] = {"playlist_id": playlist_id, "owner_id": owner_id, "change": change}
    if playlist is not None:
        data.update(version=playlist.version, public=playlist.public, name=playlist.name,
                    track_count=len(playlist.tracks))
    uow.publish(PLAYLISTS_TOPIC, "music.playlist-changed", key=playlist_id, data=data)


async def _insert_playlist(uow: UnitOfWork, deps: MusicDeps, cmd: NewPlaylist, owner_id: str,
                           track_ids: Sequence[str] = ()) -> Playlist:
    now = deps.now()
    playlist_id = uuid7()
    await store.insert_playlist(uow.conn, {
        "id": playlist_id, "owner_id": owner_id, "name": cmd.name, "description": cmd.description,
        "public": cmd.public, "version": 1, "created_at": now, "updated_at": now,
    })
    await store.write_playlist_tracks(uow.conn, playlist_id, domain.replace_tracks(
        track_ids, deps.config.max_playlist_tracks))
    playlist = await _load(uow.conn, playlist_id)
    assert playlist is not None
    _announce(uow, playlist, "created", playlist_id=playlist_id, owner_id=owner_id)
    return playlist


async def create_playlist(deps: MusicDeps, cmd: NewPlaylist, *, actor: str) -> Playlist:
    async def work(uow: UnitOfWork) -> Playlist:
        return await _insert_playlist(uow, deps, cmd, actor)

    return await deps.db.transact(work)


async def list_playlists(deps: MusicDeps, *, actor: str, cursor: str | None, limit: int) -> Page[PlaylistHead]:
    after = pagination.decode_cursor(cursor, datetime) if cursor else None
    async with deps.db.read() as conn:
        rows = await store.playlists_of(conn, actor, after=(after[0].isoformat(), after[1]) if after else None,
                                        limit=limit + 1)
    return _page([(head, created.isoformat()) for head, created in rows], limit, key=lambda h: h.id)


async def get_playlist(deps: MusicDeps, playlist_id: str, *, viewer: str | None) -> Playlist:
    """The owner's playlist, or anyone's public one; a private playlist is not found for anyone else."""
    async with deps.db.read() as conn:
        playlist = await _load(conn, playlist_id)
    if playlist is None or not playlist.visible_to(viewer):
        raise domain.PlaylistNotFound(f"There is no playlist {playlist_id} of yours, and none shared.")
    return playlist


async def _change(
    deps: MusicDeps,
    playlist_id: str,
    *,
    actor: str,
    expected: int | None,
    required: bool = False,
    values: dict[str, Any] | None = None,
    edit: Callable[[list[str]], list[str]] | None = None,
    change: str,
) -> Playlist:
    """One change of the owner's playlist: version claimed first, then checked, then the edit, then the event."""

    async def work(uow: UnitOfWork) -> Playlist:
        version = await store.claim_playlist(uow.conn, playlist_id, actor, deps.now(), **(values or {}))
        if version is None:
            raise domain.PlaylistNotFound(f"There is no playlist {playlist_id} of yours.")
        domain.check_version(version - 1, expected, required=required)
        if edit is not None:
            track_ids = edit(await store.playlist_track_ids(uow.conn, playlist_id))
            await _require_tracks(uow.conn, track_ids)
            await store.write_playlist_tracks(uow.conn, playlist_id, track_ids)
        playlist = await _load(uow.conn, playlist_id)
        assert playlist is not None
        _announce(uow, playlist, change, playlist_id=playlist_id, owner_id=actor)
        return playlist

    return await deps.db.transact(work)


async def _require_tracks(conn: AsyncConnection, track_ids: Sequence[str]) -> None:
    found = await store.tracks_by_id(conn, track_ids)
    missing = sorted(set(track_ids) - set(found))
    if missing:
        raise domain.UnknownTracks(f"No such track: {', '.join(missing[:5])}.", track_ids=missing[:20])


async def update_playlist(
    deps: MusicDeps, playlist_id: str, patch: PlaylistPatch, *, actor: str, expected: int | None
) -> Playlist:
    values = {k: v for k, v in (("name", patch.name), ("description", patch.description), ("public", patch.public))
              if v is not None}
    return await _change(deps, playlist_id, actor=actor, expected=expected, values=values, change="updated")


async def delete_playlist(deps: MusicDeps, playlist_id: str, *, actor: str, expected: int | None) -> None:
    async def work(uow: UnitOfWork) -> None:
        version = await store.claim_playlist(uow.conn, playlist_id, actor, deps.now())
        if version is None:
            raise domain.PlaylistNotFound(f"There is no playlist {playlist_id} of yours.")
        domain.check_version(version - 1, expected, required=False)
        await store.delete_playlist(uow.conn, playlist_id)
        _announce(uow, None, "deleted", playlist_id=playlist_id, owner_id=actor)

    await deps.db.transact(work)


async def add_track(
    deps: MusicDeps, playlist_id: str, track_id: str, position: int | None, *, actor: str, expected: int | None
) -> Playlist:
    limit = deps.config.max_playlist_tracks
    return await _change(deps, playlist_id, actor=actor, expected=expected, change="track-added",
                         edit=lambda ids: domain.insert_track(ids, track_id, position, limit))


async def remove_track(
    deps: MusicDeps, playlist_id: str, position: int, *, actor: str, expected: int | None
) -> Playlist:
    return await _change(deps, playlist_id, actor=actor, expected=expected, change="track-removed",
                         edit=lambda ids: domain.remove_track(ids, position))


async def reorder_tracks(
    deps: MusicDeps, playlist_id: str, track_ids: Sequence[str], *, actor: str, expected: int | None
) -> Playlist:
    """The playlist's tracks become ``track_ids``, in that order; only against the version last seen."""
    limit = deps.config.max_playlist_tracks
    domain.check_size(len(track_ids), limit)
    return await _change(deps, playlist_id, actor=actor, expected=expected, required=True, change="reordered",
                         edit=lambda _: domain.replace_tracks(track_ids, limit))


# Line-ups ----------------------------------------------------------------------------------------------------


async def _lineup(conn: AsyncConnection, event_id: str) -> Lineup:
    event = await store.known_event(conn, event_id)
    if event is None:
        raise domain.EventUnknown(f"No event {event_id} was ever published by the catalog.")
    ids = await store.lineup_artist_ids(conn, event_id)
    found = await store.artists_by_id(conn, ids)
    return Lineup(event, tuple(found[i] for i in ids if i in found))


async def get_lineup(deps: MusicDeps, event_id: str) -> Lineup:
    async with deps.db.read() as conn:
        return await _lineup(conn, event_id)


async def set_lineup(deps: MusicDeps, event_id: str, artist_ids: Sequence[str]) -> Lineup:
    unique = list(dict.fromkeys(artist_ids))

    async def work(uow: UnitOfWork) -> Lineup:
        if await store.known_event(uow.conn, event_id) is None:
            raise domain.EventUnknown(f"No event {event_id} was ever published by the catalog.")
        found = await store.artists_by_id(uow.conn, unique)
        missing = [a for a in unique if a not in found]
        if missing:
            raise domain.UnknownArtists(f"No such artist: {', '.join(missing[:5])}.", artist_ids=missing[:20])
        await store.write_lineup(uow.conn, event_id, unique)
        return await _lineup(uow.conn, event_id)

    return await deps.db.transact(work)


async def playlist_from_lineup(deps: MusicDeps, event_id: str, *, actor: str) -> Playlist:
    """A new private playlist of the actor's: each line-up artist's most popular tracks, in line-up order."""

    async def work(uow: UnitOfWork) -> Playlist:
        lineup = await _lineup(uow.conn, event_id)
        if not lineup.artists:
            raise domain.EmptyLineup("This event has no line-up yet, so there is nothing to make a playlist of.")
        tracks = await store.tracks_of_artists(uow.conn, [a.id for a in lineup.artists])
        chosen = domain.top_tracks(lineup.artists, tracks, deps.config.lineup_tracks_per_artist)
        names = ", ".join(a.name for a in lineup.artists)
        cmd = NewPlaylist(domain.lineup_playlist_name(lineup.event), f"Top tracks of {names}."[:2000], False)
        return await _insert_playlist(uow, deps, cmd, actor, [t.id for t in chosen])

    return await deps.db.transact(work)


# Events from the catalog -------------------------------------------------------------------------------------


def _event(data: dict[str, Any]) -> KnownEvent:
    starts_at = datetime.fromisoformat(str(data["starts_at"]).replace("Z", "+00:00"))
    return KnownEvent(str(data["event_id"]), str(data["name"])[:200], str(data.get("category", ""))[:20],
                      str(data.get("venue", ""))[:200], str(data.get("city", ""))[:100], starts_at)


async def apply_catalog_event(deps: MusicDeps, envelope: Envelope) -> None:
    """Learn (or update) a published event, once per delivery (inbox); a demo event gets its line-up once."""
    if envelope.type != "catalog.event-published":
        return
    event = _event(envelope.data)

    async def work(uow: UnitOfWork) -> None:
        if not await claim_inbox(uow.conn, CATALOG_GROUP, envelope.id):
            return
        needs_lineup = await store.upsert_event(uow.conn, event)
        if needs_lineup and deps.demo:
            present = await store.artists_by_id(uow.conn, [a.id for a in demo.demo_artists()])
            chosen = demo.demo_lineup(event, list(present.values()))
            if chosen:
                await store.write_lineup(uow.conn, event.id, chosen)

    await deps.db.transact(work)
