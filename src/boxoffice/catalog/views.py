"""What catalog answers (ARCHITECTURE.md section 5): the Out schemas, shared by handlers, cache and API.

Handlers build these with capacity-based availability (what a just-published event or run has); that
form is what the read cache keeps. Live availability from booking is laid over a copy per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from boxoffice.catalog import timetable
from boxoffice.catalog.domain import Category, EventRecord, Seating, SeatRecord, SeatStatus, SectionRecord, Station
from boxoffice.catalog.timetable import Run, TrainLayout
from boxoffice.platform.localtime import DEFAULT_ZONE

TIMEZONE = "the IANA time zone of the place (times stay RFC 3339 UTC; show them in this zone)"


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class EventSummaryOut(Out):
    id: str
    name: str
    category: Category
    venue: str
    city: str
    starts_at: datetime
    timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE, examples=["Europe/Amsterdam"])
    address: str | None = None
    seating: Seating
    currency: str
    price_from: int
    available: int
    availability_stale: bool = False
    """True when booking did not answer in time: ``available`` is the last count seen (or the capacity)."""
    queued: bool = False  # a queued sale: buyers join the waiting room's line (docs/waiting-room.md)
    on_sale_at: datetime | None = None
    image_url: str | None = None


class SectionOut(Out):
    id: str
    name: str
    price: int
    capacity: int
    available: int


class SeatOut(Out):
    id: str
    section_id: str
    row: str
    number: int
    label: str
    price: int
    status: SeatStatus


class EventOut(EventSummaryOut):
    description: str | None = None
    doors_at: datetime | None = None
    venue_address: str | None = None
    sections: list[SectionOut]
    seats: list[SeatOut]  # empty for general admission


class EventPageOut(Out):
    items: list[EventSummaryOut]
    next_cursor: str | None


class StationOut(Out):
    code: str
    name: str
    city: str
    timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE, examples=["Asia/Kolkata"])


class StationPageOut(Out):
    items: list[StationOut]
    next_cursor: str | None = None


class ClassOptionOut(Out):
    code: str
    name: str
    fare: int
    available: int


class TrainOptionOut(Out):
    run_id: str
    train_number: str
    name: str
    currency: str
    origin: str
    destination: str
    departs_at: datetime
    arrives_at: datetime
    origin_timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)
    destination_timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)
    classes: list[ClassOptionOut]


class TrainOptionPageOut(Out):
    items: list[TrainOptionOut]
    next_cursor: str | None = None


class RunDepartureOut(Out):
    """A run from its first station to its last: what a gate or a conductor picks the train by."""

    run_id: str
    train_number: str
    name: str
    origin: str
    origin_name: str | None = None
    destination: str
    destination_name: str | None = None
    departs_at: datetime
    arrives_at: datetime
    origin_timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)
    destination_timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)


class RunDeparturePageOut(Out):
    items: list[RunDepartureOut]
    next_cursor: str | None = None


class RunStopOut(Out):
    station: str
    name: str | None = None
    timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)
    arrives_at: datetime | None
    departs_at: datetime | None


class CoachSeatOut(Out):
    id: str
    label: str
    status: SeatStatus


class CoachOut(Out):
    id: str
    label: str
    seats: list[CoachSeatOut]


class RunClassOut(ClassOptionOut):
    coaches: list[CoachOut]


class RunOut(Out):
    run_id: str
    train_id: str
    train_number: str
    name: str
    date: date
    currency: str
    origin: str
    destination: str
    departs_at: datetime
    arrives_at: datetime
    origin_timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)
    destination_timezone: str = Field(default=DEFAULT_ZONE, description=TIMEZONE)
    stops: list[RunStopOut]
    classes: list[RunClassOut]
    queued: bool = False  # a queued booking day: buyers go through the waiting room (/api/queue/{run_id})
    on_sale_at: datetime | None = None


class TrainStopOut(Out):
    station: str
    arrival_minutes: int | None
    departure_minutes: int | None
    distance_km: int


class TrainCoachOut(Out):
    id: str
    label: str
    seats: int


class TrainClassOut(Out):
    code: str
    name: str
    base_fare: int
    per_km_fare: int
    coaches: list[TrainCoachOut]


class TrainOut(Out):
    id: str
    number: str
    name: str
    currency: str
    departure_time: str  # "HH:MM" UTC
    stops: list[TrainStopOut]
    classes: list[TrainClassOut]


class RunSummaryOut(Out):
    run_id: str
    date: date
    departs_at: datetime
    arrives_at: datetime


class RunPageOut(Out):
    items: list[RunSummaryOut]
    next_cursor: str | None = None


# Building the views from stored rows and train layouts, with capacity-based availability.
def summary_view(row: EventRecord) -> EventSummaryOut:
    return EventSummaryOut(
        id=row.id,
        name=row.name,
        category=row.category,
        venue=row.venue,
        city=row.city,
        starts_at=row.starts_at,
        timezone=row.timezone,
        address=row.address,
        seating=row.seating,
        currency=row.currency,
        price_from=row.price_from,
        available=row.capacity,
        queued=row.on_sale_at is not None,
        on_sale_at=row.on_sale_at,
        image_url=row.details.image_url,
    )


def event_view(row: EventRecord, sections: Sequence[SectionRecord], seats: Sequence[SeatRecord]) -> EventOut:
    return EventOut(
        **summary_view(row).model_dump(),
        description=row.details.description,
        doors_at=row.details.doors_at,
        venue_address=row.details.venue_address or row.address,
        sections=[
            SectionOut(id=s.id, name=s.name, price=s.price, capacity=s.capacity, available=s.capacity) for s in sections
        ],
        seats=[
            SeatOut(
                id=t.id, section_id=t.section_id, row=t.row, number=t.number, label=t.label, price=t.price,
                status="available",
            )
            for t in seats
        ],
    )


def train_view(layout: TrainLayout) -> TrainOut:
    hours, minutes = divmod(layout.departure_minute, 60)
    return TrainOut(
        id=layout.id,
        number=layout.number,
        name=layout.name,
        currency=layout.currency,
        departure_time=f"{hours:02d}:{minutes:02d}",
        stops=[
            TrainStopOut(station=s.station, arrival_minutes=s.arrival_minutes, departure_minutes=s.departure_minutes,
                         distance_km=s.distance_km)
            for s in layout.stops
        ],
        classes=[
            TrainClassOut(
                code=c.code, name=c.name, base_fare=c.rule.base, per_km_fare=c.rule.per_km,
                coaches=[TrainCoachOut(id=k.id, label=k.label, seats=len(k.seats)) for k in c.coaches],
            )
            for c in layout.classes
        ],
    )


def _segment_times(layout: TrainLayout, run: Run, start: int, end: int) -> tuple[datetime, datetime]:
    _, departs = timetable.stop_times(run.departs_at, layout.stops[start])
    arrives, _ = timetable.stop_times(run.departs_at, layout.stops[end])
    assert departs is not None and arrives is not None  # a segment starts where the train leaves, ends where it arrives
    return departs, arrives


def station_view(station: Station) -> StationOut:
    return StationOut(code=station.code, name=station.name, city=station.city, timezone=station.timezone)


def _zone_of(stations: Mapping[str, StationOut], code: str) -> str:
    known = stations.get(code)
    return known.timezone if known else DEFAULT_ZONE


def train_option(
    layout: TrainLayout, run: Run, origin: str, destination: str, stations: Mapping[str, StationOut]
) -> TrainOptionOut:
    start, end = timetable.segment(layout.stations, origin, destination)
    departs, arrives = _segment_times(layout, run, start, end)
    return TrainOptionOut(
        run_id=run.id, train_number=layout.number, name=layout.name, currency=layout.currency, origin=origin,
        destination=destination, departs_at=departs, arrives_at=arrives,
        origin_timezone=_zone_of(stations, origin), destination_timezone=_zone_of(stations, destination),
        classes=[
            ClassOptionOut(code=c.code, name=c.name, fare=layout.fare(c, start, end), available=c.capacity)
            for c in layout.classes
        ],
    )


def run_departure(layout: TrainLayout, run: Run, stations: Mapping[str, StationOut]) -> RunDepartureOut:
    origin, destination = layout.stations[0], layout.stations[-1]
    departs, arrives = _segment_times(layout, run, 0, len(layout.stops) - 1)
    first, last = stations.get(origin), stations.get(destination)
    return RunDepartureOut(
        run_id=run.id, train_number=layout.number, name=layout.name, origin=origin,
        origin_name=first.name if first else None, destination=destination,
        destination_name=last.name if last else None, departs_at=departs, arrives_at=arrives,
        origin_timezone=_zone_of(stations, origin), destination_timezone=_zone_of(stations, destination),
    )


def run_view(layout: TrainLayout, run: Run, start: int, end: int, stations: Mapping[str, StationOut]) -> RunOut:
    departs, arrives = _segment_times(layout, run, start, end)
    stops = []
    for stop in layout.stops:
        arrives_at, departs_at = timetable.stop_times(run.departs_at, stop)
        known = stations.get(stop.station)
        stops.append(RunStopOut(station=stop.station, name=known.name if known else None,
                                timezone=_zone_of(stations, stop.station), arrives_at=arrives_at,
                                departs_at=departs_at))
    classes = [
        RunClassOut(
            code=c.code, name=c.name, fare=layout.fare(c, start, end), available=c.capacity,
            coaches=[
                CoachOut(id=k.id, label=k.label,
                         seats=[CoachSeatOut(id=s, label=label, status="available") for s, label in k.seats])
                for k in c.coaches
            ],
        )
        for c in layout.classes
    ]
    return RunOut(
        run_id=run.id, train_id=layout.id, train_number=layout.number, name=layout.name, date=run.run_date,
        currency=layout.currency, origin=layout.stops[start].station, destination=layout.stops[end].station,
        departs_at=departs, arrives_at=arrives, origin_timezone=_zone_of(stations, layout.stops[start].station),
        destination_timezone=_zone_of(stations, layout.stops[end].station), stops=stops, classes=classes,
        queued=run.on_sale_at is not None, on_sale_at=run.on_sale_at,
    )
