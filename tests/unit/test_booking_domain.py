"""Booking's rules on their own (booking/domain.py): no database, no network.

Properties are checked against a brute-force statement of the same rule, so a clever rewrite of the rule
that changes what it means fails here before it oversells anywhere.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.booking import domain
from boxoffice.booking.domain import (
    HOLD_MOVES,
    ORDER_MOVES,
    HistoryEntry,
    Hold,
    HoldKind,
    HoldStatus,
    Item,
    Limits,
    Order,
    OrderKind,
    OrderStatus,
    Stop,
)

T0 = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)
STATIONS = ["NDLS", "KOTA", "RTM", "BCT", "SURAT"]


def spans(max_stop: int = 8) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(0, max_stop), st.integers(0, max_stop)).filter(lambda s: s[0] < s[1]).map(tuple)


# Train segments.
@given(spans(), spans())
def test_two_journeys_overlap_exactly_when_they_share_a_stretch_of_track(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    shared_stretches = set(range(*a)) & set(range(*b))  # stretch i runs from stop i to stop i + 1
    assert domain.overlaps(*a, *b) == bool(shared_stretches)
    assert domain.overlaps(*a, *b) == domain.overlaps(*b, *a)


def test_a_seat_sold_a_to_b_is_free_b_to_c_and_taken_a_to_c() -> None:
    assert not domain.overlaps(0, 1, 1, 2)
    assert domain.overlaps(0, 2, 0, 1) and domain.overlaps(0, 2, 1, 2)


@given(st.integers(2, len(STATIONS)), st.data())
def test_a_segment_runs_forward_between_two_stops_of_the_train(count: int, data: st.DataObject) -> None:
    stops = [Stop(code, i) for i, code in enumerate(STATIONS[:count])]
    origin = data.draw(st.sampled_from(STATIONS))
    destination = data.draw(st.sampled_from(STATIONS))
    served = {s.station: s.index for s in stops}
    if origin in served and destination in served and served[origin] < served[destination]:
        segment = domain.segment_of(stops, origin, destination)
        assert (segment.from_index, segment.to_index) == (served[origin], served[destination])
        assert (segment.origin, segment.destination) == (origin, destination)
    else:
        with pytest.raises(domain.InvalidSegment):
            domain.segment_of(stops, origin, destination)


def test_segment_errors_name_the_problem() -> None:
    stops = [Stop("NDLS", 0), Stop("KOTA", 1)]
    with pytest.raises(domain.InvalidSegment, match="does not stop at BCT"):
        domain.segment_of(stops, "NDLS", "BCT")
    with pytest.raises(domain.InvalidSegment, match="reaches NDLS before KOTA"):
        domain.segment_of(stops, "KOTA", "NDLS")


def test_a_fare_is_published_per_ordered_pair_of_stops() -> None:
    segment = domain.Segment("NDLS", "KOTA", 0, 1)
    assert domain.fare_for({"NDLS>KOTA": 120000}, segment) == 120000
    with pytest.raises(domain.InvalidSegment):
        domain.fare_for({"KOTA>NDLS": 120000}, segment)


# Per-customer limits.
@given(
    max_holds=st.integers(1, 5),
    max_tickets=st.integers(1, 20),
    active=st.integers(0, 6),
    tickets=st.integers(0, 25),
    requested=st.integers(1, 10),
)
def test_one_more_hold_is_refused_exactly_when_it_breaks_a_limit(
    max_holds: int, max_tickets: int, active: int, tickets: int, requested: int
) -> None:
    limits = Limits(max_tickets_per_event=max_tickets, max_active_holds=max_holds)
    too_many_holds = active + 1 > max_holds
    too_many_tickets = tickets + requested > max_tickets
    if not (too_many_holds or too_many_tickets):
        domain.check_limits(limits, active_holds=active, tickets_for_event=tickets, requested=requested)
        return
    with pytest.raises(domain.LimitReached) as refused:
        domain.check_limits(limits, active_holds=active, tickets_for_event=tickets, requested=requested)
    problem = refused.value
    assert problem.status == 429 and int(problem.headers["Retry-After"]) > 0
    assert problem.extra["limit"] == ("active_holds" if too_many_holds else "tickets_per_event")


def test_the_ticket_limit_says_how_many_more_one_may_add() -> None:
    with pytest.raises(domain.LimitReached, match="you can add 1"):
        domain.check_limits(Limits(10, 3), active_holds=0, tickets_for_event=9, requested=2)


# When a hold is live, and what a customer sees.
times = st.integers(-3600, 3600).map(lambda s: T0 + timedelta(seconds=s))


@given(st.sampled_from(list(HoldStatus)), times)
def test_a_hold_is_live_only_while_active_and_before_its_expiry(status: HoldStatus, now: datetime) -> None:
    live = domain.is_live(status, T0, now)
    assert live == (status == HoldStatus.ACTIVE and now < T0)
    seen = domain.hold_status(status, T0, now)
    assert (seen == HoldStatus.ACTIVE) == live
    assert seen == (HoldStatus.EXPIRED if status == HoldStatus.ACTIVE and now >= T0 else status)


@given(st.sampled_from(list(OrderStatus)), times)
def test_a_pending_order_is_seen_expired_once_its_hold_ran_out(status: OrderStatus, now: datetime) -> None:
    seen = domain.order_status(status, T0, now)
    if status == OrderStatus.PENDING_PAYMENT and now >= T0:
        assert seen == OrderStatus.EXPIRED
    else:
        assert seen == status


def test_the_expiry_instant_itself_is_expired() -> None:
    assert not domain.is_live(HoldStatus.ACTIVE, T0, T0)
    assert domain.is_live(HoldStatus.ACTIVE, T0, T0 - timedelta(microseconds=1))


def _hold(status: HoldStatus = HoldStatus.ACTIVE) -> Hold:
    item = Item(None, "Floor", 4500, "Floor")
    return Hold(
        "h1",
        "u1",
        HoldKind.GENERAL,
        "ev",
        "s1",
        2,
        status,
        1,
        T0,
        9000,
        "EUR",
        (item, item),
        T0 - timedelta(minutes=10),
    )


def _order(status: OrderStatus = OrderStatus.PENDING_PAYMENT) -> Order:
    hold = _hold()
    return Order(
        "o1", "h1", "u1", "Ann", status, OrderKind.EVENT, "ev", 9000, "EUR", hold.items, None, hold.created_at, T0, 1
    )


def test_holds_and_orders_are_seen_as_of_a_time_without_changing_what_is_stored() -> None:
    hold, order = _hold(), _order()
    assert hold.seen_at(T0 - timedelta(seconds=1)).status == HoldStatus.ACTIVE
    assert hold.seen_at(T0).status == HoldStatus.EXPIRED and hold.status == HoldStatus.ACTIVE
    assert hold.is_live(T0 - timedelta(seconds=1)) and not hold.is_live(T0)
    assert order.seen_at(T0).status == OrderStatus.EXPIRED and order.status == OrderStatus.PENDING_PAYMENT
    assert _order(OrderStatus.CONFIRMED).seen_at(T0 + timedelta(days=1)).status == OrderStatus.CONFIRMED


# State transitions.
def _reachable(moves: dict[str, frozenset[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in moves[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_hold_state_is_reachable_and_only_active_and_confirmed_move_on() -> None:
    assert set(HOLD_MOVES) == set(HoldStatus)
    assert _reachable(dict(HOLD_MOVES), HoldStatus.ACTIVE) == set(HoldStatus)
    assert {s for s, nxt in HOLD_MOVES.items() if nxt} == {HoldStatus.ACTIVE, HoldStatus.CONFIRMED}
    assert HOLD_MOVES[HoldStatus.CONFIRMED] == {HoldStatus.CANCELLED}  # a sale ends only by cancellation


def test_every_order_state_is_reachable_and_no_state_returns() -> None:
    assert set(ORDER_MOVES) == set(OrderStatus)
    assert _reachable(dict(ORDER_MOVES), OrderStatus.PENDING_PAYMENT) == set(OrderStatus)
    assert not ORDER_MOVES[OrderStatus.EXPIRED] and not ORDER_MOVES[OrderStatus.CANCELLED]


@pytest.mark.parametrize("moves", [HOLD_MOVES, ORDER_MOVES], ids=["holds", "orders"])
def test_no_state_can_be_reached_again_once_left(moves: dict[str, frozenset[str]]) -> None:
    for state, following in moves.items():
        assert state not in following
        for nxt in following:
            assert state not in _reachable(dict(moves), nxt), (state, nxt)


@given(st.sampled_from([HoldStatus.RELEASED, HoldStatus.EXPIRED]))
def test_a_pending_order_follows_its_hold_to_an_allowed_state(hold_to: HoldStatus) -> None:
    assert hold_to in HOLD_MOVES[HoldStatus.ACTIVE]
    after = domain.order_status_after(hold_to)
    assert after in ORDER_MOVES[OrderStatus.PENDING_PAYMENT]
    assert after == (OrderStatus.EXPIRED if hold_to == HoldStatus.EXPIRED else OrderStatus.CANCELLED)


# The merged history.
entries = st.builds(
    HistoryEntry,
    at=st.integers(0, 20).map(lambda s: T0 + timedelta(seconds=s)),
    actor=st.sampled_from(["u1", "system", "payment:p1"]),
    action=st.text(min_size=1, max_size=12),
)


@given(st.lists(st.lists(entries, max_size=6), max_size=4))
def test_the_history_has_every_entry_once_oldest_first_and_keeps_ties_in_source_order(
    sources: list[list[HistoryEntry]],
) -> None:
    merged = domain.merge_history(sources)
    assert sorted(map(id, merged)) == sorted(id(e) for source in sources for e in source)
    assert [e.at for e in merged] == sorted(e.at for e in merged)
    rank = {id(e): (n, i) for n, source in enumerate(sources) for i, e in enumerate(source)}
    for earlier, later in itertools.pairwise(merged):
        if earlier.at == later.at:
            assert rank[id(earlier)] < rank[id(later)]


def test_a_confirmation_is_done_by_the_payment() -> None:
    assert domain.payment_actor("p-123") == "payment:p-123"


# Order numbers and passengers.
def test_order_numbers_are_eight_crockford_characters_and_read_back_as_people_type_them() -> None:
    from boxoffice.booking.domain import CROCKFORD, new_order_number, normalize_order_number

    numbers = {new_order_number() for _ in range(2000)}
    assert len(numbers) == 2000  # 2^40 of them: no clash in a few thousand
    assert all(len(n) == 8 and set(n) <= set(CROCKFORD) for n in numbers)
    assert not set("ILOU") & set(CROCKFORD)
    assert normalize_order_number("k7m2-9qxd") == "K7M29QXD"
    assert normalize_order_number(" K7M2 9QXD ") == "K7M29QXD"
    assert normalize_order_number("O1IL-0000") == "01110000"  # O for 0, I and L for 1
    for bad in ("", "K7M29QX", "K7M29QXDD", "K7M2U9QX", "K7M2_9QX", "K7M29QX\u0000"):
        assert normalize_order_number(bad) is None, bad


def test_train_orders_need_one_printable_name_per_seat_and_events_take_none() -> None:
    from boxoffice.booking.domain import InvalidPassengers, Item, passenger_name, with_passengers

    seats = (Item("s1", "B1-7", 295000, "3A"), Item("s2", "B1-8", 295000, "3A"))
    named = with_passengers(seats, {"s1": "  Asha   Rao", "s2": "李小龙"}, train=True)
    assert [i.passenger for i in named] == ["Asha Rao", "李小龙"]
    for names in ({}, {"s1": "Asha"}, {"s1": "Asha", "s2": "Ravi", "s3": "X"}, {"s1": "Asha", "s2": "\u200b\u0007"}):
        with pytest.raises(InvalidPassengers):
            with_passengers(seats, names, train=True)
    assert with_passengers(seats, {}, train=False) == seats
    with pytest.raises(InvalidPassengers):
        with_passengers(seats, {"s1": "Ann"}, train=False)
    assert passenger_name("x" * 101) is None and passenger_name("   ") is None
