"""Windowed sales aggregation as pure rules: windows, watermarks, lateness and revisions. No I/O.

A booking (``ticket-bookings``, docs/contracts.md) counts in the tumbling window of its ``timestamp`` (event
time). Confirmations add, cancellations subtract, each in the window of its own time.

- The watermark of a partition is the highest event time seen in it minus ``max_out_of_order``: the
  promise that nothing earlier is still on its way. It is kept per partition, because a key (an event or
  run) lives in one partition, whose order is fixed; so results do not depend on how partitions interleave
  or which member of the group reads them, and a worker restarted at any point gives the same answer.
- A window closes (is emitted with revision 1) when its partition's watermark reaches its end, or, on a
  quiet stream, when the wall clock passes its end plus ``max_out_of_order`` (like Flink's idleness).
- A booking for a closed window is late. While the watermark is before ``end + allowed_lateness`` the
  window takes it and is emitted again with revision + 1 (each late booking makes one revision, like
  Flink's late firing). Later still, the booking is a correction: kept and counted, never silently
  dropped, and the published window is left as it is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from boxoffice.platform.problems import BadRequest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MalformedBooking(ValueError):
    """A ``ticket-bookings`` record that cannot be counted; the message is the reason kept with it."""


class InvalidRange(BadRequest):
    slug = "invalid-range"
    title = "Invalid time range"


@dataclass(frozen=True, slots=True)
class Config:
    window: timedelta = timedelta(seconds=60)
    max_out_of_order: timedelta = timedelta(seconds=5)
    allowed_lateness: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Booking:
    event_id: str
    kind: str  # event | train
    order_id: str
    ticket_count: int
    amount_minor: int
    currency: str
    cancelled: bool
    at: datetime

    @property
    def sign(self) -> int:
        return -1 if self.cancelled else 1


def _text(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedBooking(f"'{name}' must be a non-empty string")
    return value


def _count(data: Mapping[str, object], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedBooking(f"'{name}' must be a whole number, 0 or more")
    return value


def parse_time(value: str) -> datetime:
    at = datetime.fromisoformat(value)  # Python 3.11+ reads a trailing "Z" itself
    if at.tzinfo is None:
        raise ValueError("no time zone")
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def parse_booking(data: object) -> Booking:
    """The booking in a ``ticket-bookings`` record's data, or ``MalformedBooking`` saying what is wrong.

    It runs for every booking the worker reads: a well-formed record (the JSON a producer writes: exact
    ``str`` and ``int`` values) takes the short path; anything else goes through the field-by-field checks,
    which accept the same records and say what is wrong with the others."""
    if type(data) is dict:
        get = data.get
        event_id, order_id, currency, count, amount = (
            get("event_id"), get("order_id"), get("currency"), get("ticket_count"), get("amount_minor"))
        status, kind, stamp = get("status"), get("kind", "event"), get("timestamp")
        if (
            type(event_id) is str and event_id and type(order_id) is str and order_id
            and type(currency) is str and len(currency) == 3
            and type(count) is int and count >= 0 and type(amount) is int and amount >= 0
            and (status == "confirmed" or status == "cancelled") and (kind == "event" or kind == "train")
            and type(stamp) is str
        ):
            try:
                at = parse_time(stamp)
            except ValueError:
                pass
            else:
                return Booking(event_id, kind, order_id, count, amount, currency, status == "cancelled", at)
    return _checked_booking(data)


def _checked_booking(data: object) -> Booking:
    if not isinstance(data, Mapping):
        raise MalformedBooking("the data is not an object")
    status = data.get("status")
    if status not in ("confirmed", "cancelled"):
        raise MalformedBooking("'status' must be 'confirmed' or 'cancelled'")
    kind = data.get("kind", "event")
    if kind not in ("event", "train"):
        raise MalformedBooking("'kind' must be 'event' or 'train'")
    currency = _text(data, "currency")
    if len(currency) != 3:
        raise MalformedBooking("'currency' must be a 3-letter code")
    try:
        at = parse_time(_text(data, "timestamp"))
    except ValueError:
        raise MalformedBooking("'timestamp' must be an RFC 3339 time with a zone") from None
    return Booking(
        event_id=_text(data, "event_id"),
        kind=str(kind),
        order_id=_text(data, "order_id"),
        ticket_count=_count(data, "ticket_count"),
        amount_minor=_count(data, "amount_minor"),
        currency=currency,
        cancelled=status == "cancelled",
        at=at,
    )


def window_start(at: datetime, size: timedelta) -> datetime:
    """The start of the tumbling window holding ``at``: windows are aligned to the epoch, like Flink's."""
    return at - (at - EPOCH) % size  # timedelta arithmetic is exact (whole microseconds)


@dataclass(slots=True)
class Window:
    """One key's window: its running totals and what was last published of it (revision 0: nothing)."""

    event_id: str
    kind: str
    start: datetime
    end: datetime
    partition: int
    currency: str
    total_tickets: int = 0
    orders: int = 0
    revenue_minor: int = 0
    revision: int = 0

    @property
    def emitted(self) -> bool:
        return self.revision > 0

    def add(self, booking: Booking) -> None:
        self.total_tickets += booking.sign * booking.ticket_count
        self.orders += booking.sign
        self.revenue_minor += booking.sign * booking.amount_minor

    def result(self) -> WindowResult:
        return WindowResult(
            event_id=self.event_id,
            kind=self.kind,
            window_start=self.start,
            window_end=self.end,
            total_tickets=self.total_tickets,
            orders=self.orders,
            revenue_minor=self.revenue_minor,
            currency=self.currency,
            revision=self.revision,
        )


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One record of ``analytics-results`` (ARCHITECTURE.md section 5)."""

    event_id: str
    kind: str
    window_start: datetime
    window_end: datetime
    total_tickets: int
    orders: int
    revenue_minor: int
    currency: str
    revision: int

    def data(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "window_start": rfc3339(self.window_start),
            "window_end": rfc3339(self.window_end),
            "total_tickets": self.total_tickets,
            "orders": self.orders,
            "revenue_minor": self.revenue_minor,
            "currency": self.currency,
            "revision": self.revision,
        }


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Correction:
    """A booking that came after its window's allowed lateness: counted here, not in the window."""

    booking: Booking
    window_start: datetime
    watermark: datetime


