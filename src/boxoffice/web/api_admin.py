"""Operator pages (admin role): create an event, check tickets in at the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from boxoffice.platform.auth import Principal
from boxoffice.web import domain
from boxoffice.web.handlers import ApiProblem, Visitor
from boxoffice.web.pages import VisitorDep, form, redirect, render, text

router = APIRouter(include_in_schema=False)
SECTION_SLOTS = 4


def _require_admin(visitor: Visitor) -> Principal:
    user = visitor.require_user()
    if not visitor.is_admin:
        raise ApiProblem(domain.ProblemInfo(403, "forbidden", "Forbidden", "This page is for operators."))
    return user


@router.get("/admin/events/new")
async def new_event_form(request: Request, visitor: VisitorDep) -> Response:
    _require_admin(visitor)
    starts = (datetime.now(UTC) + timedelta(days=14)).replace(hour=19, minute=30, second=0, microsecond=0)
    values = {"seating": "general", "currency": "EUR", "category": "concert"}
    values["starts_at"] = starts.strftime("%Y-%m-%dT%H:%M")
    return _form_page(request, values)


def _form_page(request: Request, values: dict[str, Any], *, error: str | None = None, status: int = 200) -> Response:
    return render(request, "admin_event_new.html", "admin-event-new", values=values, error=error, status=status,
                  slots=range(SECTION_SLOTS), currencies=domain.CURRENCIES)


@router.post("/admin/events/new")
async def create_event(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    _require_admin(visitor)
    values = {key: value for key, value in data.items() if isinstance(value, str)}
    body, error = event_body(data)
    if error is not None:
        return _form_page(request, values, error=error, status=422)
    try:
        event = await visitor.call("catalog", "POST", "/api/events", json=body)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        return _form_page(request, values, error=exc.message, status=exc.status)
    return redirect(f"/events/{event['id']}?created=1", request)


def event_body(data: FormData) -> tuple[dict[str, Any], str | None]:
    """The catalog's event from the operator's form, or the first thing to fix."""
    seating = text(data, "seating")
    try:
        starts_at = datetime.fromisoformat(text(data, "starts_at")).replace(tzinfo=UTC)
    except ValueError:
        return {}, "Give the date and time the event starts."
    body: dict[str, Any] = {
        "name": text(data, "name"),
        "category": text(data, "category"),
        "venue": text(data, "venue"),
        "city": text(data, "city"),
        "currency": text(data, "currency"),
        "starts_at": starts_at.isoformat().replace("+00:00", "Z"),
        "sections": [],
    }
    for field in ("name", "venue", "city"):
        if not body[field]:
            return {}, f"Give the event's {field}."
    for slot in range(SECTION_SLOTS):
        name = text(data, f"section-{slot}-name")
        if not name:
            continue
        price = domain.parse_money(text(data, f"section-{slot}-price"))
        if price is None:
            return {}, f"Give a price for {name}, like 45.00."
        section: dict[str, Any] = {"name": name, "price": price}
        if seating == "reserved":
            rows = domain.parse_row_labels(text(data, f"section-{slot}-rows"))
            seats = _int(text(data, f"section-{slot}-seats"))
            if not rows or seats is None or seats < 1:
                return {}, f"Give {name} its rows (like A-F) and the seats in each row."
            section["rows"] = [{"label": row, "seats": seats} for row in rows]
        else:
            capacity = _int(text(data, f"section-{slot}-capacity"))
            if capacity is None or capacity < 1:
                return {}, f"Give {name} a capacity of at least 1."
            section["capacity"] = capacity
        body["sections"].append(section)
    if not body["sections"]:
        return {}, "Add at least one section with a name."
    return body, None


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


@router.get("/admin/checkin")
async def checkin_form(request: Request, visitor: VisitorDep) -> Response:
    _require_admin(visitor)
    return render(request, "checkin.html", "admin-checkin", result=None, code="")


@router.post("/admin/checkin")
async def checkin(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    _require_admin(visitor)
    code = text(data, "code")
    result: dict[str, Any]
    if not code:
        result = {"outcome": "invalid", "message": "Enter or scan a ticket code."}
    else:
        try:
            admitted = await visitor.call("tickets", "POST", "/api/checkin", json={"code": code})
            result = {"outcome": "admitted", "message": "Admitted. Enjoy the show!", "ticket_id": admitted["ticket_id"]}
        except ApiProblem as exc:
            if exc.status >= 500 or exc.status in (401, 403):
                raise
            outcome = "used" if exc.slug == "already-used" else "invalid"
            used_at = exc.problem.extra.get("used_at")
            message = exc.message + (f" (at {domain.format_when(str(used_at))})" if used_at else "")
            result = {"outcome": outcome, "message": message}
    template = "_checkin_result.html" if request.headers.get("hx-request") == "true" else "checkin.html"
    return render(request, template, "admin-checkin", result=result, code="")
