"""Train rules, free of I/O: routes, segments, fares, the layout of a train and what its runs publish.

A train runs the same route every day it runs: stops carry minutes from the run's departure from the first
station, so a run is just a date; its stop times follow. Fares are per class, ``base + per_km * distance``
in minor units, for any ordered pair of stops (a ticket from a stop to a later stop).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from boxoffice.catalog.domain import MAX_DAYS_AHEAD, InvalidDate, InvalidRoute, InvalidSegment, Station, rfc3339
from boxoffice.platform.localtime import DEFAULT_ZONE

MAX_TRAIN_SEATS = 5_000  # per train: every seat travels in each catalog.run-published


@dataclass(frozen=True, slots=True)
class Stop:
    station: str
    arrival_minutes: int | None
    departure_minutes: int | None
    distance_km: int


@dataclass(frozen=True, slots=True)
class FareRule:
    """A class's fare: ``base + per_km * distance`` in minor units."""

    base: int
    per_km: int

    def fare(self, distance_km: int) -> int:
        return self.base + self.per_km * distance_km


@dataclass(frozen=True, slots=True)
class Coach:
    id: str
    label: str
    seats: tuple[tuple[str, str], ...]  # (seat id, label), in seat-number order


@dataclass(frozen=True, slots=True)
class TrainClass:
    code: str
    name: str
    rule: FareRule
    coaches: tuple[Coach, ...]

    @property
    def capacity(self) -> int:
        return sum(len(c.seats) for c in self.coaches)


@dataclass(frozen=True, slots=True)
class TrainLayout:
    """A train as it is stored: route, classes, coaches and seats (seat ids are the same on every run)."""

    id: str
    number: str
    name: str
    currency: str
    departure_minute: int  # UTC minute of the day at which runs leave the first stop
    stops: tuple[Stop, ...]
    classes: tuple[TrainClass, ...]

    @property
    def stations(self) -> list[str]:
        return [s.station for s in self.stops]

    def fare(self, train_class: TrainClass, start: int, end: int) -> int:
        return train_class.rule.fare(self.stops[end].distance_km - self.stops[start].distance_km)


@dataclass(frozen=True, slots=True)
class Run:
    """A train on one date."""

    id: str
    train_id: str
    run_date: date
    departs_at: datetime
    on_sale_at: datetime | None = None  # a queued booking day: buyers wait in the waiting room's line
    admit_per_minute: int | None = None


def route_problems(stops: Sequence[Stop]) -> list[str]:
    """Reasons a route is not a valid timetable; empty when it is."""
    if len(stops) < 2:
        return ["a route needs at least two stops"]
    reasons = []
    if len({s.station for s in stops}) != len(stops):
        reasons.append("a station may appear only once on a route")
    first, last = stops[0], stops[-1]
    if first.arrival_minutes is not None or first.departure_minutes != 0 or first.distance_km != 0:
        reasons.append("the first stop has no arrival, departs at minute 0 and is at km 0")
    if last.departure_minutes is not None or last.arrival_minutes is None:
        reasons.append("the last stop has an arrival and no departure")
    for stop in stops[1:-1]:
        if stop.arrival_minutes is None or stop.departure_minutes is None:
            reasons.append(f"the intermediate stop {stop.station} needs an arrival and a departure")
    for previous, stop in itertools.pairwise(stops):
        if stop.distance_km <= previous.distance_km:
            reasons.append(f"the distance must grow along the route (at {stop.station})")
        arrival, left = stop.arrival_minutes, previous.departure_minutes
        if arrival is not None and left is not None and arrival <= left:
            reasons.append(f"the train must arrive at {stop.station} after leaving {previous.station}")
        if arrival is not None and stop.departure_minutes is not None and stop.departure_minutes < arrival:
            reasons.append(f"the train cannot leave {stop.station} before arriving")
    return reasons


def layout_problems(layout: TrainLayout) -> list[str]:
    reasons = route_problems(layout.stops)
    codes = [c.code for c in layout.classes]
    if len(set(codes)) != len(codes):
        reasons.append("class codes must be unique")
    labels = [coach.label for c in layout.classes for coach in c.coaches]
    if len(set(labels)) != len(labels):
        reasons.append("coach labels must be unique on a train")
    if sum(c.capacity for c in layout.classes) > MAX_TRAIN_SEATS:
        reasons.append(f"a train has at most {MAX_TRAIN_SEATS} seats")
    return reasons


def check_layout(layout: TrainLayout) -> None:
    if reasons := layout_problems(layout):
        raise InvalidRoute("The train is not valid: " + "; ".join(reasons) + ".")


def build_coach(new_id: Callable[[], str], label: str, seats: int) -> Coach:
    return Coach(new_id(), label, tuple((new_id(), f"{label}-{n}") for n in range(1, seats + 1)))


