"""Catalog rules without I/O: seat maps, routes, segments, fares, cursors and the published payloads."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.catalog import domain, timetable
from boxoffice.catalog.domain import EventDraft, RowDraft, SectionDraft
from boxoffice.catalog.timetable import FareRule, Stop, TrainClass, TrainLayout
from boxoffice.platform.pagination import InvalidCursor

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def counter() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"id-{next(numbers)}"


def draft(*sections: SectionDraft, starts_at: datetime | None = None) -> EventDraft:
    return EventDraft("Show", "concert", "Hall", "Paris", starts_at or NOW + timedelta(days=3), "EUR", sections)


def layout(stops: list[Stop] | None = None, *, departure_minute: int = 22 * 60) -> TrainLayout:
    new_id = counter()
    stops = stops or [
        Stop("NDLS", None, 0, 0),
        Stop("KOTA", 270, 280, 465),
        Stop("BRC", 640, 650, 994),
        Stop("BCT", 940, None, 1386),
    ]
    classes = (
        TrainClass("3A", "AC 3 Tier", FareRule(20_000, 180), (timetable.build_coach(new_id, "B1", 4),)),
        TrainClass("1A", "First AC", FareRule(50_000, 440), (timetable.build_coach(new_id, "H1", 2),)),
    )
    return TrainLayout("train-1", "12952", "Rajdhani", "INR", departure_minute, tuple(stops), classes)


# Events and seat maps.
def test_a_reserved_plan_has_one_seat_per_row_place_and_capacity_equal_to_its_seats() -> None:
    plan = domain.plan_event(draft(SectionDraft("Stalls", 4500, rows=(RowDraft("A", 3), RowDraft("B", 2)))), counter())
    (section,) = plan.sections
    assert section.capacity == len(section.seats) == 5
    assert [s.label for s in section.seats] == ["A-1", "A-2", "A-3", "B-1", "B-2"]
    ids = [plan.id, section.id, *(s.id for s in section.seats)]
    assert len(set(ids)) == len(ids)
    assert plan.draft.seating == "reserved"


def test_event_published_has_the_contract_shape() -> None:
    plan = domain.plan_event(
        draft(SectionDraft("Floor", 4500, capacity=100), SectionDraft("Balcony", 3000, capacity=50)), counter()
    )
    data = domain.event_published(plan)
    assert set(data) == {
        "event_id",
        "name",
        "category",
        "venue",
        "city",
        "starts_at",
        "timezone",
        "address",
        "currency",
        "seating",
        "sections",
    }
    assert data["starts_at"] == "2026-11-25T12:00:00Z" and data["seating"] == "general"
    assert data["timezone"] == "UTC"  # a draft without a zone: the venue's, UTC for a new venue
    assert data["sections"][0] == {
        "section_id": plan.sections[0].id,
        "name": "Floor",
        "price": 4500,
        "capacity": 100,
        "seats": [],
    }
    assert plan.price_from == 3000 and plan.capacity == 150


@pytest.mark.parametrize(
    ("sections", "reason"),
    [
        ((SectionDraft("A", 1, capacity=1), SectionDraft("a", 1, capacity=1)), "section names must be unique"),
        ((SectionDraft("A", 1, capacity=1), SectionDraft("B", 1, rows=(RowDraft("A", 1),))), "not a mix"),
        ((SectionDraft("A", 1, rows=(RowDraft("A", 1), RowDraft("A", 2))),), "row labels"),
        ((SectionDraft("A", 1, rows=tuple(RowDraft(str(i), 500) for i in range(21))),), "at most 10000"),
    ],
)
def test_seat_map_problems(sections: tuple[SectionDraft, ...], reason: str) -> None:
    with pytest.raises(domain.InvalidSeatMap, match=reason):
        domain.check_event_draft(draft(*sections), now=NOW)


def test_an_event_must_start_in_the_future() -> None:
    with pytest.raises(domain.Unprocessable) as caught:
        domain.check_event_draft(draft(SectionDraft("A", 1, capacity=1), starts_at=NOW), now=NOW)
    assert caught.value.slug == "starts-in-past"
    domain.check_event_draft(draft(SectionDraft("A", 1, capacity=1), starts_at=NOW + timedelta(seconds=1)), now=NOW)


# Cursors.
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.uuids(),
)
def test_cursor_round_trips(when: datetime, item_id: uuid.UUID) -> None:
    assert domain.decode_cursor(domain.encode_cursor(when, str(item_id))) == (when, str(item_id))


@pytest.mark.parametrize("cursor", ["", "not-a-cursor!", "e30", domain.encode_cursor(NOW, "0196b5c2-7d3e-7a10-8f00-1234567890ab")[:-3], domain.encode_cursor(NOW, "x"), "WzEsMl0"])
def test_a_cursor_we_did_not_give_out_is_a_400(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as caught:
        domain.decode_cursor(cursor)
    assert caught.value.status == 400


# Routes, segments, fares.
def test_fare_is_base_plus_distance_of_the_segment() -> None:
    train = layout()
    third = train.classes[0]
    assert train.fare(third, 0, 3) == 20_000 + 180 * 1386
    assert train.fare(third, 1, 2) == 20_000 + 180 * (994 - 465)


def test_segment_fares_cover_every_ordered_stop_pair_and_only_those() -> None:
    train = layout()
    fares = timetable.segment_fares(train, train.classes[1])
    stations = train.stations
    assert set(fares) == {f"{a}>{b}" for i, a in enumerate(stations) for b in stations[i + 1 :]}
    assert fares["KOTA>BCT"] == 50_000 + 440 * (1386 - 465)
    assert "BCT>KOTA" not in fares


@given(st.lists(st.sampled_from("ABCDEFGH"), min_size=2, max_size=8, unique=True), st.data())
def test_a_train_serves_origin_to_destination_only_in_route_order(stations: list[str], data: st.DataObject) -> None:
    origin, destination = data.draw(st.sampled_from(stations)), data.draw(st.sampled_from(stations))
    expected = stations.index(origin) < stations.index(destination)
    assert timetable.serves(stations, origin, destination) is expected
    assert not timetable.serves(stations, origin, "Z")


@pytest.mark.parametrize(
    ("origin", "destination", "message"),
    [("BCT", "NDLS", "reaches NDLS before BCT"), ("KOTA", "KOTA", "must differ"), ("KOTA", "HWH", "not stop at HWH")],
)
def test_invalid_segments(origin: str, destination: str, message: str) -> None:
    with pytest.raises(timetable.InvalidSegment, match=message):
        timetable.segment(layout().stations, origin, destination)


@pytest.mark.parametrize(
    ("stops", "reason"),
    [
        ([Stop("A", None, 0, 0)], "at least two stops"),
        ([Stop("A", None, 0, 0), Stop("A", 10, None, 5)], "only once"),
        ([Stop("A", None, 5, 0), Stop("B", 10, None, 5)], "first stop"),
        ([Stop("A", None, 0, 0), Stop("B", 10, 12, 5)], "last stop"),
        ([Stop("A", None, 0, 0), Stop("B", 10, None, 0)], "distance must grow"),
        ([Stop("A", None, 0, 0), Stop("B", 10, 20, 5), Stop("C", 15, None, 9)], "arrive at C after leaving B"),
        ([Stop("A", None, 0, 0), Stop("B", 10, 5, 5), Stop("C", 15, None, 9)], "cannot leave B before arriving"),
        ([Stop("A", None, 0, 0), Stop("B", None, 5, 5), Stop("C", 15, None, 9)], "needs an arrival and a departure"),
    ],
)
def test_route_problems(stops: list[Stop], reason: str) -> None:
    assert any(reason in r for r in timetable.route_problems(stops)), timetable.route_problems(stops)


def test_a_good_route_has_no_problems_and_duplicate_coaches_are_refused() -> None:
    assert timetable.layout_problems(layout()) == []
    train = layout()
    twice = TrainLayout(
        train.id,
        train.number,
        train.name,
        train.currency,
        train.departure_minute,
        train.stops,
        (train.classes[0], TrainClass("2A", "AC 2", FareRule(1, 1), train.classes[0].coaches)),
    )
    with pytest.raises(timetable.InvalidRoute, match="coach labels must be unique"):
        timetable.check_layout(twice)


def test_run_published_has_the_contract_shape_and_seat_ids_are_stable_across_runs() -> None:
    train = layout()
    first = timetable.run_published(train, "run-1", date(2026, 12, 1))
    second = timetable.run_published(train, "run-2", date(2026, 12, 2))
    assert set(first) == {"run_id", "train_id", "train_number", "name", "date", "currency", "stops", "classes"}
    assert first["date"] == "2026-12-01" and first["currency"] == "INR"
    assert first["stops"][0] == {
        "station": "NDLS",
        "index": 0,
        "arrives_at": None,
        "departs_at": "2026-12-01T22:00:00Z",
        "distance_km": 0,
    }
    assert first["stops"][-1]["arrives_at"] == "2026-12-02T13:40:00Z" and first["stops"][-1]["departs_at"] is None
    third = first["classes"][0]
    assert len(third["fares"]) == 6 and third["fares"]["NDLS>BCT"] == 20_000 + 180 * 1386
    assert third["coaches"][0]["seats"][0] == {"seat_id": train.classes[0].coaches[0].seats[0][0], "label": "B1-1"}
    assert first["classes"] == second["classes"]  # the same seat ids on every run of a train


def test_overnight_trains_are_looked_up_from_earlier_run_dates() -> None:
    assert timetable.max_days_to_reach(layout(departure_minute=22 * 60)) == 1  # leaves BRC after midnight
    assert timetable.max_days_to_reach(layout(departure_minute=0)) == 0


def test_run_dates() -> None:
    today = date(2026, 11, 22)
    assert timetable.run_dates(today, today + timedelta(days=2), today=today) == [
        today,
        today + timedelta(days=1),
        today + timedelta(days=2),
    ]
    for first, last in [
        (today - timedelta(days=1), today),
        (today, today - timedelta(days=1)),
        (today, today + timedelta(days=400)),
    ]:
        with pytest.raises(timetable.InvalidDate):
            timetable.run_dates(first, last, today=today)


def test_an_event_at_most_three_years_ahead() -> None:
    far = NOW + timedelta(days=domain.MAX_DAYS_AHEAD)
    domain.check_event_draft(draft(SectionDraft("A", 1, capacity=1), starts_at=far), now=NOW)
    with pytest.raises(domain.Unprocessable) as caught:
        domain.check_event_draft(draft(SectionDraft("A", 1, capacity=1), starts_at=far + timedelta(seconds=1)), now=NOW)
    assert caught.value.slug == "starts-too-late"


def test_a_seat_map_beyond_the_seat_limit_is_refused() -> None:
    rows = tuple(RowDraft(f"R{i}", 500) for i in range(domain.MAX_RESERVED_SEATS // 500 + 1))
    with pytest.raises(domain.InvalidSeatMap, match="at most"):
        domain.check_event_draft(draft(SectionDraft("Hall", 10, rows=rows)), now=NOW)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 100_000)), min_size=1, max_size=8))
def test_a_general_plan_has_no_seats_and_sums_its_sections(sections: list[tuple[int, int]]) -> None:
    plan = domain.plan_event(
        draft(*(SectionDraft(f"S{i}", price, capacity=cap) for i, (price, cap) in enumerate(sections))), counter()
    )
    assert plan.draft.seating == "general" and all(not s.seats for s in plan.sections)
    assert plan.capacity == sum(cap for _, cap in sections)
    assert plan.price_from == min(price for price, _ in sections)
    ids = [plan.id, *(s.id for s in plan.sections)]
    assert len(set(ids)) == len(ids)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_event_times_are_utc_whole_seconds_with_z(when: datetime) -> None:
    text = domain.rfc3339(when)
    assert text is not None and text.endswith("Z") and "." not in text
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == when.replace(microsecond=0)
    assert domain.rfc3339(None) is None


def test_stop_times_follow_the_run_departure_and_the_ends_have_one_side() -> None:
    train = layout()
    departs = timetable.run_departure(date(2026, 12, 1), train.departure_minute)
    assert departs == datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    first, middle, last = train.stops[0], train.stops[1], train.stops[-1]
    assert timetable.stop_times(departs, first) == (None, departs)
    assert timetable.stop_times(departs, middle) == (departs + timedelta(minutes=270), departs + timedelta(minutes=280))
    assert timetable.stop_times(departs, last) == (departs + timedelta(minutes=940), None)
