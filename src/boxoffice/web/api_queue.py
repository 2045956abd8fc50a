"""The waiting room's pages: a buyer's place in line, and the organiser's view of the line."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from boxoffice.web.handlers import ApiProblem, Visitor, page_id
from boxoffice.web.pages import VisitorDep, form, redirect, render
from boxoffice.web.resources import QueuePlace

router = APIRouter(include_in_schema=False)


async def _place(visitor: Visitor, event_id: str) -> QueuePlace | None:
    """This visitor's place in the event's line; None when they have not joined."""
    try:
        return await visitor.queue.place(event_id)
    except ApiProblem as exc:
        if exc.status == 404:
            return None
        raise


@router.get("/queue/{event_id}")
async def queue_page(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    visitor.require_user()
    event = await visitor.catalog.event(event_id)
    place = await _place(visitor, event_id)
    return render(request, "queue.html", "queue", event=event, place=place)


@router.get("/queue/{event_id}/status")
async def queue_status(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    """Polled by the waiting page every few seconds: position, people ahead, the estimated wait."""
    event_id = page_id(event_id)
    visitor.require_user()
    place = await _place(visitor, event_id)
    return render(request, "_queue_status.html", "queue", event_id=event_id, place=place)


@router.post("/queue/{event_id}/join")
async def join_queue(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    await form(request)
    visitor.require_user()
    try:
        await visitor.queue.join(event_id)
    except ApiProblem as exc:
        if exc.status != 410:  # sold out: the waiting page says so
            raise
    return redirect(f"/queue/{event_id}", request)


@router.get("/admin/queue/{event_id}")
async def admin_queue(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    visitor.require_admin()
    line = await visitor.queue.line(event_id)
    return render(request, "admin_queue.html", "admin-queue", line=line)


@router.get("/admin/queue/{event_id}/status")
async def admin_queue_status(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    visitor.require_admin()
    line = await visitor.queue.line(event_id)
    return render(request, "_queue_line.html", "admin-queue", line=line)
