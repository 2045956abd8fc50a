"""Booking's HTTP API: holds and orders for customers, and the ``/internal/`` endpoints other services use."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from boxoffice.booking import availability, handlers, store
from boxoffice.booking.service import BookingService
from boxoffice.platform.app import running_service
from boxoffice.platform.auth import CurrentUser, require_internal
from boxoffice.platform.problems import BadRequest, NotFound

Id = Annotated[str, Field(min_length=1, max_length=64)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


Svc = Annotated[BookingService, Depends(running_service(BookingService))]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HoldIn(In):
    """One of: ``{event_id, section_id, quantity}``, ``{event_id, seat_ids}``,
    ``{run_id, class_code, origin, destination, quantity | seat_ids}``."""

    event_id: Id | None = None
    section_id: Id | None = None
    quantity: int | None = Field(default=None, ge=1, le=100)
    seat_ids: list[Id] | None = Field(default=None, min_length=1, max_length=100)
    run_id: Id | None = None
    class_code: Annotated[str, Field(max_length=16)] | None = None
    origin: Annotated[str, Field(max_length=16)] | None = None
    destination: Annotated[str, Field(max_length=16)] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> HoldIn:
        if self.seat_ids is not None and len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("seat_ids must not repeat a seat")
        if self.run_id is not None:
            if self.event_id or self.section_id:
                raise ValueError("a train hold has run_id, class_code, origin, destination and quantity or seat_ids")
            if not (self.class_code and self.origin and self.destination):
                raise ValueError("a train hold needs class_code, origin and destination")
        elif self.event_id is None:
            raise ValueError("give event_id (an event) or run_id (a train)")
        elif self.seat_ids is None and not (self.section_id and self.quantity):
            raise ValueError("an event hold needs section_id and quantity, or seat_ids")
        if (self.seat_ids is None) == (self.quantity is None):
            raise ValueError("give either quantity or seat_ids, not both")
        return self


class OrderIn(In):
    hold_id: Id


class ConfirmIn(In):
    hold_id: Id
    hold_version: int
    payment_id: Id


router = APIRouter(tags=["booking"])
internal = APIRouter(prefix="/internal", dependencies=[Depends(require_internal)], include_in_schema=False)


def _answer(stored: Any) -> JSONResponse:
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post("/api/holds", status_code=201)
async def place_hold(body: HoldIn, user: CurrentUser, svc: Svc, key: IdempotencyKey = None) -> JSONResponse:
    request = handlers.HoldRequest(**{**body.model_dump(exclude={"seat_ids"}), "seat_ids": tuple(body.seat_ids or ())})
    return _answer(await handlers.place_hold(svc, user, request, idempotency_key=key, body=body.model_dump()))


@router.get("/api/holds/{hold_id}")
async def get_hold(hold_id: str, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    async with svc.db.read() as conn:
        hold = await store.hold_row(conn, hold_id)
    if hold is None or (hold.user_id != user.id and not user.has_role("admin")):
        raise NotFound("No such hold.")
    return handlers.hold_out(hold, svc.now())


@router.delete("/api/holds/{hold_id}", status_code=204)
async def release_hold(hold_id: str, user: CurrentUser, svc: Svc) -> Response:
    await handlers.release_hold(svc, user, hold_id)
    return Response(status_code=204)


@router.post("/api/orders", status_code=201)
async def place_order(body: OrderIn, user: CurrentUser, svc: Svc, key: IdempotencyKey = None) -> JSONResponse:
    return _answer(await handlers.place_order(svc, user, body.hold_id, idempotency_key=key, body=body.model_dump()))


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if not value:
        return None
    try:
        created, order_id = base64.urlsafe_b64decode(value.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), order_id
    except ValueError:
        raise BadRequest("The cursor is not one this API gave out.", slug="invalid-cursor") from None


@router.get("/api/orders")
async def list_orders(
    user: CurrentUser,
    svc: Svc,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    async with svc.db.read() as conn:
        rows = await store.orders_of(conn, user.id, before=_cursor(cursor), limit=limit + 1)
    now = svc.now()
    items = [handlers.order_out(row, row.expires_at, now) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.id}".encode()).decode()
    return {"items": items, "next_cursor": next_cursor}


@router.get("/api/orders/{order_id}")
async def get_order(order_id: str, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    order = await _order(svc, order_id)
    if order["user_id"] != user.id and not user.has_role("admin"):
        raise NotFound("No such order.")
    return {**order, "tickets": await svc.tickets_of(order_id) if order["status"] != "pending_payment" else []}


@router.post("/api/orders/{order_id}/cancel")
async def cancel_order(order_id: str, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    return await handlers.cancel_order(svc, user, order_id)


async def _order(svc: BookingService, order_id: str) -> dict[str, Any]:
    async with svc.db.read() as conn:
        order = await store.order_row(conn, order_id)
        hold = await store.hold_row(conn, order.hold_id) if order is not None else None
    if order is None or hold is None:
        raise NotFound("No such order.")
    out = handlers.order_out(order, hold.expires_at, svc.now())
    return {**out, "user_id": order.user_id, "holder_name": order.holder_name, "hold_version": hold.version}


@internal.get("/orders/{order_id}")
async def internal_order(order_id: str, svc: Svc) -> dict[str, Any]:
    return await _order(svc, order_id)


@internal.post("/orders/{order_id}/confirm")
async def internal_confirm(order_id: str, body: ConfirmIn, svc: Svc) -> dict[str, Any]:
    return await handlers.confirm_order(
        svc, order_id, hold_id=body.hold_id, hold_version=body.hold_version, payment_id=body.payment_id
    )


def _ids(ids: str) -> list[str]:
    values = [v for v in ids.split(",") if v]
    if not values or len(values) > 200:
        raise BadRequest("ids: give 1 to 200 comma-separated ids.")
    return values


@internal.get("/availability/events")
async def events_availability(svc: Svc, ids: Annotated[str, Query(max_length=20000)]) -> dict[str, Any]:
    async with svc.db.read() as conn:
        return {"events": await availability.for_events(conn, _ids(ids), svc.now())}


@internal.get("/availability/runs")
async def runs_availability(
    svc: Svc,
    ids: Annotated[str, Query(max_length=20000)],
    origin: Annotated[str | None, Query(max_length=16)] = None,
    destination: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    async with svc.db.read() as conn:
        return {"runs": await availability.for_runs(conn, _ids(ids), origin, destination, svc.now())}
