"""Booking rules, free of I/O: what may be held, when a hold is live, train segments, per-user limits, which
state may follow which, and how an order's history is merged.

The invariants (ARCHITECTURE.md section 4) are kept by the store's conditional writes; this module states
the rules those writes encode, so they can be tested on their own (tests/unit/test_booking_domain.py).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from boxoffice.platform.problems import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable


class HoldStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"  # its order was cancelled after confirmation


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class HoldKind(StrEnum):
    GENERAL = "general"  # a quantity in a general admission section
    SEATS = "seats"  # numbered seats of a reserved-seating event
    TRAIN = "train"  # train seats on a segment of a run


class OrderKind(StrEnum):
    EVENT = "event"
    TRAIN = "train"


# Which state may follow which; the store's conditional writes are the enforcement, this is the rule.
HOLD_MOVES: Mapping[HoldStatus, frozenset[HoldStatus]] = {
    HoldStatus.ACTIVE: frozenset({HoldStatus.RELEASED, HoldStatus.EXPIRED, HoldStatus.CONFIRMED}),
    HoldStatus.CONFIRMED: frozenset({HoldStatus.CANCELLED}),
    HoldStatus.RELEASED: frozenset(),
    HoldStatus.EXPIRED: frozenset(),
    HoldStatus.CANCELLED: frozenset(),
}
ORDER_MOVES: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.CONFIRMED, OrderStatus.EXPIRED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.CANCELLED}),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


# Errors a client sees.
class SoldOut(Conflict):
    slug, title = "sold-out", "Sold out"


class SeatUnavailable(Conflict):
    slug, title = "seat-unavailable", "Seat unavailable"


class HoldExpired(Conflict):
    slug, title = "hold-expired", "Hold expired"


class HoldNotActive(Conflict):
    slug, title = "hold-not-active", "Hold no longer active"


class HoldAlreadyOrdered(Conflict):
    slug, title = "hold-already-ordered", "Hold already ordered"


class OrderNotPayable(Conflict):
    slug, title = "order-not-payable", "Order cannot be paid"


class OrderNotCancellable(Conflict):
    slug, title = "order-not-cancellable", "Order cannot be cancelled"


class TicketUsed(Conflict):
    """Tickets' refund fence refused: a ticket of the order was admitted at a gate (docs/contracts.md)."""

    slug, title = "ticket-used", "A ticket of this order was used"


class LimitReached(TooManyRequests):
    slug, title = "limit-reached", "Per-customer limit reached"


class NotAdmitted(Forbidden):
    """A queued sale's holds need the waiting room's admission (docs/waiting-room.md)."""

    slug, title = "not-admitted", "Not admitted yet"


class UnknownInventory(NotFound):
    slug, title = "not-found", "Not on sale"


class InvalidSegment(Unprocessable):
    slug, title = "invalid-segment", "Invalid journey"


class InvalidSelection(BadRequest):
    slug, title = "invalid-selection", "Invalid selection"


class InvalidPassengers(Unprocessable):
    slug, title = "invalid-passengers", "Passenger names needed"


def is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    """A hold counts against inventory only while active AND before its expiry, swept or not (invariant 3)."""
    return status == HoldStatus.ACTIVE and now < expires_at


def hold_status(status: str, expires_at: datetime, now: datetime) -> HoldStatus:
    """What a customer sees: an active hold whose time ran out is expired, swept or not."""
    if status == HoldStatus.ACTIVE and now >= expires_at:
        return HoldStatus.EXPIRED
    return HoldStatus(status)


def order_status(status: str, hold_expires_at: datetime, now: datetime) -> OrderStatus:
    """What a customer sees: a pending order whose hold ran out is expired, swept or not."""
    if status == OrderStatus.PENDING_PAYMENT and now >= hold_expires_at:
        return OrderStatus.EXPIRED
    return OrderStatus(status)


def order_status_after(hold_to: HoldStatus) -> OrderStatus:
    """A pending order follows its hold: expired with an expired hold, cancelled with a released one."""
    return OrderStatus.EXPIRED if hold_to == HoldStatus.EXPIRED else OrderStatus.CANCELLED


# Train journeys.
def overlaps(a_from: int, a_to: int, b_from: int, b_to: int) -> bool:
    """Two journeys on one route share track iff their stop-index intervals [from, to) intersect.

    A seat sold A->B (0->1) stays free for B->C (1->2) and is taken for A->C (0->2).
    """
    return a_from < b_to and b_from < a_to


@dataclass(frozen=True, slots=True)
class Segment:
    origin: str
    destination: str
    from_index: int
    to_index: int


