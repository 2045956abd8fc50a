"""The operators' live sales page: ``/admin/analytics`` (admins only).

The page shows an event's (or run's) published windows as server-rendered SVG charts. Its script listens to
``/admin/analytics/stream``, which relays analytics' ``GET /api/analytics/stream`` with the visitor's token
(an EventSource cannot send one), and reloads the charts fragment whenever a window is published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from boxoffice.platform.problems import Problem
from boxoffice.web.analytics_charts import sales_charts
from boxoffice.web.api_admin import _require_admin
from boxoffice.web.handlers import ApiProblem, Visitor
from boxoffice.web.pages import VisitorDep, render, with_query

router = APIRouter(include_in_schema=False)


async def _sales(visitor: Visitor, event_id: str) -> dict[str, Any]:
    """What the charts show: the event's windows (all of them, oldest first) and its summary."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await visitor.call("analytics", "GET", "/api/analytics/sales",
                                  params={"event_id": event_id, "limit": 1440, "cursor": cursor})
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or len(items) >= 10_080:  # a week of minutes is as much as a page should draw
            break
    try:
        summary = await visitor.call("analytics", "GET", f"/api/analytics/events/{event_id}/summary")
    except ApiProblem as exc:
        if exc.status != 404:
            raise
        summary = None
    return {"items": items, "summary": summary, "charts": sales_charts(items, summary or {})}


@router.get("/admin/analytics")
async def analytics_page(request: Request, visitor: VisitorDep, event_id: str | None = None) -> Response:
    _require_admin(visitor)
    tracked = (await visitor.call("analytics", "GET", "/api/analytics/events"))["items"]
    selected = next((t for t in tracked if t["event_id"] == event_id), None) if event_id else None
    context: dict[str, Any] = {"tracked": tracked, "selected": selected, "event_id": event_id or ""}
    if event_id:
        context.update(await _sales(visitor, event_id))
        context["stream_url"] = with_query("/admin/analytics/stream", event_id=event_id)
        context["charts_url"] = with_query("/admin/analytics/charts", event_id=event_id)
    return render(request, "admin_analytics.html", "admin-analytics", **context)


@router.get("/admin/analytics/charts")
async def analytics_charts(request: Request, visitor: VisitorDep, event_id: str) -> Response:
    _require_admin(visitor)
    return render(request, "_analytics_charts.html", "admin-analytics", event_id=event_id,
                  **await _sales(visitor, event_id))


@router.get("/admin/analytics/stream")
async def analytics_stream(request: Request, visitor: VisitorDep, event_id: str | None = None) -> Response:
    _require_admin(visitor)
    headers = {"Authorization": f"Bearer {visitor.tokens.access}"} if visitor.tokens else {}
    if last := request.headers.get("last-event-id"):
        headers["Last-Event-ID"] = last
    client = visitor.deps.service("analytics").transport()

    async def relay() -> AsyncIterator[bytes]:
        try:
            async with client.stream("/api/analytics/stream", headers=headers,
                                     params={"event_id": event_id} if event_id else None) as upstream:
                if upstream.status_code != 200:
                    yield b"event: unavailable\ndata: {}\n\n"
                    return
                async for chunk in upstream.aiter_raw():
                    yield chunk
        except Problem:  # analytics unreachable: the browser's EventSource retries by itself
            yield b"event: unavailable\ndata: {}\n\n"

    return StreamingResponse(relay(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
