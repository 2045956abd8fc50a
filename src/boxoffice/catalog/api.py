"""Catalog's HTTP API (ARCHITECTURE.md section 5): parse, call a handler, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Day
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from boxoffice.catalog import handlers
from boxoffice.catalog.deps import CatalogDeps
from boxoffice.catalog.domain import Category, EventQuery, InvalidDate, QueueDraft
from boxoffice.catalog.schemas import EventIn, QueueIn, RunsIn, StationIn, TrainIn
from boxoffice.catalog.views import (
    EventOut,
    EventPageOut,
    RunDeparturePageOut,
    RunOut,
    RunPageOut,
    StationOut,
    StationPageOut,
    TrainOptionPageOut,
    TrainOut,
)
from boxoffice.platform.app import provide
from boxoffice.platform.auth import require_role
from boxoffice.platform.problem_http import problem_responses

Deps = Annotated[CatalogDeps, Depends(provide(CatalogDeps))]
ADMIN = [Depends(require_role("admin"))]
# What an operator's write can meet: not signed in, not an operator, malformed JSON, invalid content.
WRITE_PROBLEMS = (400, 401, 403, 422)


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # no UTC form: year 1 at +01:00, 9999-12-31 at -05:00
        raise InvalidDate("The time is out of range.") from None


def _code(value: str | None) -> str | None:
    return value.strip().upper() if value else None


router = APIRouter(tags=["catalog"])


@router.get("/api/events", responses=problem_responses(400, 422))
async def list_events(
    deps: Deps,
    category: Category | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    starts_after: Annotated[datetime | None, Query(description="default: now; naive times are UTC")] = None,
    starts_before: datetime | None = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> EventPageOut:
    query = EventQuery(
        category=category,
        q=q.strip() if q else None,
        starts_after=_utc(starts_after),
        starts_before=_utc(starts_before),
        cursor=cursor,
        limit=limit,
    )
    return await handlers.list_events(deps, query)


@router.get("/api/events/{event_id}", responses=problem_responses(404, 422))
async def get_event(event_id: Annotated[str, Path(max_length=64)], deps: Deps) -> EventOut:
    return await handlers.get_event(deps, event_id)


@router.post("/api/events", status_code=201, dependencies=ADMIN, responses=problem_responses(*WRITE_PROBLEMS))
async def create_event(body: EventIn, deps: Deps) -> EventOut:
    return await handlers.create_event(deps, body.draft())


@router.get("/api/stations")
async def list_stations(deps: Deps) -> StationPageOut:
    return await handlers.list_stations(deps)


@router.post(
    "/api/stations", status_code=201, dependencies=ADMIN, responses=problem_responses(*WRITE_PROBLEMS, 409)
)
async def create_station(body: StationIn, deps: Deps) -> StationOut:
    return await handlers.create_station(deps, body.station())


@router.post("/api/trains", status_code=201, dependencies=ADMIN, responses=problem_responses(*WRITE_PROBLEMS, 409))
async def create_train(body: TrainIn, deps: Deps) -> TrainOut:
    return await handlers.create_train(deps, body.layout())


@router.get("/api/trains/search", responses=problem_responses(404, 422))
async def search_trains(
    deps: Deps,
    origin: Annotated[str, Query(min_length=1, max_length=8)],
    destination: Annotated[str, Query(min_length=1, max_length=8)],
    day: Annotated[Day | None, Query(alias="date", description="departure date at origin (UTC); default today")] = None,
) -> TrainOptionPageOut:
    return await handlers.search_trains(
        deps, origin=origin.strip().upper(), destination=destination.strip().upper(), day=day or deps.now().date()
    )


@router.get("/api/trains/runs", responses=problem_responses(422))
async def runs_departing(
    deps: Deps,
    day: Annotated[Day | None, Query(alias="date", description="departure date (UTC); default today")] = None,
) -> RunDeparturePageOut:
    """Every train run leaving its first station on the date, first to last station (gates pick by it)."""
    return await handlers.runs_departing(deps, day or deps.now().date())


@router.get("/api/trains/runs/{run_id}", responses=problem_responses(404, 422))
async def get_run(
    run_id: str,
    deps: Deps,
    origin: Annotated[str | None, Query(max_length=8, description="default: the first stop")] = None,
    destination: Annotated[str | None, Query(max_length=8, description="default: the last stop")] = None,
) -> RunOut:
    return await handlers.get_run(deps, run_id, origin=_code(origin), destination=_code(destination))


@router.put(
    "/api/trains/runs/{run_id}/queue", dependencies=ADMIN, responses=problem_responses(*WRITE_PROBLEMS, 404)
)
async def queue_run(run_id: str, body: QueueIn, deps: Deps) -> RunOut:
    """Queue this run's booking day behind the waiting room (docs/waiting-room.md); again to change it."""
    on_sale_at = body.on_sale_at.astimezone(UTC).replace(microsecond=0)
    return await handlers.queue_run(deps, run_id, QueueDraft(on_sale_at, body.admit_per_minute))


@router.get("/api/trains/{train_id}", responses=problem_responses(404, 422))
async def get_train(train_id: str, deps: Deps) -> TrainOut:
    return await handlers.get_train(deps, train_id)


@router.post(
    "/api/trains/{train_id}/runs",
    status_code=201,
    dependencies=ADMIN,
    responses=problem_responses(*WRITE_PROBLEMS, 404, 409),
)
async def publish_runs(train_id: str, body: RunsIn, deps: Deps) -> RunPageOut:
    first, last = body.dates()
    return await handlers.publish_runs(deps, train_id, first, last)