@dataclass(frozen=True, slots=True)
class Stop:
    station: str
    index: int
    arrives_at: str | None = None
    departs_at: str | None = None
    name: str | None = None  # the station's name ("Mumbai Central")
    timezone: str = "UTC"  # the station's IANA zone


def segment_of(stops: Sequence[Stop], origin: str, destination: str) -> Segment:
    """The stop indexes of a journey; the train must stop at origin before destination."""
    index = {stop.station: stop.index for stop in stops}
    if origin not in index or destination not in index:
        missing = origin if origin not in index else destination
        raise InvalidSegment(f"This train does not stop at {missing}.")
    if index[origin] >= index[destination]:
        raise InvalidSegment(f"This train reaches {destination} before {origin}.")
    return Segment(origin, destination, index[origin], index[destination])


def fare_for(fares: Mapping[str, int], segment: Segment) -> int:
    try:
        return fares[f"{segment.origin}>{segment.destination}"]
    except KeyError:
        raise InvalidSegment("No fare is published for this journey.") from None


# Per-customer limits.
@dataclass(frozen=True, slots=True)
class Limits:
    max_tickets_per_event: int
    max_active_holds: int


def check_limits(limits: Limits, *, active_holds: int, tickets_for_event: int, requested: int) -> None:
    """Raise LimitReached when one more hold of ``requested`` tickets would break a per-customer limit."""
    if active_holds + 1 > limits.max_active_holds:
        raise LimitReached(
            f"You already hold seats {active_holds} times; complete or release a hold first "
            f"(at most {limits.max_active_holds} at once).",
            retry_after=30,
            limit="active_holds",
        )
    if tickets_for_event + requested > limits.max_tickets_per_event:
        left = max(0, limits.max_tickets_per_event - tickets_for_event)
        raise LimitReached(
            f"At most {limits.max_tickets_per_event} tickets per customer for one event; you can add {left}.",
            retry_after=30,
            limit="tickets_per_event",
        )


# What is sold: the catalog's copy booking keeps.
@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    name: str
    venue: str
    city: str
    starts_at: datetime
    currency: str
    seating: str  # general | reserved
    on_sale_at: datetime | None = None  # a queued sale: holds need an admission from the waiting room
    timezone: str = "UTC"  # the venue's IANA zone
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    section_id: str
    event_id: str
    name: str
    price: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    train_number: str
    name: str
    currency: str
    stops: tuple[Stop, ...]
    fares: Mapping[str, Mapping[str, int]]  # class code -> {"A>B": amount}
    class_names: Mapping[str, str]
    on_sale_at: datetime | None = None  # a queued booking day: holds need an admission from the waiting room

    def stop(self, station: str) -> Stop:
        return next(s for s in self.stops if s.station == station)


@dataclass(frozen=True, slots=True)
class Seat:
    """A seat a hold may take: a reserved seat of an event, or a train seat (``price`` 0, priced by fare)."""

    seat_id: str
    label: str
    section_id: str | None = None
    price: int = 0


@dataclass(frozen=True, slots=True)
class Item:
    """One ticket of a hold or order: a seat, or a place in a general admission section (``seat_id`` None)."""

    seat_id: str | None
    label: str
    price: int
    section: str
    passenger: str | None = None  # trains: the name of who travels on this seat (printed on the ticket)


# What was bought, as the buyer reads it (kept with the order: the order says what was sold, whatever the
# catalog says later).
@dataclass(frozen=True, slots=True)
class EventDetails:
    name: str
    venue: str
    city: str
    address: str | None
    starts_at: datetime
    timezone: str


@dataclass(frozen=True, slots=True)
class StopDetails:
    station: str  # the code
    name: str
    timezone: str
    at: str | None  # RFC 3339 UTC: departure from the origin, arrival at the destination


@dataclass(frozen=True, slots=True)
class TrainDetails:
    run_id: str
    train_number: str
    name: str
    class_code: str
    class_name: str
    origin: StopDetails
    destination: StopDetails


@dataclass(frozen=True, slots=True)
class Details:
    event: EventDetails | None = None
    train: TrainDetails | None = None


# Order numbers: what a buyer reads out on the phone. Crockford's base32 (no I, L, O, U: nothing to mistake
# for 1, 0 or V), 8 characters: 2^40 numbers; the unique index refuses a taken one when the order is inserted
# (handlers/orders.py then draws another).
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NUMBER_LENGTH = 8
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_order_number() -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(NUMBER_LENGTH))


