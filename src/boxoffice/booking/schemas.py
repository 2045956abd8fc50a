"""Booking's request and response models: the JSON of ARCHITECTURE.md section 5 and docs/contracts.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, JsonValue, model_validator

from boxoffice.booking.domain import (
    MAX_PASSENGER_NAME,
    Details,
    EventAvailability,
    Hold,
    HoldKind,
    Item,
    Order,
    OrderHistory,
    OrderPage,
    OrderWithTickets,
    RunAvailability,
    StopDetails,
)
from boxoffice.booking.handlers.holds import PlaceHold
from boxoffice.booking.handlers.orders import ConfirmOrder
from boxoffice.platform import pagination
from boxoffice.platform.requests import RequestBody

Id = Annotated[str, Field(min_length=1, max_length=64)]


# In.
class In(RequestBody):
    pass


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

    def command(self, admission: str | None = None) -> PlaceHold:
        return PlaceHold(
            admission=admission,
            event_id=self.event_id,
            section_id=self.section_id,
            quantity=self.quantity,
            seat_ids=tuple(self.seat_ids or ()),
            run_id=self.run_id,
            class_code=self.class_code,
            origin=self.origin,
            destination=self.destination,
        )


class PassengerIn(In):
    seat_id: Id
    name: Annotated[str, Field(min_length=1, max_length=MAX_PASSENGER_NAME, description="as on the photo ID")]


class OrderIn(In):
    hold_id: Id
    passengers: list[PassengerIn] | None = Field(
        default=None,
        max_length=100,
        description="trains: one name per seat of the hold (who travels on it; printed on the ticket)",
    )

    @model_validator(mode="after")
    def _one_name_per_seat(self) -> OrderIn:
        seats = [p.seat_id for p in self.passengers or ()]
        if len(set(seats)) != len(seats):
            raise ValueError("passengers must name each seat once")
        return self

    def names(self) -> dict[str, str]:
        return {p.seat_id: p.name for p in self.passengers or ()}


class ConfirmIn(In):
    hold_id: Id
    hold_version: int
    payment_id: Id

    def command(self, order_id: str) -> ConfirmOrder:
        return ConfirmOrder(order_id, self.hold_id, self.hold_version, self.payment_id)


# Out.
class ItemOut(BaseModel):
    seat_id: str | None
    label: str
    price: int
    section: str
    passenger: str | None = Field(default=None, description="trains: who travels on this seat")

    @classmethod
    def of(cls, item: Item) -> ItemOut:
        return cls(
            seat_id=item.seat_id, label=item.label, price=item.price, section=item.section, passenger=item.passenger
        )


TIMEZONE = "IANA zone of the place: show the UTC time in it"


class EventDetailsOut(BaseModel):
    name: str
    venue: str
    city: str
    address: str | None
    starts_at: datetime
    timezone: str = Field(description=TIMEZONE)


class StopOut(BaseModel):
    station: str
    name: str
    timezone: str = Field(description=TIMEZONE)
    at: datetime | None = Field(description="departure from the origin, arrival at the destination (UTC)")

    @classmethod
    def of(cls, stop: StopDetails) -> StopOut:
        fields = {"station": stop.station, "name": stop.name, "timezone": stop.timezone, "at": stop.at}
        return cls.model_validate(fields)


class TrainDetailsOut(BaseModel):
    run_id: str
    train_number: str
    name: str
    class_code: str
    class_name: str
    origin: StopOut
    destination: StopOut


def _details_fields(details: Details | None) -> dict[str, object]:
    """``event`` or ``train``: what was bought, for the pages and e-mails that show it."""
    if details is None:
        return {}
    if (e := details.event) is not None:
        event = EventDetailsOut(name=e.name, venue=e.venue, city=e.city, address=e.address, starts_at=e.starts_at,
                                timezone=e.timezone)
        return {"event": event}
    if (t := details.train) is not None:
        train = TrainDetailsOut(run_id=t.run_id, train_number=t.train_number, name=t.name, class_code=t.class_code,
                                class_name=t.class_name, origin=StopOut.of(t.origin),
                                destination=StopOut.of(t.destination))
        return {"train": train}
    return {}


class _HoldBase(BaseModel):
    id: str
    status: str
    expires_at: datetime
    items: list[ItemOut]
    total: int
    currency: str
    quantity: int
    version: int
    event: EventDetailsOut | None = None
    train: TrainDetailsOut | None = None


class EventHoldOut(_HoldBase):
    event_id: str
    section_id: str | None


class TrainHoldOut(_HoldBase):
    run_id: str
    class_code: str
    origin: str
    destination: str


HoldOut = EventHoldOut | TrainHoldOut


def hold_out(hold: Hold) -> HoldOut:
    common = {
        "id": hold.id,
        "status": hold.status,
        "expires_at": hold.expires_at,
        "items": [ItemOut.of(i) for i in hold.items],
        "total": hold.total,
        "currency": hold.currency,
        "quantity": hold.quantity,
        "version": hold.version,
        **_details_fields(hold.details),
    }
    if hold.kind == HoldKind.TRAIN and hold.segment is not None:
        segment = hold.segment
        return TrainHoldOut.model_validate(
            {
                **common,
                "run_id": hold.event_id,
                "class_code": hold.class_code,
                "origin": segment.origin,
                "destination": segment.destination,
            }
        )
    return EventHoldOut.model_validate({**common, "event_id": hold.event_id, "section_id": hold.section_id})


def hold_json(hold: Hold) -> JsonValue:
    """The stored answer of an idempotent hold: exactly what the route answers."""
    return hold_out(hold).model_dump(mode="json")


class OrderOut(BaseModel):
    id: str
    number: str = Field(description="the order number a buyer reads out (8 characters of Crockford base32)")
    status: str
    hold_id: str
    kind: str
    event_id: str
    items: list[ItemOut]
    total: int
    currency: str
    expires_at: datetime
    payment_id: str | None
    created_at: datetime
    event: EventDetailsOut | None = None
    train: TrainDetailsOut | None = None

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls.model_validate(_order_fields(order))


def _order_fields(order: Order) -> dict[str, object]:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "hold_id": order.hold_id,
        "kind": order.kind,
        "event_id": order.event_id,
        "items": [ItemOut.of(i) for i in order.items],
        "total": order.total,
        "currency": order.currency,
        "expires_at": order.expires_at,
        "payment_id": order.payment_id,
        "created_at": order.created_at,
        **_details_fields(order.details),
    }


def order_json(order: Order) -> JsonValue:
    return OrderOut.of(order).model_dump(mode="json")


class OrderDetailOut(OrderOut):
    """An order for the services that act on it (``GET /internal/orders/{id}``)."""

    user_id: str
    holder_name: str
    email: str
    hold_version: int

    @classmethod
    def of(cls, order: Order) -> OrderDetailOut:
        fields = {
            **_order_fields(order), "user_id": order.user_id, "holder_name": order.holder_name, "email": order.email
        }
        return cls.model_validate({**fields, "hold_version": order.hold_version})


class TicketOut(BaseModel):
    id: str
    status: str
    code: str
    pdf_url: str | None


class CustomerOrderOut(OrderDetailOut):
    """``GET /api/orders/{id}``: the order and its tickets (empty until issued, or while tickets is away)."""

    tickets: list[TicketOut]

    @classmethod
    def with_tickets(cls, answer: OrderWithTickets) -> CustomerOrderOut:
        detail = OrderDetailOut.of(answer.order).model_dump()
        tickets = [TicketOut(id=t.id, status=t.status, code=t.code, pdf_url=t.pdf_url) for t in answer.tickets]
        return cls.model_validate({**detail, "tickets": tickets})


class OrderListOut(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: OrderPage) -> OrderListOut:
        return cls(items=[OrderOut.of(o) for o in page.items], next_cursor=encode_cursor(page.next_cursor))


def encode_cursor(after: tuple[datetime, str] | None) -> str | None:
    return pagination.encode_cursor(*after) if after is not None else None


def decode_cursor(value: str | None) -> tuple[datetime, str] | None:
    return pagination.decode_cursor(value, datetime) if value else None


class HistoryEntryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: dict[str, JsonValue]


class HistoryOut(BaseModel):
    items: list[HistoryEntryOut]
    incomplete: list[str] = Field(description="Services whose entries could not be read; empty when complete.")

    @classmethod
    def of(cls, history: OrderHistory) -> HistoryOut:
        items = [
            HistoryEntryOut.model_validate({"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail})
            for e in history.items
        ]
        return cls(items=items, incomplete=list(history.incomplete))


class EventCountsOut(BaseModel):
    available: int
    sections: dict[str, int]
    seats: dict[str, str]


class EventsAvailabilityOut(BaseModel):
    events: dict[str, EventCountsOut]

    @classmethod
    def of(cls, counts: dict[str, EventAvailability]) -> EventsAvailabilityOut:
        events = {k: {"available": v.available, "sections": v.sections, "seats": v.seats} for k, v in counts.items()}
        return cls.model_validate({"events": events})


class RunCountsOut(BaseModel):
    classes: dict[str, int]
    seats: dict[str, str]


class RunsAvailabilityOut(BaseModel):
    runs: dict[str, RunCountsOut]

    @classmethod
    def of(cls, counts: dict[str, RunAvailability]) -> RunsAvailabilityOut:
        return cls.model_validate({"runs": {k: {"classes": v.classes, "seats": v.seats} for k, v in counts.items()}})
