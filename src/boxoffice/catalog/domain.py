"""Catalog rules, free of I/O: the errors, events and seat maps, pagination cursors, event payloads.

Train rules (routes, segments, fares) are in ``timetable``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from boxoffice.platform import pagination
from boxoffice.platform.localtime import DEFAULT_ZONE, is_zone
from boxoffice.platform.problems import Conflict, NotFound, Unprocessable

CATEGORIES = ("concert", "theatre", "comedy", "sports", "festival")
Category = Literal["concert", "theatre", "comedy", "sports", "festival"]
Seating = Literal["general", "reserved"]
SeatStatus = Literal["available", "held", "sold"]

MAX_SECTION_CAPACITY = 100_000
MAX_RESERVED_SEATS = 10_000  # per event: every seat travels in catalog.event-published
MAX_DAYS_AHEAD = 3 * 366


# Errors a client sees.
class EventNotFound(NotFound):
    slug, title = "event-not-found", "Event not found"


class RunNotFound(NotFound):
    slug, title = "run-not-found", "Train run not found"


class TrainNotFound(NotFound):
    slug, title = "train-not-found", "Train not found"


class UnknownStation(NotFound):
    slug, title = "unknown-station", "Unknown station"


class StationExists(Conflict):
    slug, title = "station-exists", "Station already exists"


class TrainExists(Conflict):
    slug, title = "train-exists", "Train number already exists"


class RunsBusy(Conflict):
    slug, title = "runs-busy", "Runs being published"


class InvalidSeatMap(Unprocessable):
    slug, title = "invalid-seat-map", "Invalid sections or seat map"


class InvalidRoute(Unprocessable):
    slug, title = "invalid-route", "Invalid route"


class InvalidSegment(Unprocessable):
    slug, title = "invalid-segment", "Invalid journey"


class InvalidDate(Unprocessable):
    slug, title = "invalid-date", "Invalid date"


class UnknownTimezone(Unprocessable):
    slug, title = "unknown-timezone", "Unknown time zone"


def check_timezone(name: str | None) -> None:
    """An IANA zone name ("Europe/Amsterdam", "Asia/Kolkata"), or None for "keep what the venue has"."""
    if name is not None and not is_zone(name):
        raise UnknownTimezone(f"{name!r} is not an IANA time zone name (like Europe/Amsterdam or Asia/Kolkata).")


# Events and seat maps.
@dataclass(frozen=True, slots=True)
class RowDraft:
    label: str
    seats: int


@dataclass(frozen=True, slots=True)
class SectionDraft:
    name: str
    price: int
    capacity: int | None = None
    rows: tuple[RowDraft, ...] | None = None

    @property
    def seat_count(self) -> int:
        return sum(row.seats for row in self.rows or ())


@dataclass(frozen=True, slots=True)
class QueueDraft:
    """A queued sale: buyers wait in the waiting room's line from ``on_sale_at`` (docs/waiting-room.md)."""

    on_sale_at: datetime
    admit_per_minute: int | None = None  # None: the room adapts to what booking sustains


@dataclass(frozen=True, slots=True)
class EventDetails:
    """What an event page tells a buyer beyond the listing; every part is optional."""

    description: str | None = None
    image_url: str | None = None  # a path on this site (``/static/...``) or an https URL
    doors_at: datetime | None = None  # when the doors open: before the start
    venue_address: str | None = None


NO_DETAILS = EventDetails()
MAX_DOORS_BEFORE = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class EventDraft:
    name: str
    category: Category
    venue: str
    city: str
    starts_at: datetime
    currency: str
    sections: tuple[SectionDraft, ...]
    queue: QueueDraft | None = None
    details: EventDetails = NO_DETAILS
    timezone: str | None = None  # the venue's IANA zone; None: the venue's as known (UTC for a new venue)
    address: str | None = None  # the venue's street address; None: as known

    @property
    def seating(self) -> Seating:
        return "reserved" if self.sections and self.sections[0].rows is not None else "general"


def seat_map_problems(sections: Sequence[SectionDraft]) -> list[str]:
    """Reasons the sections cannot be sold; empty when they can."""
    reasons = []
    names = [s.name.casefold() for s in sections]
    if len(set(names)) != len(names):
        reasons.append("section names must be unique")
    if len({s.rows is None for s in sections}) > 1:
        reasons.append("all sections must be general admission (capacity) or all reserved (rows), not a mix")
    for section in sections:
        labels = [row.label.casefold() for row in section.rows or ()]
        if len(set(labels)) != len(labels):
            reasons.append(f"row labels in section {section.name!r} must be unique")
    if sum(s.seat_count for s in sections) > MAX_RESERVED_SEATS:
        reasons.append(f"an event has at most {MAX_RESERVED_SEATS} reserved seats")
    return reasons


