"""Booking rules, free of I/O: what may be held, when a hold is live, train segments, per-user limits.

The invariants (ARCHITECTURE.md section 4) are kept by the store's conditional writes; this module states
the rules those writes encode, so they can be tested on their own (tests/unit/test_booking_*).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from boxoffice.platform.problems import BadRequest, Conflict, NotFound, TooManyRequests, Unprocessable


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


class LimitReached(TooManyRequests):
    slug, title = "limit-reached", "Per-customer limit reached"


class UnknownInventory(NotFound):
    slug, title = "not-found", "Not on sale"


class InvalidSegment(Unprocessable):
    slug, title = "invalid-segment", "Invalid journey"


class InvalidSelection(BadRequest):
    slug, title = "invalid-selection", "Invalid selection"


def is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    """A hold counts against inventory only while active AND before its expiry, swept or not (invariant 3)."""
    return status == HoldStatus.ACTIVE and now < expires_at


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


def segment_of(stops: list[dict[str, Any]], origin: str, destination: str) -> Segment:
    """The stop indexes of a journey; the train must stop at origin before destination."""
    index = {stop["station"]: stop["index"] for stop in stops}
    if origin not in index or destination not in index:
        missing = origin if origin not in index else destination
        raise InvalidSegment(f"This train does not stop at {missing}.")
    if index[origin] >= index[destination]:
        raise InvalidSegment(f"This train reaches {destination} before {origin}.")
    return Segment(origin, destination, index[origin], index[destination])


def fare_for(fares: dict[str, int], segment: Segment) -> int:
    try:
        return fares[f"{segment.origin}>{segment.destination}"]
    except KeyError:
        raise InvalidSegment("No fare is published for this journey.") from None


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


def order_status(status: str, hold_expires_at: datetime, now: datetime) -> str:
    """What a customer sees: a pending order whose hold ran out is expired, swept or not."""
    if status == OrderStatus.PENDING_PAYMENT and now >= hold_expires_at:
        return OrderStatus.EXPIRED
    return status


def hold_status(status: str, expires_at: datetime, now: datetime) -> str:
    if status == HoldStatus.ACTIVE and now >= expires_at:
        return HoldStatus.EXPIRED
    return status
