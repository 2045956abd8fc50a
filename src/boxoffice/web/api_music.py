"""Music pages: artists and their tracks, playlists, and an event's line-up with "Make a playlist".

``/artists``, ``/artists/{id}``, ``/playlists``, ``/playlists/{id}``, and the line-up fragment that the event
page loads (``/events/{id}/lineup``). Everything goes through the music service's public API as the visitor.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from boxoffice.web.clients import at
from boxoffice.web.handlers import ApiProblem, Visitor, page_id
from boxoffice.web.pages import VisitorDep, form, redirect, render, text, with_query

router = APIRouter(include_in_schema=False)
ARTISTS_PER_PAGE = 24
GENRES = ("pop", "rock", "indie", "folk", "jazz", "classical", "electronic", "hip-hop", "r&b", "bollywood")
# Why "Add to playlist" failed, by problem type: the page is reached by a redirect, which carries only the type
# (a message in the address could be anyone's text).
ADD_FAILED = {
    "playlist-full": "That playlist is full: a playlist holds at most 1,000 songs.",
    "playlist-not-found": "That playlist no longer exists.",
    "unknown-tracks": "That song no longer exists.",
}


def _added(playlists: list[dict[str, Any]], playlist_id: str | None) -> str | None:
    """The name of the visitor's playlist a song was just added to (by id, from the redirect)."""
    return next((str(p["name"]) for p in playlists if p["id"] == playlist_id), None)


def _add_failed(slug: str | None) -> str | None:
    return None if not slug else ADD_FAILED.get(slug, "The song could not be added. Please try again.")


async def _my_playlists(visitor: Visitor) -> list[dict[str, Any]]:
    """The visitor's playlists (for "Add to playlist"); none when logged out or when music cannot answer."""
    if visitor.user is None:
        return []
    try:
        page = await visitor.call("music", "GET", "/api/playlists", params={"limit": 100})
    except ApiProblem:
        return []
    items: list[dict[str, Any]] = page["items"]
    return items


