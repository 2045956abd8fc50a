"""Booking's HTTP API: holds and orders for customers, and the ``/internal/`` endpoints other services use.

Each route parses, calls one handler and maps its result to a response model (schemas.py); errors are
domain exceptions, answered as problem+json by the platform.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from boxoffice.booking.deps import BookingDeps
from boxoffice.booking.handlers import history, holds, orders, stock
from boxoffice.booking.schemas import (
    ConfirmIn,
    CustomerOrderOut,
    EventsAvailabilityOut,
    HistoryOut,
    HoldIn,
    HoldOut,
    Id,
    OrderDetailOut,
    OrderIn,
    OrderListOut,
    OrderOut,
    RunsAvailabilityOut,
    decode_cursor,
    hold_json,
    hold_out,
    order_json,
)
from boxoffice.platform.app import provide
from boxoffice.platform.auth import CurrentUser, require_internal
from boxoffice.platform.idempotency import StoredResponse
from boxoffice.platform.problem_http import problem_responses
from boxoffice.platform.problems import BadRequest

Deps = Annotated[BookingDeps, Depends(provide(BookingDeps))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Admission = Annotated[
    str | None, Header(alias="X-Admission", max_length=512, description="the waiting room's admission (queued sales)")
]
PathId = Annotated[str, Id]

router = APIRouter(tags=["booking"])
internal = APIRouter(prefix="/internal", dependencies=[Depends(require_internal)], include_in_schema=False)


def _answer(stored: StoredResponse) -> JSONResponse:
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post(
    "/api/holds",
    status_code=201,
    response_model=HoldOut,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 429),
)
async def place_hold(
    body: HoldIn, user: CurrentUser, deps: Deps, key: IdempotencyKey = None, admission: Admission = None
) -> JSONResponse:
    stored = await holds.place_hold(
        deps, body.command(admission), user=user, idempotency_key=key, body=body.model_dump(), render=hold_json
    )
    return _answer(stored)


@router.get("/api/holds/{hold_id}", responses=problem_responses(401, 404, 422))
async def get_hold(hold_id: PathId, user: CurrentUser, deps: Deps) -> HoldOut:
    return hold_out(await holds.get_hold(deps, hold_id, user=user))


@router.delete("/api/holds/{hold_id}", status_code=204, responses=problem_responses(401, 404, 409, 422))
async def release_hold(hold_id: PathId, user: CurrentUser, deps: Deps) -> Response:
    await holds.release_hold(deps, hold_id, user=user)
    return Response(status_code=204)


@router.post(
    "/api/orders",
    status_code=201,
    response_model=OrderOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def place_order(body: OrderIn, user: CurrentUser, deps: Deps, key: IdempotencyKey = None) -> JSONResponse:
    stored = await orders.place_order(
        deps,
        body.hold_id,
        user=user,
        idempotency_key=key,
        body=body.model_dump(),
        render=order_json,
        passengers=body.names(),
    )
    return _answer(stored)


@router.get("/api/orders", responses=problem_responses(400, 401, 422))
async def list_orders(
    user: CurrentUser,
    deps: Deps,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    number: Annotated[
        str | None, Query(max_length=20, description="find the order with this number (case and dashes ignored)")
    ] = None,
) -> OrderListOut:
    page = await orders.list_orders(deps, user=user, before=decode_cursor(cursor), limit=limit, number=number)
    return OrderListOut.of(page)


@router.get("/api/orders/{order_id}", responses=problem_responses(401, 404, 422))
async def get_order(order_id: PathId, user: CurrentUser, deps: Deps) -> CustomerOrderOut:
    return CustomerOrderOut.with_tickets(await orders.get_order(deps, order_id, user=user))


@router.post("/api/orders/{order_id}/cancel", responses=problem_responses(401, 404, 409, 422, 503))
async def cancel_order(order_id: PathId, user: CurrentUser, deps: Deps) -> OrderOut:
    return OrderOut.of(await orders.cancel_order(deps, order_id, user=user))


@router.get("/api/orders/{order_id}/history", responses=problem_responses(401, 404, 422))
async def order_history(order_id: PathId, user: CurrentUser, deps: Deps) -> HistoryOut:
    return HistoryOut.of(await history.get_order_history(deps, order_id, user=user))


@internal.get("/orders/{order_id}", responses=problem_responses(403, 404, 422))
async def internal_order(order_id: PathId, deps: Deps) -> OrderDetailOut:
    return OrderDetailOut.of(await orders.read_order(deps, order_id))


@internal.post("/orders/{order_id}/confirm", responses=problem_responses(403, 404, 409, 422))
async def internal_confirm(order_id: PathId, body: ConfirmIn, deps: Deps) -> OrderOut:
    return OrderOut.of(await orders.confirm_order(deps, body.command(order_id)))


def _ids(ids: str) -> list[str]:
    values = [v for v in ids.split(",") if v]
    if not values or len(values) > 200:
        raise BadRequest("ids: give 1 to 200 comma-separated ids.")
    return values


@internal.get("/availability/events", responses=problem_responses(400, 403, 422))
async def events_availability(deps: Deps, ids: Annotated[str, Query(max_length=20000)]) -> EventsAvailabilityOut:
    return EventsAvailabilityOut.of(await stock.count_event_availability(deps, _ids(ids)))


@internal.get("/availability/runs", responses=problem_responses(400, 403, 422))
async def runs_availability(
    deps: Deps,
    ids: Annotated[str, Query(max_length=20000)],
    origin: Annotated[str | None, Query(max_length=16)] = None,
    destination: Annotated[str | None, Query(max_length=16)] = None,
) -> RunsAvailabilityOut:
    counts = await stock.count_run_availability(deps, _ids(ids), origin=origin, destination=destination)
    return RunsAvailabilityOut.of(counts)