def check_event_draft(draft: EventDraft, *, now: datetime) -> None:
    check_timezone(draft.timezone)
    if draft.starts_at <= now:
        raise Unprocessable("starts_at must be in the future.", slug="starts-in-past", title="Event in the past")
    if draft.queue is not None and draft.queue.on_sale_at >= draft.starts_at:
        raise Unprocessable("queue.on_sale_at must be before starts_at.", slug="on-sale-after-start")
    if draft.starts_at > now + timedelta(days=MAX_DAYS_AHEAD):
        raise Unprocessable("starts_at is too far ahead (at most 3 years).", slug="starts-too-late")
    doors = draft.details.doors_at
    if doors is not None and not draft.starts_at - MAX_DOORS_BEFORE <= doors <= draft.starts_at:
        raise Unprocessable("doors_at must be at or before starts_at, by at most 12 hours.", slug="invalid-doors")
    if reasons := seat_map_problems(draft.sections):
        raise InvalidSeatMap("The sections cannot be sold: " + "; ".join(reasons) + ".")


def seat_label(row: str, number: int) -> str:
    return f"{row}-{number}"


@dataclass(frozen=True, slots=True)
class SeatPlan:
    id: str
    row: str
    number: int
    label: str
    price: int


@dataclass(frozen=True, slots=True)
class SectionPlan:
    id: str
    name: str
    price: int
    capacity: int
    seats: tuple[SeatPlan, ...]


@dataclass(frozen=True, slots=True)
class EventPlan:
    """A checked draft with its ids: what is stored and what ``catalog.event-published`` carries."""

    id: str
    draft: EventDraft
    sections: tuple[SectionPlan, ...]

    @property
    def price_from(self) -> int:
        return min(s.price for s in self.sections)

    @property
    def capacity(self) -> int:
        return sum(s.capacity for s in self.sections)


# What is stored, as the store reads it back.
@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    name: str
    category: Category
    venue: str
    city: str
    starts_at: datetime
    seating: Seating
    currency: str
    price_from: int
    capacity: int
    on_sale_at: datetime | None = None  # set for a queued sale
    admit_per_minute: int | None = None
    details: EventDetails = NO_DETAILS
    timezone: str = DEFAULT_ZONE  # the venue's IANA zone
    address: str | None = None  # the venue's street address


@dataclass(frozen=True, slots=True)
class Venue:
    id: str
    timezone: str
    address: str | None


@dataclass(frozen=True, slots=True)
class SectionRecord:
    id: str
    name: str
    price: int
    capacity: int


@dataclass(frozen=True, slots=True)
class SeatRecord:
    id: str
    section_id: str
    row: str
    number: int
    label: str
    price: int


@dataclass(frozen=True, slots=True)
class Station:
    code: str
    name: str
    city: str
    timezone: str = DEFAULT_ZONE


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events a listing shows: filters, and the page (``cursor`` from the previous page)."""

    category: Category | None = None
    q: str | None = None
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    cursor: str | None = None
    limit: int = 20


def plan_event(draft: EventDraft, new_id: Callable[[], str]) -> EventPlan:
    planned = []
    for section in draft.sections:
        seats = tuple(
            SeatPlan(new_id(), row.label, number, seat_label(row.label, number), section.price)
            for row in section.rows or ()
            for number in range(1, row.seats + 1)
        )
        capacity = len(seats) if section.rows is not None else section.capacity or 0
        planned.append(SectionPlan(new_id(), section.name, section.price, capacity, seats))
    return EventPlan(new_id(), draft, tuple(planned))


def event_published(plan: EventPlan) -> dict[str, Any]:
    """The data of ``catalog.event-published`` (docs/contracts.md): booking builds its inventory from it."""
    d = plan.draft
    data: dict[str, Any] = {
        "event_id": plan.id,
        "name": d.name,
        "category": d.category,
        "venue": d.venue,
        "city": d.city,
        "starts_at": rfc3339(d.starts_at),
        "timezone": d.timezone or DEFAULT_ZONE,
        "address": d.address,
        "currency": d.currency,
        "seating": d.seating,
        "sections": [
            {
                "section_id": s.id,
                "name": s.name,
                "price": s.price,
                "capacity": s.capacity,
                "seats": [
                    {"seat_id": t.id, "row": t.row, "number": t.number, "label": t.label, "price": t.price}
                    for t in s.seats
                ],
            }
            for s in plan.sections
        ],
    }
    if d.queue is not None:  # the waiting room opens a line; booking then requires admissions
        data["queue"] = {"on_sale_at": rfc3339(d.queue.on_sale_at), "admit_per_minute": d.queue.admit_per_minute}
    return data


# Pagination: an opaque cursor holding the (starts_at, id) of the last item of the page.
def encode_cursor(starts_at: datetime, item_id: str) -> str:
    return pagination.encode_cursor(starts_at, item_id)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    return pagination.decode_cursor(cursor, datetime)


def rfc3339(when: datetime | None) -> str | None:
    """UTC, whole seconds, ``Z``: the form times take in events."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
