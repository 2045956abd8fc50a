"""Buyer pages before checkout: home, events and their seat maps, train search and coach layouts."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from boxoffice.web import domain, handlers
from boxoffice.web.handlers import ApiProblem, Visitor
from boxoffice.web.pages import VisitorDep, form, redirect, render, text, with_query

router = APIRouter(include_in_schema=False)
EVENTS_PER_PAGE = 12
RETRY_HOLD = ("Booking did not answer in time, so nothing was held and nothing was charged. "
              "Please try again in a moment.")


@router.get("/")
async def home(request: Request, visitor: VisitorDep) -> Response:
    events, stations = await asyncio.gather(
        visitor.call("catalog", "GET", "/api/events", params={"limit": 60}, auth=False),
        handlers.list_stations(visitor),
    )
    by_category: dict[str, list[dict[str, Any]]] = {}
    for event in events["items"]:
        by_category.setdefault(event["category"], []).append(event)
    groups = [(c, by_category[c][:4]) for c in domain.CATEGORIES if c in by_category]
    return render(request, "home.html", "home", groups=groups, stations=stations, today=date.today().isoformat())


@router.get("/events")
async def events(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    filters = {
        "category": q.get("category", "") if q.get("category") in domain.CATEGORIES else "",
        "q": q.get("q", "").strip()[:100],
        "starts_after": _day(q.get("from")),
        "starts_before": _day(q.get("to"), end=True),
    }
    params = {**filters, "cursor": q.get("cursor"), "limit": EVENTS_PER_PAGE}
    error: str | None = None
    try:
        page = await visitor.call("catalog", "GET", "/api/events", params=params, auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        page, error = {"items": [], "next_cursor": None}, exc.message
    shown = {"category": filters["category"], "q": filters["q"], "from": q.get("from", ""), "to": q.get("to", "")}
    next_url = with_query("/events", **shown, cursor=page["next_cursor"]) if page["next_cursor"] else None
    return render(
        request, "events.html", "events", events=page["items"], filters=shown, next_url=next_url,
        first_url=with_query("/events", **shown) if q.get("cursor") else None, error=error,
    )


def _day(value: str | None, *, end: bool = False) -> str | None:
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    return f"{day.isoformat()}T{'23:59:59' if end else '00:00:00'}Z"


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    return await _event_page(request, visitor, event_id)


async def _event_page(request: Request, visitor: Visitor, event_id: str, *, error: str | None = None,
                      status: int = 200) -> Response:
    event = await visitor.call("catalog", "GET", f"/api/events/{event_id}", auth=False)
    seatmap = domain.layout_venue(event["sections"], event.get("seats") or []) if event.get("seats") else None
    return render(
        request, "event.html", "event", event=event, seatmap=seatmap, error=error, status=status,
        created=request.query_params.get("created") == "1",
        max_quantity=visitor.svc.config.max_quantity,
    )


@router.get("/events/{event_id}/availability")
async def event_availability(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    """Polled by the event page: seat states and what is left per section."""
    event = await visitor.call("catalog", "GET", f"/api/events/{event_id}", auth=False)
    taken = domain.unavailable_seats(event.get("seats") or [])
    return render(request, "_availability.html", "event", event=event, taken=taken)


@router.post("/events/{event_id}/hold")
async def hold_event(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    data = await form(request)
    visitor.require_user()
    seat_ids = [s for s in data.getlist("seat_id") if isinstance(s, str) and s]
    if seat_ids:
        body: dict[str, Any] = {"event_id": event_id, "seat_ids": seat_ids}
    else:
        quantity = _quantity(text(data, "quantity"))
        if not text(data, "section_id") or quantity is None:
            return await _event_page(request, visitor, event_id, error="Pick your seats or a number of tickets.",
                                     status=422)
        body = {"event_id": event_id, "section_id": text(data, "section_id"), "quantity": quantity}
    try:
        hold = await visitor.call("booking", "POST", "/api/holds", json=body)
    except ApiProblem as exc:
        if exc.status in (401, 403):
            raise
        if exc.status >= 500:
            return await _event_page(request, visitor, event_id, error=RETRY_HOLD, status=503)
        return await _event_page(request, visitor, event_id, error=exc.message, status=exc.status)
    return redirect(f"/checkout/{hold['id']}", request)


def _quantity(value: str) -> int | None:
    try:
        quantity = int(value)
    except ValueError:
        return None
    return quantity if 1 <= quantity <= 100 else None


# Trains ----------------------------------------------------------------------------------------------------


@router.get("/trains")
async def trains(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    stations = await handlers.list_stations(visitor)
    names = {s["code"]: s["name"] for s in stations}
    origin_text, destination_text, day = q.get("origin", ""), q.get("destination", ""), q.get("date", "")
    results: list[dict[str, Any]] = []
    error = None
    origin = domain.resolve_station(origin_text, stations)
    destination = domain.resolve_station(destination_text, stations)
    searched = bool(origin_text or destination_text or day)
    if searched:
        if origin is None or destination is None:
            error = "Pick the origin and destination from the list of stations."
        elif origin == destination:
            error = "The origin and the destination must differ."
        elif _day(day) is None:
            error = "Pick a travel date."
        else:
            try:
                page = await visitor.call("catalog", "GET", "/api/trains/search", auth=False,
                                          params={"origin": origin, "destination": destination, "date": day})
                results = page["items"]
            except ApiProblem as exc:
                if exc.status >= 500:
                    raise
                error = exc.message
    return render(
        request, "trains.html", "trains", stations=stations, names=names, results=results, error=error,
        searched=searched, form={"origin": origin or origin_text, "destination": destination or destination_text,
                                 "date": day or date.today().isoformat()},
    )


async def _run(visitor: Visitor, run_id: str, origin: str, destination: str) -> dict[str, Any]:
    run: dict[str, Any] = await visitor.call("catalog", "GET", f"/api/trains/runs/{run_id}", auth=False,
                                             params={"origin": origin, "destination": destination})
    return run


@router.get("/trains/runs/{run_id}")
async def run_page(request: Request, run_id: str, visitor: VisitorDep) -> Response:
    q = request.query_params
    return await _run_page(request, visitor, run_id, q.get("origin", ""), q.get("destination", ""), q.get("class", ""))


async def _run_page(request: Request, visitor: Visitor, run_id: str, origin: str, destination: str,
                    class_code: str, *, error: str | None = None, status: int = 200) -> Response:
    run, stations = await asyncio.gather(_run(visitor, run_id, origin, destination), handlers.list_stations(visitor))
    names = {s["code"]: s["name"] for s in stations}
    chosen = next((c for c in run["classes"] if c["code"] == class_code), None) or (run["classes"] or [None])[0]
    coaches = [(coach, domain.layout_coach(coach["seats"])) for coach in (chosen or {}).get("coaches", [])]
    segment = {run.get("origin") or origin, run.get("destination") or destination}
    return render(
        request, "run.html", "run", run=run, names=names, chosen=chosen, coaches=coaches, error=error, status=status,
        origin=run.get("origin") or origin, destination=run.get("destination") or destination, segment=segment,
        max_quantity=visitor.svc.config.max_quantity,
    )


@router.get("/trains/runs/{run_id}/availability")
async def run_availability(request: Request, run_id: str, visitor: VisitorDep) -> Response:
    q = request.query_params
    run = await _run(visitor, run_id, q.get("origin", ""), q.get("destination", ""))
    chosen = next((c for c in run["classes"] if c["code"] == q.get("class")), None)
    seats = [seat for coach in (chosen or {}).get("coaches", []) for seat in coach["seats"]]
    return render(request, "_run_availability.html", "run", run=run, chosen=chosen,
                  taken=domain.unavailable_seats(seats))


@router.post("/trains/runs/{run_id}/hold")
async def hold_run(request: Request, run_id: str, visitor: VisitorDep) -> Response:
    data = await form(request)
    visitor.require_user()
    origin, destination, class_code = text(data, "origin"), text(data, "destination"), text(data, "class_code")
    seat_ids = [s for s in data.getlist("seat_id") if isinstance(s, str) and s]
    body: dict[str, Any] = {"run_id": run_id, "class_code": class_code, "origin": origin, "destination": destination}
    if seat_ids:
        body["seat_ids"] = seat_ids
    elif (quantity := _quantity(text(data, "quantity"))) is not None:
        body["quantity"] = quantity
    else:
        return await _run_page(request, visitor, run_id, origin, destination, class_code,
                               error="Pick your seats or a number of passengers.", status=422)
    try:
        hold = await visitor.call("booking", "POST", "/api/holds", json=body)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        return await _run_page(request, visitor, run_id, origin, destination, class_code, error=exc.message,
                               status=exc.status)
    return redirect(f"/checkout/{hold['id']}", request)
