"""Buyer pages before checkout: home, events and their seat maps, train search and coach layouts."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from boxoffice.web import domain, handlers, seatmap
from boxoffice.web.handlers import ApiProblem, Visitor, page_id
from boxoffice.web.pages import VisitorDep, form, redirect, render, text, with_query
from boxoffice.web.resources import EventFilter, EventPage, EventSummary, HoldRequest, Run, TrainOption

router = APIRouter(include_in_schema=False)
EVENTS_PER_PAGE = 12
MAX_SEATS = 100  # more seat ids than any hold may have are not passed on
RETRY_HOLD = ("Booking did not answer in time, so nothing was held and nothing was charged. "
              "Please try again in a moment.")


@router.get("/")
async def home(request: Request, visitor: VisitorDep) -> Response:
    events, stations = await asyncio.gather(
        visitor.catalog.events(EventFilter(limit=60)),
        handlers.list_stations(visitor),
    )
    by_category: dict[str, list[EventSummary]] = {}
    for event in events.items:
        by_category.setdefault(event.category, []).append(event)
    groups = [(c, by_category[c][:4]) for c in domain.CATEGORIES if c in by_category]
    return render(request, "home.html", "home", groups=groups, stations=stations, today=date.today().isoformat())


@router.get("/events")
async def events(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    category = q.get("category", "") if q.get("category") in domain.CATEGORIES else ""
    query = EventFilter(
        category=category or None,
        q=q.get("q", "").strip()[:100] or None,
        starts_after=_day(q.get("from")),
        starts_before=_day(q.get("to"), end=True),
        cursor=q.get("cursor") or None,
        limit=EVENTS_PER_PAGE,
    )
    error: str | None = None
    try:
        page = await visitor.catalog.events(query)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        page, error = EventPage(items=[]), exc.message
    performing: dict[str, str] = {}
    if query.q and not query.cursor and error is None:
        performing, extra = await _events_by_artist(visitor, query, {e.id for e in page.items})
        page = page.model_copy(update={"items": sorted([*page.items, *extra], key=lambda e: (e.starts_at, e.id))})
    shown = {"category": category, "q": query.q or "", "from": q.get("from", ""), "to": q.get("to", "")}
    next_url = with_query("/events", **shown, cursor=page.next_cursor) if page.next_cursor else None
    return render(
        request, "events.html", "events", events=page.items, filters=shown, next_url=next_url,
        first_url=with_query("/events", **shown) if q.get("cursor") else None, error=error, performing=performing,
    )


async def _events_by_artist(visitor: Visitor, query: EventFilter, listed: set[str]
                            ) -> tuple[dict[str, str], list[EventSummary]]:
    """Events where an artist matching the search plays (within the filters), beyond those catalog found."""
    performing = await handlers.events_of_artists(visitor, query.q or "")
    wanted = [event_id for event_id in performing if event_id not in listed][:EVENTS_PER_PAGE]
    found = await asyncio.gather(*(visitor.catalog.event(event_id) for event_id in wanted), return_exceptions=True)
    extra: list[EventSummary] = []
    for event in found:
        if not isinstance(event, EventSummary):
            continue
        starts = domain.parse_time(event.starts_at)
        if query.category and event.category != query.category:
            continue
        if query.starts_after and starts < domain.parse_time(query.starts_after):
            continue
        if query.starts_before and starts > domain.parse_time(query.starts_before):
            continue
        extra.append(EventSummary.model_validate(event.model_dump(include=set(EventSummary.model_fields))))
    return performing, extra


def _day(value: str | None, *, end: bool = False) -> str | None:
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    return f"{day.isoformat()}T{'23:59:59' if end else '00:00:00'}Z"


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    carried = _carried_choice(request, visitor)
    if carried is None or carried[0].event_id != event_id:
        return await _event_page(request, visitor, event_id)
    wanted, token = carried
    if visitor.user is None:  # back without logging in: the choice is still shown
        return await _event_page(request, visitor, event_id, picked=wanted)
    return await _hold_event(request, visitor, event_id, wanted, idempotency_key=_resume_key(visitor, token))


async def _event_page(request: Request, visitor: Visitor, event_id: str, *, error: str | None = None,
                      status: int = 200, picked: HoldRequest | None = None) -> Response:
    event = await visitor.catalog.event(event_id)
    venue = seatmap.layout_venue(event.sections, event.seats) if event.seats else None
    return render(
        request, "event.html", "event", event=event, seatmap=venue, tones=seatmap.section_tones(event.sections),
        error=error, status=status,
        created=request.query_params.get("created") == "1",
        max_quantity=visitor.deps.config.max_quantity, picked=picked or HoldRequest(),
    )


@router.get("/events/{event_id}/availability")
async def event_availability(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    """Polled by the event page: seat states and what is left per section."""
    event = await visitor.catalog.event(page_id(event_id))
    taken = seatmap.unavailable_seats(event.seats)
    return render(request, "_availability.html", "event", event=event, taken=taken)


@router.post("/events/{event_id}/hold")
async def hold_event(request: Request, event_id: str, visitor: VisitorDep) -> Response:
    event_id = page_id(event_id)
    data = await form(request)
    seat_ids = _seat_ids(data)
    if seat_ids:
        wanted = HoldRequest(event_id=event_id, seat_ids=seat_ids)
    else:
        quantity = _quantity(text(data, "quantity"))
        if not domain.is_id(text(data, "section_id")) or quantity is None:
            return await _event_page(request, visitor, event_id, error="Pick your seats or a number of tickets.",
                                     status=422)
        wanted = HoldRequest(event_id=event_id, section_id=text(data, "section_id"), quantity=quantity)
    if visitor.user is None:
        return _log_in_first(request, visitor, f"/events/{event_id}", wanted)
    return await _hold_event(request, visitor, event_id, wanted)


async def _hold_event(request: Request, visitor: Visitor, event_id: str, wanted: HoldRequest, *,
                      idempotency_key: str | None = None) -> Response:
    try:
        hold = await handlers.place_event_hold(visitor, wanted, idempotency_key=idempotency_key)
    except handlers.WaitInLine:
        return redirect(f"/queue/{event_id}", request)
    except ApiProblem as exc:
        if exc.status in (401, 403):
            raise
        if exc.status >= 500:
            return await _event_page(request, visitor, event_id, error=RETRY_HOLD, status=503, picked=wanted)
        return await _event_page(request, visitor, event_id, error=exc.message, status=exc.status, picked=wanted)
    return redirect(f"/checkout/{hold.id}", request)


def _seat_ids(data: FormData) -> list[str]:
    return [s for s in data.getlist("seat_id") if isinstance(s, str) and domain.is_id(s)][:MAX_SEATS]


# The choice of a buyer who is not logged in yet survives logging in or signing up (docs/web.md): the page
# sends them to log in with a ``next`` address back to this page that carries the choice, sealed and bound to
# this browser; back on the page, logged in, the choice is held at once.


def _log_in_first(request: Request, visitor: Visitor, page: str, wanted: HoldRequest) -> Response:
    choice = wanted.model_dump_json(exclude_none=True)
    token = domain.seal_choice(visitor.deps.secret, request.state.csrf_token, choice, now=datetime.now(UTC))
    separator = "&" if "?" in page else "?"
    return redirect(with_query("/account/login", next=f"{page}{separator}{urlencode({'choice': token})}"), request)


def _carried_choice(request: Request, visitor: Visitor) -> tuple[HoldRequest, str] | None:
    """The choice this page's address carries, when it is this browser's, unaltered and recent."""
    token = request.query_params.get("choice")
    sealed = domain.open_choice(visitor.deps.secret, request.state.csrf_token, token, now=datetime.now(UTC))
    if sealed is None or token is None:
        return None
    try:
        return HoldRequest.model_validate_json(sealed), token
    except ValidationError:
        return None


def _resume_key(visitor: Visitor, token: str) -> str:
    """Coming back to the same address (a reload, the back button) finds the same hold, not a second one."""
    return domain.attempt_key("resume-hold", visitor.user.id if visitor.user else "", token)


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
    names = {s.code: s.name for s in stations}
    origin_text, destination_text, day = q.get("origin", ""), q.get("destination", ""), q.get("date", "")
    results: list[TrainOption] = []
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
                results = (await visitor.catalog.search_trains(origin, destination, day)).items
            except ApiProblem as exc:
                if exc.status >= 500:
                    raise
                error = exc.message
    return render(
        request, "trains.html", "trains", stations=stations, names=names, results=results, error=error,
        searched=searched, form={"origin": origin or origin_text, "destination": destination or destination_text,
                                 "date": day or date.today().isoformat()},
    )


@router.get("/trains/runs/{run_id}")
async def run_page(request: Request, run_id: str, visitor: VisitorDep) -> Response:
    run_id, q = page_id(run_id), request.query_params
    origin, destination, class_code = q.get("origin", ""), q.get("destination", ""), q.get("class", "")
    carried = _carried_choice(request, visitor)
    if carried is None or carried[0].run_id != run_id:
        return await _run_page(request, visitor, run_id, origin, destination, class_code)
    wanted, token = carried
    if visitor.user is None:
        return await _run_page(request, visitor, run_id, origin, destination, class_code, picked=wanted)
    return await _hold_run(request, visitor, run_id, wanted, idempotency_key=_resume_key(visitor, token))


async def _run_page(request: Request, visitor: Visitor, run_id: str, origin: str, destination: str,
                    class_code: str, *, error: str | None = None, status: int = 200,
                    picked: HoldRequest | None = None) -> Response:
    run, stations = await asyncio.gather(visitor.catalog.run(run_id, origin, destination),
                                         handlers.list_stations(visitor))
    names = {s.code: s.name for s in stations}
    chosen = next((c for c in run.classes if c.code == class_code), run.classes[0] if run.classes else None)
    coaches = [(coach, seatmap.layout_coach(coach.seats, chosen.code)) for coach in chosen.coaches] if chosen else []
    segment = {run.origin or origin, run.destination or destination}
    notes = {seat.note for _, layout in coaches for seat in layout.seats}
    berths = [(note, name) for note, name in seatmap.BERTH_NAMES.items() if note in notes]
    return render(
        request, "run.html", "run", run=run, names=names, chosen=chosen, coaches=coaches, error=error, status=status,
        origin=run.origin or origin, destination=run.destination or destination, segment=segment,
        max_quantity=visitor.deps.config.max_quantity, picked=picked or HoldRequest(), berths=berths,
    )


@router.get("/trains/runs/{run_id}/availability")
async def run_availability(request: Request, run_id: str, visitor: VisitorDep) -> Response:
    q = request.query_params
    run: Run = await visitor.catalog.run(page_id(run_id), q.get("origin", ""), q.get("destination", ""))
    chosen = next((c for c in run.classes if c.code == q.get("class")), None)
    seats = [seat for coach in (chosen.coaches if chosen else []) for seat in coach.seats]
    return render(request, "_run_availability.html", "run", run=run, chosen=chosen,
                  taken=seatmap.unavailable_seats(seats))


@router.post("/trains/runs/{run_id}/hold")
async def hold_run(request: Request, run_id: str, visitor: VisitorDep) -> Response:
    run_id = page_id(run_id)
    data = await form(request)
    origin, destination = text(data, "origin")[:8], text(data, "destination")[:8]
    class_code = text(data, "class_code")[:10]
    seat_ids = _seat_ids(data)
    journey = HoldRequest(run_id=run_id, class_code=class_code, origin=origin, destination=destination)
    if seat_ids:
        wanted = journey.model_copy(update={"seat_ids": seat_ids})
    elif (quantity := _quantity(text(data, "quantity"))) is not None:
        wanted = journey.model_copy(update={"quantity": quantity})
    else:
        return await _run_page(request, visitor, run_id, origin, destination, class_code,
                               error="Pick your seats or a number of passengers.", status=422)
    if visitor.user is None:
        page = with_query(f"/trains/runs/{run_id}", origin=origin, destination=destination, **{"class": class_code})
        return _log_in_first(request, visitor, page, wanted)
    return await _hold_run(request, visitor, run_id, wanted)


async def _hold_run(request: Request, visitor: Visitor, run_id: str, wanted: HoldRequest, *,
                    idempotency_key: str | None = None) -> Response:
    origin, destination, class_code = wanted.origin or "", wanted.destination or "", wanted.class_code or ""
    try:
        hold = await handlers.place_event_hold(visitor, wanted, idempotency_key=idempotency_key)
    except handlers.WaitInLine:
        return redirect(f"/queue/{run_id}", request)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        return await _run_page(request, visitor, run_id, origin, destination, class_code, error=exc.message,
                               status=exc.status, picked=wanted)
    return redirect(f"/checkout/{hold.id}", request)