class Fate(enum.Enum):
    COUNT = "count"  # the window is open: add
    REVISE = "revise"  # the window closed, within the allowed lateness: add and publish again
    CORRECTION = "correction"  # too late for the window


def fate(window: Window | None, end: datetime, watermark: datetime | None, config: Config) -> Fate:
    closed = (window is not None and window.emitted) or (watermark is not None and watermark >= end)
    if not closed:
        return Fate.COUNT
    if watermark is not None and watermark >= end + config.allowed_lateness:
        return Fate.CORRECTION
    return Fate.REVISE


@dataclass(slots=True)
class EventTally:
    """An event's (or run's) totals over all time, in the order its bookings arrived."""

    event_id: str
    kind: str
    currency: str
    sold: int = 0
    revenue_minor: int = 0
    first_sale_at: datetime | None = None
    last_sale_at: datetime | None = None
    sold_out_at: datetime | None = None

    def add(self, booking: Booking, capacity: int | None) -> None:
        before = self.sold
        self.sold += booking.sign * booking.ticket_count
        self.revenue_minor += booking.sign * booking.amount_minor
        if not booking.cancelled:
            if self.first_sale_at is None or booking.at < self.first_sale_at:
                self.first_sale_at = booking.at
            if self.last_sale_at is None or booking.at > self.last_sale_at:
                self.last_sale_at = booking.at
        self.settle(capacity, reached_at=booking.at if before < (capacity or 0) <= self.sold else None)

    def settle(self, capacity: int | None, *, reached_at: datetime | None = None) -> None:
        """Sold out from the booking that reached the capacity; not sold out once cancellations free seats."""
        if capacity is None or capacity <= 0 or self.sold < capacity:
            self.sold_out_at = None
        elif reached_at is not None:
            self.sold_out_at = reached_at
        elif self.sold_out_at is None:  # the capacity became known after the sale: its last booking did it
            self.sold_out_at = self.last_sale_at


@dataclass(slots=True)
class PartitionState:
    """What a worker keeps per partition: the next offset to read and the highest event time seen."""

    topic: str
    partition: int
    next_offset: int = 0
    max_event_time: datetime | None = None
    stored_offset: int = 0  # what the store holds now: the compare-and-set that fences a second member

    def watermark(self, config: Config) -> datetime | None:
        return None if self.max_event_time is None else self.max_event_time - config.max_out_of_order


@dataclass(slots=True)
class Batch:
    """The state one batch of bookings touches, and what applying them published.

    Results are decided record by record, never per batch: a window closes as soon as the record that moves
    its partition's watermark past its end is applied, and each late booking makes its own revision. So the
    same log gives the same results however it is cut into batches (a worker killed and restarted, a batch
    size changed)."""

    config: Config
    windows: dict[tuple[str, datetime], Window]
    tallies: dict[str, EventTally]
    capacities: Mapping[str, int]
    partitions: dict[int, PartitionState]
    corrections: list[Correction] = field(default_factory=list)
    published: list[WindowResult] = field(default_factory=list)

    def apply(self, partition: int, offset: int, booking: Booking | None) -> None:
        """One record of ``partition`` at ``offset``: a booking, or None for one that is not counted."""
        state = self.partitions[partition]
        state.next_offset = offset + 1
        if booking is None:
            return
        start = window_start(booking.at, self.config.window)
        end = start + self.config.window
        window = self.windows.get((booking.event_id, start))
        watermark = state.watermark(self.config)
        outcome = fate(window, end, watermark, self.config)
        if outcome is Fate.CORRECTION:
            self.corrections.append(Correction(booking, start, watermark or end))
        else:
            if window is None:
                window = Window(booking.event_id, booking.kind, start, end, partition, booking.currency)
                self.windows[(booking.event_id, start)] = window
            window.add(booking)
            if outcome is Fate.REVISE:
                self._publish(window)
        tally = self.tallies.get(booking.event_id)
        if tally is None:
            tally = self.tallies[booking.event_id] = EventTally(booking.event_id, booking.kind, booking.currency)
        tally.add(booking, self.capacities.get(booking.event_id))
        if state.max_event_time is None or booking.at > state.max_event_time:
            state.max_event_time = booking.at
            moved = state.watermark(self.config)
            if moved is not None and (watermark is None or window_start(moved, self.config.window) > watermark):
                self._close(partition, moved)  # the watermark crossed a window boundary

    def _close(self, partition: int, watermark: datetime) -> None:
        due = [w for w in self.windows.values() if w.partition == partition and not w.emitted and w.end <= watermark]
        for window in sorted(due, key=lambda w: (w.end, w.event_id)):
            self._publish(window)

    def _publish(self, window: Window) -> None:
        window.revision += 1
        self.published.append(window.result())

    def close_idle(self, now: datetime) -> list[WindowResult]:
        """A quiet stream: publish the windows the wall clock closed (their end plus the bound is past)."""
        due = [w for w in self.windows.values() if not w.emitted and now >= w.end + self.config.max_out_of_order]
        for window in sorted(due, key=lambda w: (w.end, w.event_id)):
            self._publish(window)
        return self.published


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidRange("'from' must not be after 'to'.")