def _local(url: str, default: str) -> str:
    """Only a path of ours to go back to after a form (never another site)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return default
    return url


@router.get("/artists")
async def artists(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    query = q.get("q", "").strip()[:100]
    genre = q.get("genre", "") if q.get("genre") in GENRES else ""
    params = {"q": query, "genre": genre, "cursor": q.get("cursor"), "limit": ARTISTS_PER_PAGE}
    error = None
    empty: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        page, tracks, playlists = await asyncio.gather(
            visitor.call("music", "GET", "/api/artists", params=params, auth=False),
            visitor.call("music", "GET", "/api/tracks", params={"q": query, "genre": genre, "limit": 20}, auth=False)
            if query else asyncio.sleep(0, empty),
            _my_playlists(visitor),
        )
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        page, tracks, playlists, error = empty, empty, [], exc.message
    shown = {"q": query, "genre": genre}
    next_url = with_query("/artists", **shown, cursor=page["next_cursor"]) if page["next_cursor"] else None
    return render(
        request, "artists.html", "artists", artists=page["items"], tracks=tracks["items"], filters=shown,
        genres=GENRES, next_url=next_url, first_url=with_query("/artists", **shown) if q.get("cursor") else None,
        playlists=playlists, error=error or _add_failed(q.get("error")), added=_added(playlists, q.get("added")),
        here=with_query("/artists", **shown, cursor=q.get("cursor")),
    )


@router.get("/artists/{artist_id}")
async def artist_page(request: Request, artist_id: str, visitor: VisitorDep) -> Response:
    artist_id = page_id(artist_id)
    artist, playlists = await asyncio.gather(
        visitor.call("music", "GET", at("/api/artists/{}", artist_id), auth=False), _my_playlists(visitor)
    )
    return render(request, "artist.html", "artist", artist=artist, playlists=playlists,
                  here=f"/artists/{artist_id}", added=_added(playlists, request.query_params.get("added")),
                  error=_add_failed(request.query_params.get("error")))


@router.get("/playlists")
async def playlists_page(request: Request, visitor: VisitorDep) -> Response:
    return await _playlists(request, visitor)


async def _playlists(request: Request, visitor: Visitor, *, error: str | None = None, status: int = 200) -> Response:
    visitor.require_user()
    page = await visitor.call("music", "GET", "/api/playlists", params={"limit": 100})
    return render(request, "playlists.html", "playlists", playlists=page["items"], error=error, status=status,
                  deleted=request.query_params.get("deleted") == "1")


@router.post("/playlists")
async def create_playlist(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    visitor.require_user()
    body = {"name": text(data, "name"), "description": text(data, "description"), "public": bool(data.get("public"))}
    try:
        playlist = await visitor.call("music", "POST", "/api/playlists", json=body)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status == 401:
            raise
        return await _playlists(request, visitor, error=exc.message, status=exc.status)
    return redirect(f"/playlists/{playlist['id']}", request)


@router.post("/playlists/add")
async def add_to_playlist(request: Request, visitor: VisitorDep) -> Response:
    """"Add to playlist" next to a track, on artist and search pages: back to that page afterwards."""
    data = await form(request)
    visitor.require_user()
    playlist_id, back = text(data, "playlist_id"), _local(text(data, "next"), "/artists")
    try:
        playlist = await visitor.call("music", "POST", at("/api/playlists/{}/tracks", playlist_id),
                                      json={"track_id": text(data, "track_id")})
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status == 401:
            raise
        return redirect(_with(back, error=exc.slug), request)
    return redirect(_with(back, added=playlist["id"]), request)


def _with(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in ("added", "error")}
    return with_query(parts.path, **query, **params)


@router.get("/playlists/{playlist_id}")
async def playlist_page(request: Request, playlist_id: str, visitor: VisitorDep) -> Response:
    playlist_id = page_id(playlist_id)
    return await _playlist(request, visitor, playlist_id)


async def _playlist(request: Request, visitor: Visitor, playlist_id: str, *, error: str | None = None,
                    status: int = 200) -> Response:
    playlist = await visitor.call("music", "GET", at("/api/playlists/{}", playlist_id))
    owner = visitor.user is not None and visitor.user.id == playlist["owner_id"]
    query = request.query_params.get("q", "").strip()[:100] if owner else ""
    found: list[dict[str, Any]] = []
    if query:
        found = (await visitor.call("music", "GET", "/api/tracks", params={"q": query, "limit": 10},
                                    auth=False))["items"]
    return render(request, "playlist.html", "playlist", playlist=playlist, owner=owner, query=query, found=found,
                  error=error, status=status,
                  share_url=str(request.base_url).rstrip("/") + playlist["share_url"])


async def _change(request: Request, visitor: Visitor, playlist_id: str, method: str, path: str, *,
                  json: Any = None, if_match: str = "", done: str | None = None) -> Response:
    """One change of a playlist from its page; a problem (someone changed it first, it is full) is shown there."""
    visitor.require_user()
    try:
        # If-Match carries the version the page showed, so a change made on a stale page is refused (412)
        # instead of undoing someone else's.
        music = visitor.deps.service("music").as_visitor(visitor.tokens, visitor.renew)
        await music.call(method, path, json=json, extra_headers={"If-Match": if_match} if if_match else None)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status == 401:
            raise
        message = exc.message
        if exc.status == 412:
            message = "This playlist was changed somewhere else (another tab or device). Here is its latest " \
                      "version: please make your change again."
        return await _playlist(request, visitor, playlist_id, error=message, status=exc.status)
    return redirect(done or f"/playlists/{playlist_id}", request)


@router.post("/playlists/{playlist_id}/edit")
async def edit_playlist(request: Request, playlist_id: str, visitor: VisitorDep) -> Response:
    playlist_id = page_id(playlist_id)
    data = await form(request)
    body = {"name": text(data, "name"), "description": text(data, "description"), "public": bool(data.get("public"))}
    return await _change(request, visitor, playlist_id, "PATCH", at("/api/playlists/{}", playlist_id), json=body,
                         if_match=text(data, "version"))


@router.post("/playlists/{playlist_id}/delete")
async def delete_playlist(request: Request, playlist_id: str, visitor: VisitorDep) -> Response:
    playlist_id = page_id(playlist_id)
    data = await form(request)
    return await _change(request, visitor, playlist_id, "DELETE", at("/api/playlists/{}", playlist_id),
                         if_match=text(data, "version"), done="/playlists?deleted=1")


@router.post("/playlists/{playlist_id}/tracks")
async def add_track(request: Request, playlist_id: str, visitor: VisitorDep) -> Response:
    playlist_id = page_id(playlist_id)
    data = await form(request)
    return await _change(request, visitor, playlist_id, "POST", at("/api/playlists/{}/tracks", playlist_id),
                         json={"track_id": text(data, "track_id")})


@router.post("/playlists/{playlist_id}/tracks/{position}/remove")
async def remove_track(request: Request, playlist_id: str, position: int, visitor: VisitorDep) -> Response:
    playlist_id = page_id(playlist_id)
    data = await form(request)
    path = at("/api/playlists/{}/tracks/{}", playlist_id, str(position))
    return await _change(request, visitor, playlist_id, "DELETE", path, if_match=text(data, "version"))


@router.post("/playlists/{playlist_id}/tracks/{position}/move")
async def move_track(request: Request, playlist_id: str, position: int, visitor: VisitorDep) -> Response:
    """Up or down by one: the order the page showed, with the move, sent against the version it showed."""
    playlist_id = page_id(playlist_id)
    data = await form(request)
    order = [t for t in data.getlist("order") if isinstance(t, str)]
    target = position + (-1 if text(data, "direction") == "up" else 1)
    if 0 <= position < len(order) and 0 <= target < len(order):
        order[position], order[target] = order[target], order[position]
    return await _change(request, visitor, playlist_id, "PUT", at("/api/playlists/{}/tracks", playlist_id),
                         json={"track_ids": order}, if_match=text(data, "version"))


# The event page's line-up ------------------------------------------------------------------------------------


@router.get("/events/{event_id}/lineup")
async def event_lineup(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    """The line-up fragment the event page loads; nothing to show (not a music event, music away) is empty."""
    event_id = page_id(event_id)
    try:
        lineup = await visitor.call("music", "GET", at("/api/lineups/{}", event_id), auth=False)
    except ApiProblem:
        lineup = {"event_id": event_id, "artists": []}
    return render(request, "_lineup.html", "event", lineup=lineup, event_id=event_id)


@router.post("/events/{event_id}/playlist")
async def playlist_from_lineup(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    await form(request)
    visitor.require_user()
    playlist = await visitor.call("music", "POST", at("/api/lineups/{}/playlist", event_id))
    return redirect(f"/playlists/{playlist['id']}?created=1", request)
