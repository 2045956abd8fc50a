"""Analytics' window rules with no I/O: assignment, watermark, lateness, revisions, corrections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxoffice.analytics.domain import (
    Batch,
    Booking,
    Config,
    EventTally,
    MalformedBooking,
    PartitionState,
    Window,
    WindowResult,
    _checked_booking,
    parse_booking,
    window_start,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CONFIG = Config(timedelta(seconds=60), timedelta(seconds=5), timedelta(seconds=60))


def booking(second: float, tickets: int = 1, *, event: str = "ev-1", cancelled: bool = False, order: str = "") -> Booking:
    return Booking(event, "event", order or f"o-{second}-{tickets}", tickets, tickets * 1000, "EUR", cancelled,
                   T0 + timedelta(seconds=second))


class Worker:
    """The domain driven as the handlers drive it: state carried from batch to batch, as the store keeps it."""

    def __init__(self, config: Config = CONFIG) -> None:
        self.config = config
        self.windows: dict[tuple[str, datetime], Window] = {}
        self.tallies: dict[str, EventTally] = {}
        self.partitions = {0: PartitionState("ticket-bookings", 0)}
        self.published: list[WindowResult] = []
        self.corrections = 0
        self.corrected_tickets = 0
        self.offset = 0

    def batch(self, *bookings: Booking, now: datetime | None = None, capacity: int | None = None) -> list[WindowResult]:
        batch = Batch(self.config, self.windows, self.tallies, {"ev-1": capacity} if capacity else {}, self.partitions)
        for b in bookings:
            batch.apply(0, self.offset, b)
            self.offset += 1
        if now is not None:
            batch.close_idle(now)
        out = batch.published
        self.corrections += len(batch.corrections)
        self.corrected_tickets += sum(c.booking.sign * c.booking.ticket_count for c in batch.corrections)
        self.published.extend(out)
        return out


def test_windows_are_aligned_to_the_minute() -> None:
    assert window_start(T0 + timedelta(seconds=59.999), timedelta(minutes=1)) == T0
    assert window_start(T0 + timedelta(seconds=60), timedelta(minutes=1)) == T0 + timedelta(minutes=1)
    assert window_start(T0 - timedelta(microseconds=1), timedelta(minutes=1)) == T0 - timedelta(minutes=1)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.sampled_from([1, 5, 60, 300, 3600]))
def test_every_time_falls_in_exactly_one_aligned_window(at: datetime, size: int) -> None:
    start = window_start(at, timedelta(seconds=size))
    assert start <= at < start + timedelta(seconds=size)
    assert (start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() % size == 0


def test_a_window_is_emitted_once_the_watermark_passes_its_end() -> None:
    worker = Worker()
    assert worker.batch(booking(10, 2), booking(50, 3), booking(64)) == []  # watermark 59 < 60
    [result] = worker.batch(booking(65, 1))  # watermark 60: the first minute is complete
    assert (result.window_start, result.window_end) == (T0, T0 + timedelta(minutes=1))
    assert (result.total_tickets, result.orders, result.revenue_minor, result.revision) == (5, 2, 5000, 1)


def test_a_late_booking_within_the_allowed_lateness_revises_the_window() -> None:
    worker = Worker()
    worker.batch(booking(10), booking(70))
    first, second = worker.batch(booking(30, 4), booking(40, 1))  # each late booking: its own revision
    assert (first.total_tickets, first.orders, first.revision) == (5, 2, 2)
    assert (second.total_tickets, second.orders, second.revision) == (6, 3, 3)
    [again] = worker.batch(booking(59, 1))
    assert (again.total_tickets, again.revision) == (7, 4)


def test_a_booking_later_than_the_allowed_lateness_is_a_correction_not_lost() -> None:
    worker = Worker()
    worker.batch(booking(10), booking(126))  # watermark 121 >= 60 + 60
    assert worker.batch(booking(20, 5)) == []
    assert worker.corrections == 1
    assert worker.tallies["ev-1"].sold == 7  # the event's total still counts it
    assert [r.total_tickets for r in worker.published if r.window_start == T0] == [1]


def test_a_cancellation_subtracts_in_the_window_of_its_own_time() -> None:
    worker = Worker()
    worker.batch(booking(10, 3, order="a"), booking(70, 1), booking(75, 3, cancelled=True, order="a"), booking(130))
    by_window = {r.window_start: r for r in worker.published}
    assert by_window[T0].total_tickets == 3
    minute = by_window[T0 + timedelta(minutes=1)]
    assert (minute.total_tickets, minute.orders, minute.revenue_minor) == (-2, 0, -2000)


def test_a_quiet_stream_closes_by_the_wall_clock_after_the_bound() -> None:
    worker = Worker()
    worker.batch(booking(10))
    assert worker.batch(now=T0 + timedelta(seconds=64)) == []
    [result] = worker.batch(now=T0 + timedelta(seconds=65))
    assert result.revision == 1
    [late] = worker.batch(booking(30))  # watermark 25: closed by the clock, so this is late: a revision
    assert (late.total_tickets, late.revision) == (2, 2)


def test_sold_out_is_the_booking_that_reached_capacity_and_ends_when_seats_come_back() -> None:
    worker = Worker()
    worker.batch(booking(1, 4, order="a"), booking(2, 6, order="b"), booking(3, 1, order="c"), capacity=10)
    tally = worker.tallies["ev-1"]
    assert (tally.sold, tally.sold_out_at, tally.first_sale_at) == (11, T0 + timedelta(seconds=2), T0 + timedelta(seconds=1))
    worker.batch(booking(4, 6, cancelled=True, order="b"), capacity=10)
    assert tally.sold == 5 and tally.sold_out_at is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("nope", "not an object"),
        ({"status": "pending"}, "'status'"),
        ({"status": "confirmed", "kind": "bus"}, "'kind'"),
        ({"status": "confirmed", "currency": "EURO"}, "'currency'"),
        ({"status": "confirmed", "currency": "EUR", "timestamp": "yesterday"}, "'timestamp'"),
        ({"status": "confirmed", "currency": "EUR", "timestamp": "2026-12-01T10:00:00"}, "'timestamp'"),
        ({"status": "confirmed", "currency": "EUR", "timestamp": "2026-12-01T10:00:00Z", "event_id": ""}, "'event_id'"),
        ({"status": "confirmed", "currency": "EUR", "timestamp": "2026-12-01T10:00:00Z", "event_id": "e",
          "order_id": "o", "ticket_count": "2", "amount_minor": 1}, "'ticket_count'"),
        ({"status": "confirmed", "currency": "EUR", "timestamp": "2026-12-01T10:00:00Z", "event_id": "e",
          "order_id": "o", "ticket_count": 2, "amount_minor": -1}, "'amount_minor'"),
    ],
)
def test_malformed_bookings_say_why(data: object, reason: str) -> None:
    with pytest.raises(MalformedBooking, match=reason):
        parse_booking(data)


def test_a_booking_from_the_contract_parses() -> None:
    parsed = parse_booking({"event_id": "run-1", "user_id": "u", "order_id": "o", "ticket_count": 2,
                            "amount_minor": 9000, "currency": "INR", "status": "cancelled",
                            "timestamp": "2026-12-01T10:00:01.250000Z", "kind": "train"})
    assert parsed.kind == "train" and parsed.cancelled and parsed.at == T0 + timedelta(seconds=1.25)


ODD_VALUES = st.sampled_from([
    None, "", "x", "EUR", "INR", "EURO", 0, 2, -1, True, False, 2.0, "2", [], {}, "event", "train", "bus",
    "confirmed", "cancelled", "pending", "2026-12-01T10:00:00Z", "2026-12-01T10:00:00", "2026-12-01T10:00:00.5+05:30",
    "2026-12-01T10:00:00+00:00", "yesterday",
])
VALID = {"event_id": "ev-1", "user_id": "u", "order_id": "o-1", "ticket_count": 2, "amount_minor": 9000,
         "currency": "EUR", "status": "confirmed", "timestamp": "2026-12-01T10:00:01.250Z", "kind": "event"}


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALID)), ODD_VALUES, max_size=4),
       st.sets(st.sampled_from(sorted(VALID)), max_size=2))
def test_the_short_path_for_well_formed_bookings_accepts_exactly_what_the_checks_accept(
    changes: dict[str, object], removed: set[str]
) -> None:
    data = {k: v for k, v in {**VALID, **changes}.items() if k not in removed}
    try:
        expected: Booking | str = _checked_booking(data)
    except MalformedBooking as exc:
        expected = str(exc)
    try:
        got: Booking | str = parse_booking(data)
    except MalformedBooking as exc:
        got = str(exc)
    assert got == expected
    if isinstance(got, Booking):
        assert got.at.tzinfo is UTC


# Invariants ---------------------------------------------------------------------------------------------------

arrivals = st.lists(
    st.tuples(st.integers(0, 600_000), st.integers(0, 4_999), st.integers(1, 4), st.booleans(), st.sampled_from(["a", "b"])),
    min_size=1, max_size=120,
)


def _stream(items: list[tuple[int, int, int, bool, str]]) -> list[Booking]:
    """Bookings at times (ms) arriving with a delay below the bound (5 s), in arrival order."""
    ordered = sorted(items, key=lambda i: i[0] + i[1])
    return [booking(ms / 1000, n, event=f"ev-{e}", cancelled=c, order=f"o{k}")
            for k, (ms, _delay, n, c, e) in enumerate(ordered)]


@settings(max_examples=150, deadline=None)
@given(arrivals, st.lists(st.integers(1, 30), min_size=1, max_size=10))
def test_within_the_bound_every_window_is_emitted_once_with_its_exact_totals(
    items: list[tuple[int, int, int, bool, str]], cuts: list[int]
) -> None:
    stream = _stream(items)
    worker, position = Worker(), 0
    for size in cuts:  # any batching: the state goes through the "store" between batches
        worker.batch(*stream[position : position + size])
        position += size
    worker.batch(*stream[position:])
    worker.batch(now=T0 + timedelta(days=1))  # the quiet stream's clock closes whatever is left
    expected: dict[tuple[str, datetime], int] = {}
    for b in stream:
        key = (b.event_id, window_start(b.at, CONFIG.window))
        expected[key] = expected.get(key, 0) + b.sign * b.ticket_count
    assert worker.corrections == 0
    assert sorted((r.event_id, r.window_start) for r in worker.published) == sorted(expected)
    assert {(r.event_id, r.window_start): r.total_tickets for r in worker.published} == expected
    assert {r.revision for r in worker.published} == {1}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400_000), st.integers(1, 4)), min_size=1, max_size=80))
def test_whatever_the_disorder_nothing_is_lost(items: list[tuple[int, int]]) -> None:
    """Out of order far beyond the bound and the lateness: windows plus corrections hold every ticket, and
    each revision of a window is published with a higher number than the one before."""
    worker = Worker()
    stream = [booking(ms / 1000, n, order=f"o{k}") for k, (ms, n) in enumerate(items)]
    for b in stream:
        worker.batch(b)
    worker.batch(now=T0 + timedelta(days=1))
    latest: dict[datetime, WindowResult] = {}
    for r in worker.published:
        assert r.window_start not in latest or r.revision == latest[r.window_start].revision + 1
        latest[r.window_start] = r
    assert all(w.emitted for w in worker.windows.values())
    in_windows = sum(r.total_tickets for r in latest.values())
    assert in_windows + worker.corrected_tickets == sum(n for _, n in items) == worker.tallies["ev-1"].sold


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400_000), st.integers(1, 4), st.sampled_from(["a", "b"])), min_size=1,
                max_size=80),
       st.lists(st.integers(1, 20), min_size=1, max_size=12))
def test_the_results_do_not_depend_on_how_the_log_is_cut_into_batches(
    items: list[tuple[int, int, str]], cuts: list[int]
) -> None:
    """What a restarted worker relies on: replaying the log in other batches publishes the same sequence."""
    stream = [booking(ms / 1000, n, event=f"ev-{e}", order=f"o{k}") for k, (ms, n, e) in enumerate(items)]
    whole = Worker()
    whole.batch(*stream)
    pieces, position = Worker(), 0
    for size in cuts:
        pieces.batch(*stream[position : position + size])
        position += size
    pieces.batch(*stream[position:])
    assert pieces.published == whole.published
    assert pieces.corrections == whole.corrections
