"""Operator pages (admin role): create an event, check tickets in at the gate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from boxoffice.web import domain
from boxoffice.web.handlers import ApiProblem, Visitor
from boxoffice.web.pages import VisitorDep, form, redirect, render, text
from boxoffice.web.resources import CheckInRequest, EventFilter, EventRequest, RowRequest, SectionRequest

router = APIRouter(include_in_schema=False)
SECTION_SLOTS = 4


def _require_admin(visitor: Visitor) -> None:
    visitor.require_admin()


@router.get("/admin/events/new")
async def new_event_form(request: Request, visitor: VisitorDep) -> Response:
    _require_admin(visitor)
    starts = (datetime.now(UTC) + timedelta(days=14)).replace(hour=19, minute=30, second=0, microsecond=0)
    values = {"seating": "general", "currency": "EUR", "category": "concert"}
    values["starts_at"] = starts.strftime("%Y-%m-%dT%H:%M")
    return _form_page(request, values)


def _form_page(request: Request, values: dict[str, str], *, error: str | None = None, status: int = 200) -> Response:
    return render(request, "admin_event_new.html", "admin-event-new", values=values, error=error, status=status,
                  slots=range(SECTION_SLOTS), currencies=domain.CURRENCIES)


@router.post("/admin/events/new")
async def create_event(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    _require_admin(visitor)
    values = {key: value for key, value in data.items() if isinstance(value, str)}
    body, error = event_body(data)
    if body is None:
        return _form_page(request, values, error=error, status=422)
    try:
        event = await visitor.catalog.create_event(body)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        return _form_page(request, values, error=exc.message, status=exc.status)
    return redirect(f"/events/{event.id}?created=1", request)


def event_body(data: FormData) -> tuple[EventRequest | None, str]:
    """The catalog's event from the operator's form, or the first thing to fix."""
    seating = text(data, "seating")
    try:
        starts_at = datetime.fromisoformat(text(data, "starts_at")).replace(tzinfo=UTC)
    except ValueError:
        return None, "Give the date and time the event starts."
    for field in ("name", "venue", "city"):
        if not text(data, field):
            return None, f"Give the event's {field}."
    sections: list[SectionRequest] = []
    for slot in range(SECTION_SLOTS):
        name = text(data, f"section-{slot}-name")
        if not name:
            continue
        price = domain.parse_money(text(data, f"section-{slot}-price"))
        if price is None:
            return None, f"Give a price for {name}, like 45.00."
        if seating == "reserved":
            rows = domain.parse_row_labels(text(data, f"section-{slot}-rows"))
            seats = _int(text(data, f"section-{slot}-seats"))
            if not rows or seats is None or seats < 1:
                return None, f"Give {name} its rows (like A-F) and the seats in each row."
            sections.append(
                SectionRequest(name=name, price=price, rows=[RowRequest(label=row, seats=seats) for row in rows])
            )
        else:
            capacity = _int(text(data, f"section-{slot}-capacity"))
            if capacity is None or capacity < 1:
                return None, f"Give {name} a capacity of at least 1."
            sections.append(SectionRequest(name=name, price=price, capacity=capacity))
    if not sections:
        return None, "Add at least one section with a name."
    doors_at = None
    if text(data, "doors_at"):
        try:
            doors_at = datetime.fromisoformat(text(data, "doors_at")).replace(tzinfo=UTC)
        except ValueError:
            return None, "Give the time the doors open, or leave it empty."
    event = EventRequest(
        name=text(data, "name"),
        category=text(data, "category"),
        venue=text(data, "venue"),
        city=text(data, "city"),
        currency=text(data, "currency"),
        starts_at=starts_at.isoformat().replace("+00:00", "Z"),
        sections=sections,
        description=text(data, "description") or None,
        image_url=text(data, "image_url") or None,
        doors_at=doors_at.isoformat().replace("+00:00", "Z") if doors_at else None,
        venue_address=text(data, "venue_address") or None,
    )
    return event, ""


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


@router.get("/admin/checkin")
async def checkin_form(request: Request, visitor: VisitorDep) -> Response:
    """The gate: staff pick the event or train run (and name the gate) first; every scan is then for it."""
    _require_admin(visitor)
    event_id, gate = request.query_params.get("event_id", ""), request.query_params.get("gate", "")
    if not event_id:
        return await _pick_event(request, visitor)
    target = await _gate_target(visitor, event_id)
    if target is None:
        return await _pick_event(request, visitor, error="That event or train does not exist; pick one from the list.")
    return _gate_page(request, target, domain.gate_name(gate), result=None)


async def _gate_target(visitor: Visitor, subject_id: str) -> domain.GateTarget | None:
    """The event, else the train run, of this id (both are catalog's ids); None when neither exists."""
    try:
        event = await visitor.catalog.event(subject_id)
    except ApiProblem as exc:
        if exc.status != 404 and exc.status != 422:
            raise
    else:
        return domain.GateTarget(event.id, "event", event.name, event.starts_at, event.timezone,
                                 f"{event.venue}, {event.city}")
    try:
        run = await visitor.catalog.run(subject_id)
    except ApiProblem as exc:
        if exc.status != 404 and exc.status != 422:
            raise
        return None
    names = {stop.station: stop.name or stop.station for stop in run.stops}
    place = f"{names.get(run.origin, run.origin)} → {names.get(run.destination, run.destination)}"
    return domain.GateTarget(run.run_id, "train", f"{run.train_number} {run.name}", run.departs_at,
                             run.origin_timezone, place)


async def _pick_event(request: Request, visitor: Visitor, *, error: str | None = None) -> Response:
    now = datetime.now(UTC)
    since = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    days = [(now + timedelta(days=offset)).date().isoformat() for offset in (-1, 0, 1)]
    events, departures = await asyncio.gather(
        visitor.catalog.events(EventFilter(starts_after=since, limit=100)),
        asyncio.gather(*(visitor.catalog.departures(day) for day in days)),
    )
    # Trains still travelling or leaving within about a day: yesterday's that have not arrived, today's, tomorrow's.
    runs = [r for page in departures for r in page.items if domain.parse_time(r.arrives_at) > now]
    status = 404 if error else 200
    return render(request, "checkin_pick.html", "admin-checkin", events=events.items, runs=runs, error=error,
                  status=status)


def _gate_page(
    request: Request, target: domain.GateTarget, gate: str | None, *, result: domain.CheckinResult | None
) -> Response:
    template = "_checkin_result.html" if request.headers.get("hx-request") == "true" else "checkin.html"
    return render(
        request, template, "admin-checkin", target=target, gate=gate or "", result=result, nonce=domain.gate_nonce()
    )


@router.post("/admin/checkin")
async def checkin(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    _require_admin(visitor)
    code, event_id, gate = text(data, "code"), text(data, "event_id"), domain.gate_name(text(data, "gate"))
    nonce = text(data, "nonce")
    if not event_id:
        return redirect("/admin/checkin", request)
    target = await _gate_target(visitor, event_id)
    if target is None:
        return redirect("/admin/checkin", request)
    result: domain.CheckinResult
    if not code:
        result = domain.CheckinResult("invalid", "Enter or scan a ticket code.")
    else:
        scan = CheckInRequest(
            code=code[:2000], event_id=target.id, gate=gate, nonce=nonce if domain.GATE_NONCE.match(nonce) else None
        )
        try:
            admitted = await visitor.tickets.check_in(scan)
            result = domain.CheckinResult(
                "admitted",
                "Admitted again: the same scan was repeated." if admitted.retry
                else "Admitted. Have a good journey!" if admitted.kind == "train" else "Admitted. Enjoy the show!",
                admitted.ticket_id,
                holder_name=admitted.holder_name,
                event_name=admitted.event_name,
                section=admitted.section,
                seat=admitted.seat,
                retry=admitted.retry,
                kind=admitted.kind,
            )
        except ApiProblem as exc:
            if exc.status >= 500 or exc.status in (401, 403):
                raise
            outcome = {"already-used": "used", "wrong-event": "wrong-event"}.get(exc.slug, "invalid")
            used_at = exc.problem.extra.get("used_at")
            message = exc.message + (f" (at {domain.format_when(str(used_at))})" if used_at else "")
            result = domain.CheckinResult(outcome, message)
    return _gate_page(request, target, gate, result=result)
