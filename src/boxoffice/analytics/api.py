"""Analytics' HTTP API (admins only): sales windows, an event's summary, the live stream of results."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import AwareDatetime
from starlette.responses import StreamingResponse

from boxoffice.analytics import handlers
from boxoffice.analytics.deps import AnalyticsDeps
from boxoffice.analytics.schemas import SalesOut, SummaryOut, TrackedList, TrackedOut
from boxoffice.platform import pagination
from boxoffice.platform.app import provide
from boxoffice.platform.auth import require_role
from boxoffice.platform.jsonutil import dumps
from boxoffice.platform.problem_http import problem_responses

router = APIRouter(prefix="/api/analytics", tags=["analytics"], dependencies=[Depends(require_role("admin"))])
Deps = Annotated[AnalyticsDeps, Depends(provide(AnalyticsDeps))]
EventId = Annotated[str, Query(min_length=1, max_length=64, description="an event id, or a train run id")]
HEARTBEAT_SECONDS = 15.0


def _cursor(value: str | None) -> datetime | None:
    return pagination.decode_cursor(value, datetime, ids="none")[0] if value else None


@router.get("/sales", responses=problem_responses(400, 401, 403, 422))
async def sales(
    deps: Deps,
    event_id: EventId,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1440)] = 500,
) -> SalesOut:
    """The event's published windows overlapping [from, to), oldest first, each at its latest revision."""
    page = await handlers.list_sales(deps, event_id, start=start, end=end, after=_cursor(cursor), limit=limit)
    return SalesOut.of(page)


@router.get("/events", responses=problem_responses(401, 403, 422))
async def tracked(deps: Deps, limit: Annotated[int, Query(ge=1, le=500)] = 200) -> TrackedList:
    """The events and runs analytics knows from the catalog, the best-selling first (the page's picker)."""
    return TrackedList(items=[TrackedOut.of(t) for t in await handlers.list_tracked(deps, limit=limit)])


@router.get("/events/{event_id}/summary", responses=problem_responses(401, 403, 404))
async def summary(deps: Deps, event_id: str) -> SummaryOut:
    return SummaryOut.of(await handlers.event_summary(deps, event_id))


def _resume_from(last_event_id: str | None) -> int | None:
    if last_event_id is None or not last_event_id.strip().isdigit():
        return None
    return int(last_event_id.strip())


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(401, 403, 422)},
)
async def stream(
    request: Request,
    deps: Deps,
    event_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """``analytics-results`` as they are published (``event: window``, ``id`` to resume with
    ``Last-Event-ID``), optionally of one event; a comment line every 15 s keeps proxies from closing it. The
    connection ends after ``stream_max_seconds``; the client resumes from its last id."""
    resumed = _resume_from(last_event_id)
    start = resumed if resumed is not None else await handlers.last_result(deps)

    async def events() -> AsyncIterator[bytes]:
        seq, quiet = start, 0.0
        ends = time.monotonic() + deps.config.stream_max_seconds
        yield b"retry: 2000\n: connected\n\n"
        while time.monotonic() < ends and not await request.is_disconnected():
            found = await handlers.results_after(deps, seq, event_id=event_id)
            for seq, result in found:
                yield b"id: %d\nevent: window\ndata: %s\n\n" % (seq, dumps(result.data()))
            if found:
                quiet = 0.0
                continue
            if not await deps.published.wait(deps.config.stream_poll_seconds):
                quiet += deps.config.stream_poll_seconds
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )
