"""Music's tables and queries; every query returns domain types.

Full-text search has one query shape on two engines, scored so that lower is better (the keyset order):

- SQLite: FTS5 tables ``artist_fts`` and ``track_fts``, kept in step with ``artists`` and ``tracks`` by
  triggers, ranked with ``bm25`` (a name or title match weighs more than a genre or album match).
- PostgreSQL: a generated ``tsvector`` column ``search`` on both tables with a GIN index, ranked with
  ``ts_rank`` over weighted parts.

Neither exists in ``metadata`` (they are dialect-specific): the migration creates them and ``SEARCH_OBJECTS``
tells Alembic's comparison to skip them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select, Subquery

from boxoffice.music.domain import Artist, KnownEvent, PlaylistEntry, PlaylistHead, Track, fts5_query, tsquery
from boxoffice.platform.bus.tables import add_messaging_tables
from boxoffice.platform.db import UtcDateTime

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

metadata = MetaData()

artists = Table(
    "artists",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("genres", String(300), nullable=False),  # "rock, indie": shown and searched; filtered by artist_genres
    Column("country", String(2), nullable=False),
    Column("popularity", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_artists_name_id", "name", "id"),
)

artist_genres = Table(
    "artist_genres",
    metadata,
    Column("artist_id", String(36), ForeignKey("artists.id", ondelete="CASCADE"), primary_key=True),
    Column("genre", String(40), primary_key=True),
    Index("ix_artist_genres_genre", "genre", "artist_id"),
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("artist_id", String(36), ForeignKey("artists.id", ondelete="CASCADE"), nullable=False),
    Column("artist_name", String(200), nullable=False),  # artists are never renamed: searched with the title
    Column("title", String(200), nullable=False),
    Column("album", String(200), nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("genre", String(40), nullable=False),
    Column("popularity", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_tracks_title_id", "title", "id"),
    Index("ix_tracks_artist_popularity", "artist_id", "popularity"),
    Index("ix_tracks_genre_title", "genre", "title"),
)

playlists = Table(
    "playlists",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("public", Boolean, nullable=False),
    # Incremented by every change; a reorder names the version it was made against (If-Match).
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_playlists_owner_created", "owner_id", "created_at", "id"),
)

playlist_tracks = Table(
    "playlist_tracks",
    metadata,
    Column("playlist_id", String(36), ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),  # 0..n-1, no gaps: rewritten whole on every change
    Column("track_id", String(36), ForeignKey("tracks.id"), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(20), nullable=False),
    Column("venue", String(200), nullable=False),
    Column("city", String(100), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    # The demo line-up is given once; after that the line-up is the admins' to change.
    Column("lineup_seeded", Boolean, nullable=False),
    Index("ix_events_starts_at", "starts_at"),
)

lineups = Table(
    "lineups",
    metadata,
    Column("event_id", String(36), ForeignKey("events.event_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("artist_id", String(36), ForeignKey("artists.id"), nullable=False),
    Index("ix_lineups_artist", "artist_id"),
)

outbox, inbox = add_messaging_tables(metadata)

SEARCH_OBJECTS = frozenset({"artist_fts", "track_fts", "search", "ix_artists_search", "ix_tracks_search"})


def include_name(name: str | None, type_: NameFilterType, _parents: NameFilterParentNames) -> bool:
    """Alembic's filter: the search structures (and FTS5's shadow tables) are not in ``metadata``."""
    if name is None:
        return True
    return name not in SEARCH_OBJECTS and not name.startswith(("artist_fts_", "track_fts_"))


# Rows to domain values ---------------------------------------------------------------------------------------


def _artist(row: Row[Any]) -> Artist:
    genres = tuple(g for g in (part.strip() for part in row.genres.split(",")) if g)
    return Artist(row.id, row.name, genres, row.country, row.popularity)


def _track(row: Row[Any]) -> Track:
    return Track(row.id, row.title, row.artist_id, row.artist_name, row.album, row.duration_s, row.genre,
                 row.popularity)


def _insert_ignore(conn: AsyncConnection, table: Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


# Artists and tracks ------------------------------------------------------------------------------------------


async def insert_artists(conn: AsyncConnection, rows: Sequence[Artist], now: datetime) -> None:
    """Adds the artists that are not there yet (by id)."""
    if not rows:
        return
    await conn.execute(
        _insert_ignore(conn, artists),
        [{"id": a.id, "name": a.name, "genres": ", ".join(a.genres), "country": a.country,
          "popularity": a.popularity, "created_at": now} for a in rows],
    )
    genre_rows = [{"artist_id": a.id, "genre": g} for a in rows for g in a.genres]
    if genre_rows:
        await conn.execute(_insert_ignore(conn, artist_genres), genre_rows)


async def insert_tracks(conn: AsyncConnection, rows: Sequence[Track], now: datetime) -> None:
    """Adds the tracks that are not there yet (by id)."""
    if not rows:
        return
    await conn.execute(
        _insert_ignore(conn, tracks),
        [{"id": t.id, "artist_id": t.artist_id, "artist_name": t.artist_name, "title": t.title, "album": t.album,
          "duration_s": t.duration_s, "genre": t.genre, "popularity": t.popularity, "created_at": now}
         for t in rows],
    )


async def count_artists(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(artists))).scalar_one())


async def artists_by_id(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Artist]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await conn.execute(select(artists).where(artists.c.id.in_(wanted)))
    return {row.id: _artist(row) for row in rows}


async def artist_by_name(conn: AsyncConnection, name: str) -> Artist | None:
    row = (await conn.execute(select(artists).where(artists.c.name == name).limit(1))).first()
    return _artist(row) if row else None


async def tracks_by_id(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Track]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await conn.execute(select(tracks).where(tracks.c.id.in_(wanted)))
    return {row.id: _track(row) for row in rows}


async def tracks_of_artists(conn: AsyncConnection, artist_ids: Sequence[str]) -> list[Track]:
    if not artist_ids:
        return []
    stmt = (
        select(tracks)
        .where(tracks.c.artist_id.in_(list(artist_ids)))
        .order_by(tracks.c.artist_id, tracks.c.popularity.desc(), tracks.c.title, tracks.c.id)
    )
    return [_track(row) for row in await conn.execute(stmt)]


def _scores(conn: AsyncConnection, kind: str, terms: Sequence[str]) -> Subquery:
    """(id, score) of the rows matching every term, lower score = better match."""
    if conn.dialect.name == "postgresql":
        table = "artists" if kind == "artist" else "tracks"
        sql = (
            f"SELECT id, (-ts_rank(search, to_tsquery('simple', :match)))::float8 AS score FROM {table} "  # noqa: S608
            "WHERE search @@ to_tsquery('simple', :match)"
        )
        match = tsquery(terms)
    elif kind == "artist":
        sql = ("SELECT artist_id AS id, bm25(artist_fts, 0.0, 10.0, 2.0) AS score FROM artist_fts "
               "WHERE artist_fts MATCH :match")
        match = fts5_query(terms)
    else:
        sql = ("SELECT track_id AS id, bm25(track_fts, 0.0, 10.0, 5.0, 2.0, 1.0) AS score FROM track_fts "
               "WHERE track_fts MATCH :match")
        match = fts5_query(terms)
    return text(sql).bindparams(match=match).columns(id=String, score=Float).subquery(f"{kind}_scores")


def _page(stmt: Select[Any], order: Sequence[Any], after: tuple[Any, str] | None, limit: int) -> Select[Any]:
    if after is not None:
        stmt = stmt.where(tuple_(*order) > tuple_(*after))
    return stmt.order_by(*order).limit(limit)


async def search_artists(
    conn: AsyncConnection, *, terms: Sequence[str], genre: str | None, after: tuple[Any, str] | None, limit: int
) -> list[tuple[Artist, str | float]]:
    """Artists with their sort key: the score when searching (best first), else the name."""
    filters = []
    if genre:
        filters.append(
            artists.c.id.in_(select(artist_genres.c.artist_id).where(artist_genres.c.genre == genre))
        )
    if terms:
        scores = _scores(conn, "artist", terms)
        stmt = select(artists, scores.c.score.label("sort_key")).join(scores, scores.c.id == artists.c.id)
        order = [scores.c.score, artists.c.id]
    else:
        stmt = select(artists, artists.c.name.label("sort_key"))
        order = [artists.c.name, artists.c.id]
    stmt = _page(stmt.where(and_(True, *filters)), order, after, limit)
    return [(_artist(row), row.sort_key) for row in await conn.execute(stmt)]


async def search_tracks(
    conn: AsyncConnection,
    *,
    terms: Sequence[str],
    artist_id: str | None,
    genre: str | None,
    after: tuple[Any, str] | None,
    limit: int,
) -> list[tuple[Track, str | float]]:
    filters = []
    if artist_id:
        filters.append(tracks.c.artist_id == artist_id)
    if genre:
        filters.append(tracks.c.genre == genre)
    if terms:
        scores = _scores(conn, "track", terms)
        stmt = select(tracks, scores.c.score.label("sort_key")).join(scores, scores.c.id == tracks.c.id)
        order = [scores.c.score, tracks.c.id]
    else:
        stmt = select(tracks, tracks.c.title.label("sort_key"))
        order = [tracks.c.title, tracks.c.id]
    stmt = _page(stmt.where(and_(True, *filters)), order, after, limit)
    return [(_track(row), row.sort_key) for row in await conn.execute(stmt)]


# Playlists ---------------------------------------------------------------------------------------------------


def _head(row: Row[Any]) -> PlaylistHead:
    return PlaylistHead(row.id, row.owner_id, row.name, row.description, row.public, row.version,
                        int(row.track_count), row.updated_at)


def _heads() -> Select[Any]:
    count = (
        select(func.count())
        .where(playlist_tracks.c.playlist_id == playlists.c.id)
        .scalar_subquery()
        .label("track_count")
    )
    return select(playlists, count)


async def insert_playlist(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(playlists).values(values))


async def playlist_head(conn: AsyncConnection, playlist_id: str) -> PlaylistHead | None:
    row = (await conn.execute(_heads().where(playlists.c.id == playlist_id))).first()
    return _head(row) if row else None


async def playlists_of(
    conn: AsyncConnection, owner_id: str, *, after: tuple[str, str] | None, limit: int
) -> list[tuple[PlaylistHead, datetime]]:
    stmt = _heads().where(playlists.c.owner_id == owner_id)
    if after is not None:
        stmt = stmt.where(tuple_(playlists.c.created_at, playlists.c.id) > tuple_(datetime.fromisoformat(after[0]),
                                                                                 after[1]))
    stmt = stmt.order_by(playlists.c.created_at, playlists.c.id).limit(limit)
    return [(_head(row), row.created_at) for row in await conn.execute(stmt)]


async def playlist_entries(conn: AsyncConnection, playlist_id: str) -> list[PlaylistEntry]:
    stmt = (
        select(playlist_tracks.c.position, tracks)
        .join(tracks, tracks.c.id == playlist_tracks.c.track_id)
        .where(playlist_tracks.c.playlist_id == playlist_id)
        .order_by(playlist_tracks.c.position)
    )
    return [PlaylistEntry(row.position, _track(row)) for row in await conn.execute(stmt)]


async def playlist_track_ids(conn: AsyncConnection, playlist_id: str) -> list[str]:
    stmt = (
        select(playlist_tracks.c.track_id)
        .where(playlist_tracks.c.playlist_id == playlist_id)
        .order_by(playlist_tracks.c.position)
    )
    return list((await conn.execute(stmt)).scalars())


async def claim_playlist(
    conn: AsyncConnection, playlist_id: str, owner_id: str, now: datetime, **values: Any
) -> int | None:
    """Increment the owner's playlist's version (and set ``values``) as the first write of a change: on
    PostgreSQL the row lock makes concurrent changes of one playlist take turns (SQLite has one writer), so a
    version check made after it cannot be overtaken. The new version, or None: no such playlist of theirs."""
    result = await conn.execute(
        update(playlists)
        .where(playlists.c.id == playlist_id, playlists.c.owner_id == owner_id)
        .values(version=playlists.c.version + 1, updated_at=now, **values)
    )
    if result.rowcount != 1:
        return None
    return int((await conn.execute(select(playlists.c.version).where(playlists.c.id == playlist_id))).scalar_one())


async def write_playlist_tracks(conn: AsyncConnection, playlist_id: str, track_ids: Sequence[str]) -> None:
    """The playlist's tracks become ``track_ids`` at positions 0..n-1."""
    await conn.execute(delete(playlist_tracks).where(playlist_tracks.c.playlist_id == playlist_id))
    if track_ids:
        await conn.execute(
            insert(playlist_tracks),
            [{"playlist_id": playlist_id, "position": i, "track_id": t} for i, t in enumerate(track_ids)],
        )


