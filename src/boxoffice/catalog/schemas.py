"""What catalog's HTTP API reads (ARCHITECTURE.md section 5); what it answers is in ``views``."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Day  # RunsIn has a field called date
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from boxoffice.catalog import timetable
from boxoffice.catalog.domain import (
    MAX_SECTION_CAPACITY,
    Category,
    EventDetails,
    EventDraft,
    QueueDraft,
    RowDraft,
    SectionDraft,
    Station,
)
from boxoffice.catalog.timetable import FareRule, Stop, TrainClass, TrainLayout
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.requests import JsonDate, JsonTime, RequestBody

# JSON numbers only (no "12" strings, no true/false) for counts and money.
Money = Annotated[int, Field(strict=True, ge=0, le=100_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
City = Annotated[str, Field(min_length=1, max_length=100)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")]
StationCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,8}$")]
Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,10}$")]
Timezone = Annotated[
    str, Field(min_length=1, max_length=64, description="IANA time zone name", examples=["Europe/Amsterdam"])
]
Minutes = Annotated[int | None, Field(strict=True, ge=0, le=14 * 24 * 60)]


def _in_utc(value: datetime) -> datetime:
    """Any offset, in UTC; a moment that has no UTC form (year 1 at +01:00, 9999-12-31 at -05:00) is invalid."""
    try:
        return value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise ValueError("the time is out of range") from None


Moment = Annotated[JsonTime, AfterValidator(_in_utc)]
# An event's picture: a path on this site (the demo's are under /static/events/) or an https URL.
ImageUrl = Annotated[str, Field(
    max_length=500,
    pattern=r"^(/[A-Za-z0-9._~%-][A-Za-z0-9._~%/-]*|https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~%/?=&+-]*)$",
    description="a path on this site (/static/...) or an https URL",
)]


class In(RequestBody):
    model_config = ConfigDict(str_strip_whitespace=True, str_max_length=4096)


class RowIn(In):
    label: Label
    seats: int = Field(strict=True, ge=1, le=500, description="how many seats the row has, numbered from 1")


class SectionIn(In):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    price: Money
    capacity: int | None = Field(default=None, strict=True, ge=1, le=MAX_SECTION_CAPACITY)
    rows: list[RowIn] | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _capacity_or_rows(self) -> SectionIn:
        if (self.capacity is None) == (self.rows is None):
            raise ValueError("give either capacity (general admission) or rows (reserved seating)")
        return self


class QueueIn(In):
    on_sale_at: Moment = Field(description="when the line opens; earlier arrivals are drawn at random")
    admit_per_minute: int | None = Field(
        default=None, strict=True, ge=1, le=100_000, description="unset: adapt to what booking sustains"
    )


class EventIn(In):
    name: Name
    category: Category
    venue: Name
    city: City
    starts_at: Moment
    currency: Currency
    sections: list[SectionIn] = Field(min_length=1, max_length=50)
    queue: QueueIn | None = Field(default=None, description="a queued sale behind the waiting room")
    description: str | None = Field(default=None, max_length=4000, description="what the event page tells buyers")
    image_url: ImageUrl | None = None
    doors_at: Moment | None = Field(default=None, description="when doors open: up to 12 h before starts_at")
    venue_address: str | None = Field(
        default=None, min_length=1, max_length=300, description="the venue's street address (same as `address`)"
    )
    timezone: Timezone | None = Field(
        default=None, description="the venue's IANA zone; unset: the venue's as known (UTC for a new venue)"
    )
    address: Annotated[str, Field(min_length=1, max_length=300)] | None = Field(
        default=None, description="the venue's street address; unset: as known"
    )

    def draft(self) -> EventDraft:
        sections = tuple(
            SectionDraft(
                s.name,
                s.price,
                capacity=s.capacity,
                rows=tuple(RowDraft(r.label, r.seats) for r in s.rows) if s.rows is not None else None,
            )
            for s in self.sections
        )
        starts_at = self.starts_at.astimezone(UTC).replace(microsecond=0)
        queue = None
        if self.queue is not None:
            on_sale_at = self.queue.on_sale_at.astimezone(UTC).replace(microsecond=0)
            queue = QueueDraft(on_sale_at, self.queue.admit_per_minute)
        doors_at = self.doors_at.astimezone(UTC).replace(microsecond=0) if self.doors_at else None
        # One address, two names: `venue_address` (the event page's field) and `address` (kept with the venue).
        address = self.address or self.venue_address
        details = EventDetails(self.description or None, self.image_url, doors_at, address)
        return EventDraft(
            self.name, self.category, self.venue, self.city, starts_at, self.currency, sections, queue, details,
            timezone=self.timezone, address=address,
        )


class StationIn(In):
    code: StationCode
    name: Annotated[str, Field(min_length=1, max_length=100)]
    city: City
    timezone: Timezone = Field(default="UTC", description="the station's IANA zone, e.g. Asia/Kolkata")

    def station(self) -> Station:
        return Station(code=self.code, name=self.name, city=self.city, timezone=self.timezone)


class StopIn(In):
    station: StationCode
    arrival_minutes: Minutes = Field(default=None, description="minutes after the run leaves its first stop")
    departure_minutes: Minutes = Field(default=None, description="minutes after the run leaves its first stop")
    distance_km: int = Field(strict=True, ge=0, le=20_000)


class CoachIn(In):
    label: Label
    seats: int = Field(strict=True, ge=1, le=200)


class ClassIn(In):
    code: Label
    name: Annotated[str, Field(min_length=1, max_length=100)]
    base_fare: Money
    per_km_fare: int = Field(strict=True, ge=0, le=1_000_000)
    coaches: list[CoachIn] = Field(min_length=1, max_length=50)


class TrainIn(In):
    number: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,20}$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    currency: Currency
    departure_time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, UTC")]
    stops: list[StopIn] = Field(min_length=2, max_length=100)
    classes: list[ClassIn] = Field(min_length=1, max_length=20)

    def layout(self) -> TrainLayout:
        hours, minutes = self.departure_time.split(":")
        return TrainLayout(
            uuid7(),
            self.number,
            self.name,
            self.currency,
            int(hours) * 60 + int(minutes),
            tuple(Stop(s.station, s.arrival_minutes, s.departure_minutes, s.distance_km) for s in self.stops),
            tuple(
                TrainClass(
                    c.code,
                    c.name,
                    FareRule(c.base_fare, c.per_km_fare),
                    tuple(timetable.build_coach(uuid7, k.label, k.seats) for k in c.coaches),
                )
                for c in self.classes
            ),
        )


class RunsIn(In):
    """One date, or every date from ``from_date`` to ``to_date`` (both included)."""

    date: JsonDate | None = None
    from_date: JsonDate | None = None
    to_date: JsonDate | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RunsIn:
        if (self.date is None) == (self.from_date is None and self.to_date is None):
            raise ValueError("give either date, or from_date and to_date")
        if self.date is None and (self.from_date is None or self.to_date is None):
            raise ValueError("a range needs both from_date and to_date")
        return self

    def dates(self) -> tuple[Day, Day]:
        first = self.date or self.from_date
        last = self.date or self.to_date
        assert first is not None and last is not None
        return first, last
