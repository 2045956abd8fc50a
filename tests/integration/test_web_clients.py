"""Web's typed clients against a real ASGI app: safe paths, problems as ApiProblem, a renewed token on 401."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxoffice.platform.clients import ServiceClient
from boxoffice.web.clients import ApiProblem, BookingApi, ServiceApi
from boxoffice.web.domain import Tokens

HOLD = {"id": "h1", "status": "active", "expires_at": "2026-11-28T09:00:00Z", "items": [], "total": 0,
        "currency": "EUR"}


def booking_app(seen: list[tuple[str, str]]) -> Starlette:
    async def hold(request: Request) -> Response:
        seen.append((request.url.path, request.headers.get("authorization", "")))
        if request.headers.get("authorization") != "Bearer fresh":
            return JSONResponse({"type": "/problems/token-expired", "title": "Expired", "status": 401}, status_code=401)
        if request.path_params["hold_id"] != "h1":
            return JSONResponse({"type": "/problems/hold-not-found", "title": "No hold", "status": 404,
                                 "detail": "There is no hold."}, status_code=404)
        return JSONResponse({**HOLD, "extra_field": 1})

    return Starlette(routes=[Route("/api/holds/{hold_id}", hold)])


def booking(seen: list[tuple[str, str]]) -> BookingApi:
    client = ServiceClient("booking", app=booking_app(seen), retries=0)
    return BookingApi("booking", lambda: client)


async def test_an_expired_token_is_renewed_once_and_the_call_sent_again() -> None:
    seen: list[tuple[str, str]] = []
    renewals = []

    async def renew() -> str | None:
        renewals.append(1)
        return "fresh"

    hold = await booking(seen).as_visitor(Tokens("stale", "r"), renew).hold("h1")
    assert hold.id == "h1" and hold.status == "active"
    assert [auth for _, auth in seen] == ["Bearer stale", "Bearer fresh"] and renewals == [1]


async def test_a_session_that_cannot_be_renewed_gets_the_401_as_a_problem() -> None:
    seen: list[tuple[str, str]] = []

    async def renew() -> str | None:
        return None

    with pytest.raises(ApiProblem) as caught:
        await booking(seen).as_visitor(Tokens("stale", "r"), renew).hold("h1")
    assert caught.value.status == 401 and caught.value.slug == "token-expired" and len(seen) == 1


@pytest.mark.parametrize("hold_id", ["\x00", "\x01", "../orders", "h1/../../x", "a?b=c", "%2F", "a#b"])
async def test_ids_are_quoted_whole_into_one_path_segment(hold_id: str) -> None:
    received: list[bytes] = []

    async def anything(request: Request) -> Response:
        received.append(request.scope["raw_path"])
        return JSONResponse({"type": "/problems/not-found", "title": "Not found", "status": 404}, status_code=404)

    client = ServiceClient("booking", app=Starlette(routes=[Route("/{rest:path}", anything)]), retries=0)
    with pytest.raises(ApiProblem) as caught:
        await BookingApi("booking", lambda: client).hold(hold_id)
    assert caught.value.status == 404
    assert received == [b"/api/holds/" + quote(hold_id, safe="").encode()]
    assert b"/" not in received[0].removeprefix(b"/api/holds/")


async def test_an_answer_of_the_wrong_shape_is_a_502_problem_not_a_crash() -> None:
    async def wrong(_: Request) -> Response:
        return JSONResponse({"unexpected": True})

    client = ServiceClient("booking", app=Starlette(routes=[Route("/api/holds/{hold_id}", wrong)]), retries=0)
    with pytest.raises(ApiProblem) as caught:
        await BookingApi("booking", lambda: client).hold("h1")
    assert caught.value.status == 502


async def test_the_untyped_api_still_maps_statuses_to_problems() -> None:
    seen: list[tuple[str, str]] = []
    client = ServiceClient("booking", app=booking_app(seen), retries=0)
    with pytest.raises(ApiProblem) as caught:
        await ServiceApi("booking", lambda: client).call("GET", "/api/holds/h1")
    assert caught.value.status == 401
