"""Tracking's HTTP API (ARCHITECTURE.md section 5, "Tracking"): the public collector and the admin queries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime

from boxoffice.platform.app import provide
from boxoffice.platform.auth import require_role
from boxoffice.platform.jsonutil import dumps
from boxoffice.platform.problem_http import problem_responses
from boxoffice.tracking import handlers
from boxoffice.tracking.collector import client_of, cors_headers
from boxoffice.tracking.deps import TrackingDeps
from boxoffice.tracking.domain import EventFilter, EventType, Interval
from boxoffice.tracking.schemas import (
    CollectOut,
    EventOut,
    EventPageOut,
    PageOut,
    PagesOut,
    StatsOut,
    StatsPageOut,
)

Deps = Annotated[TrackingDeps, Depends(provide(TrackingDeps))]
router = APIRouter(tags=["tracking"])
admin = APIRouter(tags=["tracking"], dependencies=[Depends(require_role("admin"))])


def _client(request: Request, deps: TrackingDeps) -> str:
    return client_of(request.headers.get("x-forwarded-for"), request.client.host if request.client else None, deps)


def _cors(request: Request, deps: TrackingDeps) -> dict[str, str]:
    pairs = cors_headers(request.headers.get("origin"), request.headers.get("host"), deps)
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in pairs}


@router.options("/collect", status_code=204, include_in_schema=False)
async def collect_preflight(request: Request, deps: Deps, response: Response) -> None:
    response.headers.update(_cors(request, deps))
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"


@router.post(
    "/collect",
    status_code=202,
    response_model=CollectOut,
    responses=problem_responses(400, 403, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def collect(request: Request, deps: Deps) -> Response:
    """A batch of events (``application/json``, or ``text/plain`` from sendBeacon); 202 once they are durable.

    In a running service ``collector.CollectRoute`` answers this route in front of the app (the same steps
    without FastAPI's and the middlewares' cost per request); this route documents it and answers without it.
    """
    headers = _cors(request, deps)
    cmd = handlers.CollectCommand(
        body=await request.body(),
        content_type=request.headers.get("content-type", ""),
        client=_client(request, deps),
        user_agent=request.headers.get("user-agent", ""),
    )
    result = await handlers.collect_events(deps, cmd)
    body = {"accepted": result.accepted, "rejected": [{"index": i, "reason": r} for i, r in result.rejected]}
    return Response(dumps(body), status_code=202, media_type="application/json", headers=headers)


@admin.get("/api/tracking/events", responses=problem_responses(400, 401, 403))
async def list_events(
    deps: Deps,
    user_id: str | None = None,
    session_id: str | None = None,
    anonymous_id: str | None = None,
    type: EventType | None = None,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EventPageOut:
    """Events, newest first, by (ts, event_id); ``next_cursor`` fetches the next page."""
    where = EventFilter(user_id, session_id, anonymous_id, type, start, end)
    page = await handlers.list_events(deps, where, cursor=cursor, limit=limit)
    return EventPageOut(items=[EventOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@admin.get("/api/tracking/stats", responses=problem_responses(400, 401, 403))
async def stats(
    deps: Deps,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    interval: Interval = "hour",
    type: EventType | None = None,
) -> StatsPageOut:
    """Events, sessions and users per bucket and type (default: the last 24 hours)."""
    buckets = await handlers.event_stats(deps, start=start, end=end, interval=interval, type_=type)
    return StatsPageOut(interval=interval, items=[StatsOut.of(b) for b in buckets])


@admin.get("/api/tracking/pages", responses=problem_responses(400, 401, 403))
async def pages(
    deps: Deps,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> PagesOut:
    """The most viewed pages (by path), with how many sessions saw each."""
    top = await handlers.top_pages(deps, start=start, end=end, limit=limit)
    return PagesOut(items=[PageOut.of(p) for p in top])


router.include_router(admin)
