"""The waiting room's HTTP API: join, see one's place, and (organisers) watch the line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel

from boxoffice.platform.app import provide
from boxoffice.platform.auth import CurrentUser, Principal, require_role
from boxoffice.platform.problem_http import problem_responses
from boxoffice.waitingroom import handlers
from boxoffice.waitingroom.deps import WaitingRoomDeps

Deps = Annotated[WaitingRoomDeps, Depends(provide(WaitingRoomDeps))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
EventId = Annotated[
    str, Path(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
]


class AdmissionOut(BaseModel):
    token: str
    expires_at: datetime


class PlaceOut(BaseModel):
    event_id: str
    status: str  # waiting | admitted | closed
    reason: str | None  # why a place is closed: sold_out | admission_expired | abandoned
    position: int | None  # None in the pre-queue: positions are drawn at on_sale_at
    ahead: int
    eta_seconds: int | None
    on_sale_at: datetime
    admission: AdmissionOut | None
    poll_after_seconds: int | None  # when to ask again (also the Retry-After header); None: no need

    @classmethod
    def of(cls, mine: handlers.MyPlace) -> PlaceOut:
        place = mine.standing.place
        admission = None
        if mine.admission is not None:
            admission = AdmissionOut(token=mine.admission.token, expires_at=mine.admission.expires_at)
        return cls(
            event_id=place.event_id,
            status=place.status.value,
            reason=place.reason.value if place.reason else None,
            position=place.position,
            ahead=mine.standing.ahead,
            eta_seconds=mine.standing.eta_seconds,
            on_sale_at=mine.room.on_sale_at,
            admission=admission,
            poll_after_seconds=mine.poll_after_seconds,
        )


class LineOut(BaseModel):
    event_id: str
    name: str
    status: str  # scheduled | open | closed
    on_sale_at: datetime
    waiting: int
    admitted: int
    admitted_per_minute: int  # admitted in the last minute
    rate_per_minute: float  # the admission rate in force
    eta_clear_seconds: int | None
    abandoned: int
    capacity: int
    sold: int


router = APIRouter(tags=["waiting room"])


@router.post("/api/queue/{event_id}/join", responses=problem_responses(401, 404, 410, 422))
async def join_line(event_id: EventId, user: CurrentUser, deps: Deps, response: Response) -> PlaceOut:
    return _hinted(PlaceOut.of(await handlers.join_line(deps, event_id, user.id)), response)


@router.get("/api/queue/{event_id}/me", responses=problem_responses(401, 404, 422))
async def my_place(event_id: EventId, user: CurrentUser, deps: Deps, response: Response) -> PlaceOut:
    """Polled by every waiting buyer: ask again after ``Retry-After`` seconds (rarely when the turn is far off)."""
    return _hinted(PlaceOut.of(await handlers.my_place(deps, event_id, user.id)), response)


def _hinted(place: PlaceOut, response: Response) -> PlaceOut:
    if place.poll_after_seconds is not None:
        response.headers["Retry-After"] = str(place.poll_after_seconds)
    return place


@router.get("/api/queue/{event_id}", responses=problem_responses(401, 403, 404, 422))
async def line(event_id: EventId, _: Admin, deps: Deps) -> LineOut:
    report = await handlers.report_line(deps, event_id)
    room, counts = report.room, report.counts
    return LineOut(
        event_id=room.event_id,
        name=room.name,
        status=room.status.value,
        on_sale_at=room.on_sale_at,
        waiting=counts.waiting,
        admitted=counts.admitted,
        admitted_per_minute=counts.admitted_last_minute,
        rate_per_minute=round(room.rate_per_minute, 1),
        eta_clear_seconds=report.eta_clear_seconds,
        abandoned=counts.abandoned,
        capacity=room.capacity,
        sold=room.sold,
    )
