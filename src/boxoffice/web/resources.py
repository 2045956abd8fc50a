"""What web sends to and reads from the other services' public APIs (ARCHITECTURE.md section 5), typed.

Web owns these models, not the services: they name the fields web's pages rely on and keep any other field
the service sends (``extra="allow"``), so a service may add fields without breaking a page. Times stay the
strings the APIs send (RFC 3339); the template filters format them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from boxoffice.web.domain import Tokens


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# identity
class TokenPair(Answer):
    access_token: str
    refresh_token: str

    def tokens(self) -> Tokens:
        return Tokens(access=self.access_token, refresh=self.refresh_token)


class MailMessage(Answer):
    to: str
    subject: str
    text: str
    sent_at: str


class Mailbox(Answer):
    items: list[MailMessage]


class Registration(Request):
    name: str
    email: str
    password: str


# catalog: events
class EventSummary(Answer):
    id: str
    name: str
    category: str
    venue: str
    city: str
    starts_at: str
    timezone: str = "UTC"  # the venue's IANA zone: times are shown there
    address: str | None = None
    seating: str
    currency: str
    price_from: int
    available: int
    queued: bool = False  # a queued sale: buyers go through the waiting room
    on_sale_at: str | None = None
    availability_stale: bool = False  # booking did not answer: the last count catalog saw, or the capacity
    image_url: str | None = None


class Section(Answer):
    id: str
    name: str
    price: int
    capacity: int
    available: int


class Seat(Answer):
    id: str
    section_id: str
    row: str
    number: int
    label: str
    price: int | None = None
    status: str = "available"


class Event(EventSummary):
    description: str | None = None
    doors_at: str | None = None
    venue_address: str | None = None
    sections: list[Section]
    seats: list[Seat] = []


class EventPage(Answer):
    items: list[EventSummary]
    next_cursor: str | None = None


class EventFilter(Request):
    category: str | None = None
    q: str | None = None
    starts_after: str | None = None
    starts_before: str | None = None
    cursor: str | None = None
    limit: int = 20


class RowRequest(Request):
    label: str
    seats: int


class SectionRequest(Request):
    name: str
    price: int
    capacity: int | None = None
    rows: list[RowRequest] | None = None


class EventRequest(Request):
    """An operator's new event, as catalog's ``POST /api/events`` takes it."""

    name: str
    category: str
    venue: str
    city: str
    currency: str
    starts_at: str
    sections: list[SectionRequest]
    description: str | None = None
    image_url: str | None = None
    doors_at: str | None = None
    venue_address: str | None = None


# catalog: stations and trains
class Station(Answer):
    code: str
    name: str
    city: str
    timezone: str = "UTC"


class StationPage(Answer):
    items: list[Station]
    next_cursor: str | None = None


class ClassOption(Answer):
    code: str
    name: str
    fare: int
    available: int


class TrainOption(Answer):
    run_id: str
    train_number: str
    name: str
    currency: str
    origin: str
    destination: str
    departs_at: str
    arrives_at: str
    origin_timezone: str = "UTC"
    destination_timezone: str = "UTC"
    classes: list[ClassOption]


class TrainOptionPage(Answer):
    items: list[TrainOption]


class RunDeparture(Answer):
    """A train run first station to last (what a gate picks)."""

    run_id: str
    train_number: str
    name: str
    origin: str
    origin_name: str | None = None
    destination: str
    destination_name: str | None = None
    departs_at: str
    arrives_at: str
    origin_timezone: str = "UTC"
    destination_timezone: str = "UTC"


class RunDeparturePage(Answer):
    items: list[RunDeparture]


class CoachSeat(Answer):
    id: str
    label: str
    status: str = "available"


class Coach(Answer):
    id: str
    label: str
    seats: list[CoachSeat]


class RunClass(ClassOption):
    coaches: list[Coach] = []


class RunStop(Answer):
    station: str
    name: str | None = None
    timezone: str = "UTC"
    arrives_at: str | None = None
    departs_at: str | None = None


class Run(Answer):
    run_id: str
    train_number: str
    name: str
    currency: str
    origin: str
    destination: str
    departs_at: str
    arrives_at: str
    origin_timezone: str = "UTC"
    destination_timezone: str = "UTC"
    stops: list[RunStop]
    classes: list[RunClass]
    queued: bool = False  # a queued booking day: buyers go through the waiting room
    on_sale_at: str | None = None


# booking
class HoldRequest(Request):
    """One of: an event's seats, an event section's quantity, a train class's seats or quantity."""

    event_id: str | None = None
    section_id: str | None = None
    run_id: str | None = None
    class_code: str | None = None
    origin: str | None = None
    destination: str | None = None
    seat_ids: list[str] | None = None
    quantity: int | None = None


class HoldItem(Answer):
    seat_id: str | None = None
    label: str
    price: int
    section: str = ""
    passenger: str | None = None  # trains: who travels on this seat


class EventDetails(Answer):
    """What an order or a hold is for: the event, as booking keeps it."""

    name: str
    venue: str
    city: str
    address: str | None = None
    starts_at: str
    timezone: str = "UTC"


class StopDetails(Answer):
    station: str
    name: str
    timezone: str = "UTC"
    at: str | None = None


class TrainDetails(Answer):
    """What an order or a hold is for: the train journey."""

    run_id: str
    train_number: str
    name: str
    class_code: str
    class_name: str
    origin: StopDetails
    destination: StopDetails


class Hold(Answer):
    id: str
    status: str
    expires_at: str
    items: list[HoldItem]
    total: int
    currency: str
    event_id: str | None = None
    run_id: str | None = None
    origin: str | None = None
    destination: str | None = None
    event: EventDetails | None = None
    train: TrainDetails | None = None


class Ticket(Answer):
    id: str
    status: str = ""
    code: str | None = None
    pdf_url: str | None = None


class Order(Answer):
    id: str
    number: str = ""  # what the buyer reads out on the phone
    status: str
    hold_id: str | None = None
    kind: str = "event"
    event_id: str | None = None
    items: list[HoldItem] = []
    total: int = 0
    currency: str = ""
    tickets: list[Ticket] = []
    created_at: str | None = None
    event: EventDetails | None = None
    train: TrainDetails | None = None


class Passenger(Request):
    seat_id: str
    name: str


class OrderRequest(Request):
    hold_id: str
    passengers: list[Passenger] | None = None


class OrderPage(Answer):
    items: list[Order]
    next_cursor: str | None = None


# payments
class Card(Request):
    card_number: str
    exp_month: int
    exp_year: int
    cvc: str


# tickets
class Admission(Answer):
    ticket_id: str
    retry: bool = False
    event_name: str = ""
    kind: str = "event"  # event | train
    holder_name: str = ""
    section: str | None = None
    seat: str = ""
    gate: str | None = None


class CheckInRequest(Request):
    code: str
    event_id: str
    gate: str | None = None
    nonce: str | None = None


# waiting room
class QueueAdmission(Answer):
    token: str
    expires_at: str


class QueuePlace(Answer):
    event_id: str
    status: str  # waiting | admitted | closed
    reason: str | None = None
    position: int | None = None
    ahead: int = 0
    eta_seconds: int | None = None
    on_sale_at: str
    admission: QueueAdmission | None = None
    poll_after_seconds: int | None = None  # the waiting room's hint: ask again after this long


class QueueLine(Answer):
    event_id: str
    name: str
    status: str
    on_sale_at: str
    waiting: int
    admitted: int
    admitted_per_minute: int
    rate_per_minute: float
    eta_clear_seconds: int | None = None
    abandoned: int
    capacity: int
    sold: int
