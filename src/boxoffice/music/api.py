"""Music's HTTP API (ARCHITECTURE.md section 5, "Music"): parse, call one handler, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from boxoffice.music import domain, handlers
from boxoffice.music.deps import MusicDeps
from boxoffice.music.schemas import (
    ArtistDetailOut,
    ArtistIn,
    ArtistOut,
    ArtistPageOut,
    Genre,
    LineupIn,
    LineupOut,
    PlaylistIn,
    PlaylistOut,
    PlaylistPageOut,
    PlaylistPatchIn,
    PlaylistSummaryOut,
    PlaylistTrackIn,
    ReorderIn,
    TrackIn,
    TrackOut,
    TrackPageOut,
)
from boxoffice.platform.app import provide
from boxoffice.platform.auth import CurrentUser, OptionalUser, require_role
from boxoffice.platform.problem_http import problem_responses

Deps = Annotated[MusicDeps, Depends(provide(MusicDeps))]
ADMIN = [Depends(require_role("admin"))]
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="the playlist's version, e.g. 3")]
Q = Annotated[str | None, Query(max_length=100, description="full-text search, ranked")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=100)]

router = APIRouter(tags=["music"])


def _playlist(response: Response, playlist: domain.Playlist) -> PlaylistOut:
    response.headers["ETag"] = f'"{playlist.version}"'
    return PlaylistOut.of(playlist)


# Artists and tracks ------------------------------------------------------------------------------------------


@router.get("/api/artists", responses=problem_responses(400))
async def list_artists(
    deps: Deps, q: Q = None, genre: Genre | None = None, cursor: Cursor = None, limit: Limit = 20
) -> ArtistPageOut:
    page = await handlers.list_artists(deps, q=q, genre=genre, cursor=cursor, limit=limit)
    return ArtistPageOut(items=[ArtistOut.of(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/api/artists/{artist_id}", responses=problem_responses(404))
async def get_artist(artist_id: IdPath, deps: Deps) -> ArtistDetailOut:
    return ArtistDetailOut.of_detail(await handlers.get_artist(deps, artist_id))


@router.post("/api/artists", status_code=201, dependencies=ADMIN, responses=problem_responses(401, 403, 422))
async def create_artist(body: ArtistIn, deps: Deps) -> ArtistOut:
    return ArtistOut.of(await handlers.create_artist(deps, body.command()))


@router.get("/api/tracks", responses=problem_responses(400))
async def list_tracks(
    deps: Deps,
    q: Q = None,
    artist_id: Annotated[str | None, Query(max_length=64)] = None,
    genre: Genre | None = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> TrackPageOut:
    page = await handlers.list_tracks(deps, q=q, artist_id=artist_id, genre=genre, cursor=cursor, limit=limit)
    return TrackPageOut(items=[TrackOut.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.post("/api/tracks", status_code=201, dependencies=ADMIN, responses=problem_responses(401, 403, 422))
async def create_track(body: TrackIn, deps: Deps) -> TrackOut:
    return TrackOut.of(await handlers.create_track(deps, body.command()))


# Playlists ---------------------------------------------------------------------------------------------------


@router.post("/api/playlists", status_code=201, responses=problem_responses(401, 422))
async def create_playlist(body: PlaylistIn, user: CurrentUser, deps: Deps, response: Response) -> PlaylistOut:
    return _playlist(response, await handlers.create_playlist(deps, body.command(), actor=user.id))


@router.get("/api/playlists", responses=problem_responses(400, 401))
async def list_playlists(user: CurrentUser, deps: Deps, cursor: Cursor = None, limit: Limit = 50) -> PlaylistPageOut:
    page = await handlers.list_playlists(deps, actor=user.id, cursor=cursor, limit=limit)
    return PlaylistPageOut(items=[PlaylistSummaryOut.of(h) for h in page.items], next_cursor=page.next_cursor)


@router.get("/api/playlists/{playlist_id}", responses=problem_responses(404))
async def get_playlist(playlist_id: IdPath, user: OptionalUser, deps: Deps, response: Response) -> PlaylistOut:
    viewer = user.id if user else None
    return _playlist(response, await handlers.get_playlist(deps, playlist_id, viewer=viewer))


@router.patch("/api/playlists/{playlist_id}", responses=problem_responses(401, 404, 412, 422))
async def update_playlist(
    playlist_id: IdPath, body: PlaylistPatchIn, user: CurrentUser, deps: Deps, response: Response,
    if_match: IfMatch = None,
) -> PlaylistOut:
    playlist = await handlers.update_playlist(deps, playlist_id, body.command(), actor=user.id,
                                              expected=domain.parse_if_match(if_match))
    return _playlist(response, playlist)


@router.delete("/api/playlists/{playlist_id}", status_code=204, responses=problem_responses(401, 404, 412))
async def delete_playlist(playlist_id: IdPath, user: CurrentUser, deps: Deps, if_match: IfMatch = None) -> Response:
    await handlers.delete_playlist(deps, playlist_id, actor=user.id, expected=domain.parse_if_match(if_match))
    return Response(status_code=204)


@router.post("/api/playlists/{playlist_id}/tracks", status_code=201,
             responses=problem_responses(401, 404, 412, 422))
async def add_track(
    playlist_id: IdPath, body: PlaylistTrackIn, user: CurrentUser, deps: Deps, response: Response,
    if_match: IfMatch = None,
) -> PlaylistOut:
    playlist = await handlers.add_track(deps, playlist_id, body.track_id, body.position, actor=user.id,
                                        expected=domain.parse_if_match(if_match))
    return _playlist(response, playlist)


@router.delete("/api/playlists/{playlist_id}/tracks/{position}", responses=problem_responses(401, 404, 412, 422))
async def remove_track(
    playlist_id: IdPath, position: Annotated[int, Path(ge=0, le=1_000_000)], user: CurrentUser, deps: Deps,
    response: Response, if_match: IfMatch = None,
) -> PlaylistOut:
    playlist = await handlers.remove_track(deps, playlist_id, position, actor=user.id,
                                           expected=domain.parse_if_match(if_match))
    return _playlist(response, playlist)


@router.put("/api/playlists/{playlist_id}/tracks", responses=problem_responses(401, 404, 412, 422, 428))
async def reorder_tracks(
    playlist_id: IdPath, body: ReorderIn, user: CurrentUser, deps: Deps, response: Response,
    if_match: IfMatch = None,
) -> PlaylistOut:
    playlist = await handlers.reorder_tracks(deps, playlist_id, body.track_ids, actor=user.id,
                                             expected=domain.parse_if_match(if_match))
    return _playlist(response, playlist)


# Line-ups ----------------------------------------------------------------------------------------------------


@router.get("/api/lineups/{event_id}", responses=problem_responses(404))
async def get_lineup(event_id: IdPath, deps: Deps) -> LineupOut:
    return LineupOut.of(await handlers.get_lineup(deps, event_id))


@router.put("/api/lineups/{event_id}", dependencies=ADMIN, responses=problem_responses(401, 403, 404, 422))
async def set_lineup(event_id: IdPath, body: LineupIn, deps: Deps) -> LineupOut:
    return LineupOut.of(await handlers.set_lineup(deps, event_id, body.artist_ids))


@router.post("/api/lineups/{event_id}/playlist", status_code=201, responses=problem_responses(401, 404, 422))
async def playlist_from_lineup(event_id: IdPath, user: CurrentUser, deps: Deps, response: Response) -> PlaylistOut:
    return _playlist(response, await handlers.playlist_from_lineup(deps, event_id, actor=user.id))
