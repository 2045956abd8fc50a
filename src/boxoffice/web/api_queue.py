"""The waiting room's pages: a buyer's place in line, and the organiser's view of the line.

A line stands in front of a queued sale: an event, or a train run's booking day (same ids, same pages).
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Sale:
    """What the waiting page says about the sale the line is for."""

    id: str
    name: str
    tag: str | None  # an event's category
    where: str
    starts_at: str
    on_sale_at: str | None
    href: str  # where the buyer picks tickets once admitted
    timezone: str = "UTC"  # the venue's or the departure station's: times are shown there


async def _sale(visitor: Visitor, sale_id: str) -> Sale:
    """The event, or else the train run, with this id."""
    try:
        e = await visitor.catalog.event(sale_id)
        return Sale(e.id, e.name, e.category, f"{e.venue}, {e.city}", e.starts_at, e.on_sale_at, f"/events/{e.id}",
                    e.timezone)
    except ApiProblem as exc:
        if exc.status != 404:
            raise
    run = await visitor.catalog.run(sale_id)
    return Sale(run.run_id, f"{run.train_number} {run.name}", None, f"{run.origin} → {run.destination}",
                run.departs_at, run.on_sale_at, f"/trains/runs/{run.run_id}", run.origin_timezone)


@router.get("/queue/{event_id}")
async def queue_page(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    visitor.require_user()
    sale = await _sale(visitor, event_id)
    place = await _place(visitor, event_id)
    return render(request, "queue.html", "queue", sale=sale, place=place)


@router.get("/queue/{event_id}/shop")
async def queue_shop(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    """Admitted: on to the event's or the train's page to pick tickets."""
    sale = await _sale(visitor, page_id(event_id))
    return redirect(sale.href, request)


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