async def delete_playlist(conn: AsyncConnection, playlist_id: str) -> None:
    await conn.execute(delete(playlist_tracks).where(playlist_tracks.c.playlist_id == playlist_id))
    await conn.execute(delete(playlists).where(playlists.c.id == playlist_id))


# Events and line-ups -----------------------------------------------------------------------------------------


def _event(row: Row[Any]) -> KnownEvent:
    return KnownEvent(row.event_id, row.name, row.category, row.venue, row.city, row.starts_at)


async def upsert_event(conn: AsyncConnection, event: KnownEvent) -> bool:
    """Records (or updates) an event; True when the demo line-up was never given to it."""
    values = {"name": event.name, "category": event.category, "venue": event.venue, "city": event.city,
              "starts_at": event.starts_at}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(events).values(event_id=event.id, lineup_seeded=False, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[events.c.event_id], set_=values))
    seeded = (await conn.execute(select(events.c.lineup_seeded).where(events.c.event_id == event.id))).scalar_one()
    return not seeded


async def mark_lineup_seeded(conn: AsyncConnection, event_id: str) -> None:
    await conn.execute(update(events).where(events.c.event_id == event_id).values(lineup_seeded=True))


async def known_event(conn: AsyncConnection, event_id: str) -> KnownEvent | None:
    row = (await conn.execute(select(events).where(events.c.event_id == event_id))).first()
    return _event(row) if row else None


async def lineup_artist_ids(conn: AsyncConnection, event_id: str) -> list[str]:
    stmt = select(lineups.c.artist_id).where(lineups.c.event_id == event_id).order_by(lineups.c.position)
    return list((await conn.execute(stmt)).scalars())


async def write_lineup(conn: AsyncConnection, event_id: str, artist_ids: Sequence[str]) -> None:
    await conn.execute(delete(lineups).where(lineups.c.event_id == event_id))
    if artist_ids:
        await conn.execute(
            insert(lineups),
            [{"event_id": event_id, "position": i, "artist_id": a} for i, a in enumerate(artist_ids)],
        )
    await mark_lineup_seeded(conn, event_id)


async def upcoming_events_of(conn: AsyncConnection, artist_id: str, now: datetime, limit: int = 20) -> list[KnownEvent]:
    stmt = (
        select(events)
        .join(lineups, lineups.c.event_id == events.c.event_id)
        .where(lineups.c.artist_id == artist_id, events.c.starts_at >= now)
        .order_by(events.c.starts_at, events.c.event_id)
        .distinct()
        .limit(limit)
    )
    return [_event(row) for row in await conn.execute(stmt)]