def normalize_order_number(text: str) -> str | None:
    """What a buyer typed ("k7m2-9qxd", "K7M2 9QXD", an O for a 0) as a number; None when it cannot be one."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -").translate(_READ_AS)
    if len(cleaned) != NUMBER_LENGTH or any(ch not in CROCKFORD for ch in cleaned):
        return None
    return cleaned


# Passengers: a train ticket is personal, so each seat needs the name of who travels on it.
MAX_PASSENGER_NAME = 100


def passenger_name(raw: str) -> str | None:
    """The name as printed (spaces collapsed); None when it is empty, too long or holds control characters."""
    name = " ".join(raw.split())
    if not name or len(name) > MAX_PASSENGER_NAME:
        return None
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return None
    return name


def with_passengers(items: Sequence[Item], names: Mapping[str, str], *, train: bool) -> tuple[Item, ...]:
    """The items with their passenger's name: trains need one valid name per seat, events take none."""
    if not train:
        if names:
            raise InvalidPassengers("Passenger names are for train tickets; an event ticket needs none.")
        return tuple(items)
    seats = [item.seat_id for item in items if item.seat_id is not None]
    if set(names) != set(seats):
        missing = [i.label for i in items if i.seat_id not in names]
        detail = f"missing for {', '.join(missing)}" if missing else "given for seats not in this hold"
        raise InvalidPassengers(f"Give one passenger name for each seat ({detail}).")
    named = []
    for item in items:
        name = passenger_name(names[item.seat_id or ""])
        if name is None:
            raise InvalidPassengers(
                f"The passenger name for seat {item.label} must be 1 to {MAX_PASSENGER_NAME} printable characters."
            )
        named.append(replace(item, passenger=name))
    return tuple(named)


# Holds and orders.
@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    user_id: str
    kind: HoldKind
    event_id: str  # the run id for trains
    section_id: str | None
    quantity: int
    status: HoldStatus
    version: int
    expires_at: datetime
    total: int
    currency: str
    items: tuple[Item, ...]
    created_at: datetime
    class_code: str | None = None
    segment: Segment | None = None
    details: Details | None = None  # what it is for, when a reader asked (GET /api/holds/{id})

    def is_live(self, now: datetime) -> bool:
        return is_live(self.status, self.expires_at, now)

    def seen_at(self, now: datetime) -> Hold:
        """The hold as a customer sees it at ``now`` (expired once its time ran out, swept or not)."""
        return replace(self, status=hold_status(self.status, self.expires_at, now))


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    hold_id: str
    user_id: str
    holder_name: str
    status: OrderStatus
    kind: OrderKind
    event_id: str
    total: int
    currency: str
    items: tuple[Item, ...]
    payment_id: str | None
    created_at: datetime
    expires_at: datetime  # its hold's
    hold_version: int
    number: str = ""  # the readable order number (Crockford base32)
    email: str = ""  # where the confirmation and the refund e-mail go
    details: Details = field(default_factory=Details)

    def seen_at(self, now: datetime) -> Order:
        return replace(self, status=order_status(self.status, self.expires_at, now))


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: tuple[Order, ...]
    next_cursor: tuple[datetime, str] | None  # (created_at, id) of the last order shown


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket of an order, as the tickets service reports it."""

    id: str
    status: str
    code: str
    pdf_url: str | None


@dataclass(frozen=True, slots=True)
class OrderWithTickets:
    order: Order
    tickets: tuple[Ticket, ...]


# Availability (for catalog's pages).
@dataclass(frozen=True, slots=True)
class EventAvailability:
    available: int
    sections: Mapping[str, int]  # section id -> places left
    seats: Mapping[str, str]  # seat id -> "held" | "sold"; only seats that are not available


@dataclass(frozen=True, slots=True)
class RunAvailability:
    classes: Mapping[str, int]  # class code -> seats left on the journey
    seats: Mapping[str, str]


# The audit trail.
JsonObject = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    actor: str  # a user id, "system", or "payment:<id>"
    action: str  # e.g. hold.placed, order.confirmed, payment.captured
    detail: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderHistory:
    items: tuple[HistoryEntry, ...]
    incomplete: tuple[str, ...] = ()  # services whose entries could not be read


def merge_history(sources: Iterable[Sequence[HistoryEntry]]) -> tuple[HistoryEntry, ...]:
    """Entries of every service, oldest first; at equal times the order of ``sources`` and within each."""
    ranked = [(entry.at, n, i, entry) for n, entries in enumerate(sources) for i, entry in enumerate(entries)]
    return tuple(entry for *_, entry in sorted(ranked, key=lambda r: (r[0], r[1], r[2])))


def payment_actor(payment_id: str) -> str:
    """The actor of a confirmation: the payment that paid for the order."""
    return f"payment:{payment_id}"