def segment(stations: Sequence[str], origin: str, destination: str) -> tuple[int, int]:
    """Indexes of origin and destination on a route; the train must reach destination after origin."""
    if origin == destination:
        raise InvalidSegment("Origin and destination must differ.")
    for code in (origin, destination):
        if code not in stations:
            raise InvalidSegment(f"This train does not stop at {code}.")
    start, end = stations.index(origin), stations.index(destination)
    if start >= end:
        raise InvalidSegment(f"This train reaches {destination} before {origin}.")
    return start, end


def serves(stations: Sequence[str], origin: str, destination: str) -> bool:
    """True when a train on this route can carry someone from origin to destination."""
    try:
        segment(stations, origin, destination)
    except InvalidSegment:
        return False
    return True


def segment_fares(layout: TrainLayout, train_class: TrainClass) -> dict[str, int]:
    """The fare of every ordered stop pair, keyed ``"ORIGIN>DESTINATION"``."""
    n = len(layout.stops)
    return {
        f"{layout.stops[i].station}>{layout.stops[j].station}": layout.fare(train_class, i, j)
        for i in range(n)
        for j in range(i + 1, n)
    }


def run_departure(run_date: date, departure_minute: int) -> datetime:
    """When a run leaves its first station: the train's time of day (UTC) on the run's date."""
    midnight = datetime(run_date.year, run_date.month, run_date.day, tzinfo=UTC)
    return midnight + timedelta(minutes=departure_minute)


def stop_times(departs_at: datetime, stop: Stop) -> tuple[datetime | None, datetime | None]:
    """(arrives_at, departs_at) of a stop on the run that leaves its first station at ``departs_at``."""

    def at(minutes: int | None) -> datetime | None:
        return None if minutes is None else departs_at + timedelta(minutes=minutes)

    return at(stop.arrival_minutes), at(stop.departure_minutes)


def max_days_to_reach(layout: TrainLayout) -> int:
    """How many days after its run date a train may still leave one of its stops."""
    last = max((s.departure_minutes or 0) for s in layout.stops)
    return (layout.departure_minute + last) // (24 * 60)


def run_dates(first: date, last: date, *, today: date) -> list[date]:
    if last < first:
        raise InvalidDate("The last date comes before the first.")
    if first < today:
        raise InvalidDate("Runs can only be published for today or later.")
    if (last - first).days > 366 or (last - today).days > MAX_DAYS_AHEAD:
        raise InvalidDate("Publish at most a year of runs at once, at most 3 years ahead.")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def check_queue(run: Run, on_sale_at: datetime, *, now: datetime) -> None:
    """A run's booking day can be queued until the train leaves, with the line opening before it does."""
    if run.departs_at <= now:
        raise InvalidDate("This train has left; its booking cannot be queued.")
    if on_sale_at >= run.departs_at:
        raise InvalidDate("queue.on_sale_at must be before the train leaves.")


def run_published(
    layout: TrainLayout,
    run_id: str,
    run_date: date,
    stations: Mapping[str, Station] | None = None,
    *,
    on_sale_at: datetime | None = None,
    admit_per_minute: int | None = None,
) -> dict[str, Any]:
    """The data of ``catalog.run-published`` (docs/contracts.md): booking builds train inventory from it.
    With ``stations`` each stop also carries its station's name and time zone (what a ticket prints); a
    queued booking day adds ``queue`` (and ``capacity``, the seats, for the waiting room)."""
    departs_at = run_departure(run_date, layout.departure_minute)
    stops = []
    for index, stop in enumerate(layout.stops):
        arrives, departs = stop_times(departs_at, stop)
        entry: dict[str, Any] = {
            "station": stop.station,
            "index": index,
            "arrives_at": rfc3339(arrives),
            "departs_at": rfc3339(departs),
            "distance_km": stop.distance_km,
        }
        if stations is not None:
            known = stations.get(stop.station)
            entry["name"] = known.name if known else stop.station
            entry["timezone"] = known.timezone if known else DEFAULT_ZONE
        stops.append(entry)
    classes = [
        {
            "code": c.code,
            "name": c.name,
            "fares": segment_fares(layout, c),
            "coaches": [
                {
                    "coach_id": coach.id,
                    "label": coach.label,
                    "seats": [{"seat_id": seat_id, "label": label} for seat_id, label in coach.seats],
                }
                for coach in c.coaches
            ],
        }
        for c in layout.classes
    ]
    data: dict[str, Any] = {
        "run_id": run_id,
        "train_id": layout.id,
        "train_number": layout.number,
        "name": layout.name,
        "date": run_date.isoformat(),
        "currency": layout.currency,
        "stops": stops,
        "classes": classes,
    }
    if on_sale_at is not None:
        data["queue"] = {"on_sale_at": rfc3339(on_sale_at), "admit_per_minute": admit_per_minute}
        data["capacity"] = sum(c.capacity for c in layout.classes)
    return data
