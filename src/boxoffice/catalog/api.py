"""Catalog's HTTP API (ARCHITECTURE.md section 5): parse, call a handler, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Day  # RunsIn has a field called date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from boxoffice.catalog import handlers, timetable
from boxoffice.catalog.domain import (
    MAX_SECTION_CAPACITY,
    Category,
    EventDraft,
    RowDraft,
    SectionDraft,
)
from boxoffice.catalog.service import CatalogService
from boxoffice.catalog.timetable import FareRule, Stop, TrainClass, TrainLayout
from boxoffice.catalog.views import (
    EventOut,
    EventPageOut,
    RunOut,
    RunPageOut,
    StationOut,
    StationPageOut,
    TrainOptionPageOut,
    TrainOut,
)
from boxoffice.platform.app import running_service
from boxoffice.platform.auth import require_role
from boxoffice.platform.bus.envelope import uuid7

Svc = Annotated[CatalogService, Depends(running_service(CatalogService))]
ADMIN = [Depends(require_role("admin"))]

# JSON numbers only (no "12" strings, no true/false) for counts and money.
Money = Annotated[int, Field(strict=True, ge=0, le=100_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
City = Annotated[str, Field(min_length=1, max_length=100)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")]
StationCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,8}$")]
Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,10}$")]
Minutes = Annotated[int | None, Field(strict=True, ge=0, le=14 * 24 * 60)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, str_max_length=4096)


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


class EventIn(In):
    name: Name
    category: Category
    venue: Name
    city: City
    starts_at: AwareDatetime
    currency: Currency
    sections: list[SectionIn] = Field(min_length=1, max_length=50)

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
        return EventDraft(self.name, self.category, self.venue, self.city, starts_at, self.currency, sections)


class StationIn(In):
    code: StationCode
    name: Annotated[str, Field(min_length=1, max_length=100)]
    city: City


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

    date: Day | None = None
    from_date: Day | None = None
    to_date: Day | None = None

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


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _code(value: str | None) -> str | None:
    return value.strip().upper() if value else None


router = APIRouter(tags=["catalog"])


@router.get("/api/events", response_model=EventPageOut)
async def list_events(
    svc: Svc,
    category: Category | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    starts_after: Annotated[datetime | None, Query(description="default: now; naive times are UTC")] = None,
    starts_before: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    return await handlers.list_events(
        svc,
        category=category,
        q=q.strip() if q else None,
        starts_after=_utc(starts_after),
        starts_before=_utc(starts_before),
        cursor=cursor,
        limit=limit,
    )


@router.get("/api/events/{event_id}", response_model=EventOut)
async def get_event(event_id: Annotated[str, Path(max_length=64)], svc: Svc) -> Any:
    return await handlers.get_event(svc, event_id)


@router.post("/api/events", status_code=201, response_model=EventOut, dependencies=ADMIN)
async def create_event(body: EventIn, svc: Svc) -> Any:
    return await handlers.create_event(svc, body.draft())


@router.get("/api/stations", response_model=StationPageOut)
async def list_stations(svc: Svc) -> Any:
    return await handlers.list_stations(svc)


@router.post("/api/stations", status_code=201, response_model=StationOut, dependencies=ADMIN)
async def create_station(body: StationIn, svc: Svc) -> Any:
    return await handlers.create_station(svc, code=body.code, name=body.name, city=body.city)


@router.post("/api/trains", status_code=201, response_model=TrainOut, dependencies=ADMIN)
async def create_train(body: TrainIn, svc: Svc) -> Any:
    return await handlers.create_train(svc, body.layout())


@router.get("/api/trains/search", response_model=TrainOptionPageOut)
async def search_trains(
    svc: Svc,
    origin: Annotated[str, Query(min_length=1, max_length=8)],
    destination: Annotated[str, Query(min_length=1, max_length=8)],
    day: Annotated[Day | None, Query(alias="date", description="departure date at origin (UTC); default today")] = None,
) -> Any:
    return await handlers.search_trains(
        svc, origin=origin.strip().upper(), destination=destination.strip().upper(), day=day or svc.now().date()
    )


@router.get("/api/trains/runs/{run_id}", response_model=RunOut)
async def get_run(
    run_id: str,
    svc: Svc,
    origin: Annotated[str | None, Query(max_length=8, description="default: the first stop")] = None,
    destination: Annotated[str | None, Query(max_length=8, description="default: the last stop")] = None,
) -> Any:
    return await handlers.get_run(svc, run_id, origin=_code(origin), destination=_code(destination))


@router.get("/api/trains/{train_id}", response_model=TrainOut)
async def get_train(train_id: str, svc: Svc) -> Any:
    return await handlers.get_train(svc, train_id)


@router.post("/api/trains/{train_id}/runs", status_code=201, response_model=RunPageOut, dependencies=ADMIN)
async def publish_runs(train_id: str, body: RunsIn, svc: Svc) -> Any:
    first, last = body.dates()
    return await handlers.publish_runs(svc, train_id, first, last)
