"""Clickstream rules: what a tracked event is, when a batch or a client is refused, which page a URL names.

No I/O here. The collector validates a whole batch in one ``TypeAdapter`` pass (``parse_batch``): each event
is either a ``TrackedEvent`` or a ``Rejected`` with the reason, so one bad event never costs the others. The
processor validates what it reads from the bus again (``CollectedEvent``), because the bus is a boundary too.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from boxoffice.platform import pagination
from boxoffice.platform.jsonutil import loads
from boxoffice.platform.problems import (
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    Unprocessable,
    UnsupportedMediaType,
)

TOPIC = "user-tracking-events"
EVENT_TYPE = "tracking.event-collected"
EventType = Literal["page_view", "click", "form_submit", "custom"]
EVENT_TYPES: tuple[str, ...] = ("page_view", "click", "form_submit", "custom")
MAX_PROPS_BYTES = 4096

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Url = Annotated[str, StringConstraints(max_length=2048)]
PageUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^/?#\s]+")]


class BatchTooLarge(PayloadTooLarge):
    slug = "batch-too-large"


class UnsupportedBody(UnsupportedMediaType):
    slug = "unsupported-body"


class MalformedBatch(BadRequest):
    slug = "malformed-batch"


class InvalidBatch(Unprocessable):
    slug = "invalid-batch"


class ClientFlooding(TooManyRequests):
    slug = "client-flooding"


class InvalidRange(BadRequest):
    slug = "invalid-range"


class Element(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    tag: Annotated[str, StringConstraints(max_length=32)] = ""
    text: Annotated[str, StringConstraints(max_length=200)] = ""
    track: Annotated[str, StringConstraints(max_length=200)] = ""


class TrackedEvent(BaseModel):
    """One event as the browser sends it (ARCHITECTURE.md section 5, "Tracking")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Rules are constraints checked in pydantic-core (no Python per event): this runs for every event twice.
    event_id: Annotated[
        str, StringConstraints(to_lower=True, pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
    ]
    type: EventType
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    ts: AwareDatetime
    anonymous_id: Id
    session_id: Id
    user_id: Id | None = None
    url: PageUrl
    referrer: Url | None = None
    title: Annotated[str, StringConstraints(max_length=300)] | None = None
    element: Element | None = None
    props: dict[str, Any] | None = None

    @field_validator("props")
    @classmethod
    def _small_props(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(repr(value)) > MAX_PROPS_BYTES:
            raise ValueError(f"props must stay under {MAX_PROPS_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _custom_events_are_named(self) -> TrackedEvent:
        if self.type == "custom" and not self.name:
            raise ValueError("a custom event needs a name")
        return self


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def _capture(value: Any, handler: ValidatorFunctionWrapHandler) -> TrackedEvent | Rejected:
    try:
        event: TrackedEvent = handler(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Rejected(f"{where}: {first['msg']}" if where else first["msg"])
    return event


class Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sent_at: AwareDatetime | None = None
    events: Annotated[list[Annotated[TrackedEvent, WrapValidator(_capture)]], Field(max_length=10_000)]


BATCH = TypeAdapter(Batch)


@dataclass(frozen=True, slots=True)
class Limits:
    max_events: int
    max_bytes: int
    retention: timedelta
    max_future: timedelta = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    accepted: list[tuple[TrackedEvent, dict[str, Any]]]
    """Each valid event, with the object the client sent (the bus carries that, not a re-serialization)."""
    rejected: list[tuple[int, str]]


def parse_batch(body: bytes, *, limits: Limits, now: datetime) -> ParsedBatch:
    """Validate a batch in one pass; events that break a rule are rejected by index, the others kept."""
    if len(body) > limits.max_bytes:
        raise BatchTooLarge(f"A batch may be at most {limits.max_bytes} bytes.")
    try:
        raw = loads(body)
    except ValueError:
        raise MalformedBatch("The body is not valid JSON.") from None
    try:
        batch = BATCH.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidBatch(f"The body is not a batch of events: {where}: {first['msg']}.") from None
    if len(batch.events) > limits.max_events:
        raise BatchTooLarge(f"A batch may hold at most {limits.max_events} events.")
    accepted: list[tuple[TrackedEvent, dict[str, Any]]] = []
    rejected: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(batch.events):
        reason = item.reason if isinstance(item, Rejected) else _time_problem(item.ts, now, limits)
        if reason is None and isinstance(item, TrackedEvent):
            if item.event_id in seen:
                reason = "event_id: repeated within the batch"
            else:
                seen.add(item.event_id)
                accepted.append((item, raw["events"][index]))
                continue
        rejected.append((index, reason or "invalid"))
    return ParsedBatch(accepted, rejected)


def _time_problem(ts: datetime, now: datetime, limits: Limits) -> str | None:
    """Events are stored by their own day; one older than the retention or far ahead has no place to go."""
    if ts < now - limits.retention:
        return "ts: older than the retention period"
    if ts > now + limits.max_future:
        return "ts: too far in the future"
    return None


class CollectedEvent(TrackedEvent):
    """An accepted event as it travels on the bus: what the browser sent, plus what the collector saw."""

    received_at: AwareDatetime
    user_agent: Annotated[str, StringConstraints(max_length=1024)] = ""


COLLECTED = TypeAdapter(list[Annotated[CollectedEvent, WrapValidator(_capture)]])
"""The processor's one validation pass over a polled batch; an invalid record becomes ``Rejected``."""
FIELDS = tuple(TrackedEvent.model_fields)


def collected(event: TrackedEvent, sent: dict[str, Any], *, received_at: str, user_agent: str) -> dict[str, Any]:
    """The bus record's data: the fields the client sent that the event knows, as sent, plus what we saw.

    Copying the validated JSON costs a fraction of serializing the model again; the processor validates
    the record once more anyway.
    """
    data = {name: sent[name] for name in FIELDS if sent.get(name) is not None}
    data["event_id"] = event.event_id
    data["received_at"] = received_at
    data["user_agent"] = user_agent[:1024]
    return data


# Pages that name something the shop sells: an event, or a train run.
_SUBJECTS = (
    (re.compile(r"^/events/([0-9A-Za-z-]{1,64})/?$"), "event"),
    (re.compile(r"^/trains/runs/([0-9A-Za-z-]{1,64})/?$"), "run"),
)


def page_subject(url: str) -> tuple[str, str] | None:
    """``("event", id)`` or ``("run", id)`` when the URL is the page of one; None otherwise."""
    return path_subject(urlsplit(url).path)


def path_subject(path: str) -> tuple[str, str] | None:
    for pattern, kind in _SUBJECTS:
        if match := pattern.match(path):
            return kind, match.group(1)
    return None


def url_path(url: str) -> str:
    return urlsplit(url).path or "/"


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


class TokenBucket:
    """Per-client rate limit in events: ``rate`` per second, bursts up to ``burst``.

    Clients that have been idle long enough to be full again are forgotten (the table stays small).
    """

    def __init__(self, *, rate: float, burst: float, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clients: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, cost: float, now: float) -> float:
        """Take ``cost`` tokens; 0.0 when allowed, else the seconds after which they would be there."""
        tokens, last = self._clients.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        cost = min(cost, self.burst)  # a batch larger than the burst still gets through on a full bucket
        if tokens >= cost:
            self._clients[client] = (tokens - cost, now)
            self._forget_full(now)
            return 0.0
        self._clients[client] = (tokens, now)
        return (cost - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        while self._clients:
            oldest, (_, last) = next(iter(self._clients.items()))
            if len(self._clients) <= self.max_clients and now - last < refill:
                break
            del self._clients[oldest]


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class RateWatch:
    """Flags sessions that send faster than a person can: more than ``max_per_minute`` events in one minute
    of their own clock. Remembers the last ``max_sessions`` sessions (the processor's view, per replica)."""

    def __init__(self, *, max_per_minute: int, max_sessions: int = 50_000) -> None:
        self.max_per_minute = max_per_minute
        self.max_sessions = max_sessions
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._flagged: OrderedDict[str, None] = OrderedDict()

    def observe(self, session_id: str, ts: datetime) -> bool:
        """Count one event; True when its session is (or once was) too fast to be a person."""
        minute = int(ts.timestamp() // 60)
        current, count = self._counts.pop(session_id, (minute, 0))
        count = count + 1 if current == minute else 1
        self._counts[session_id] = (minute, count)
        if count > self.max_per_minute:
            self._flagged[session_id] = None
        while len(self._counts) > self.max_sessions:
            self._counts.popitem(last=False)
        while len(self._flagged) > self.max_sessions:
            self._flagged.popitem(last=False)
        return session_id in self._flagged


@dataclass(frozen=True, slots=True)
class Cursor:
    ts: datetime
    event_id: str

    def encode(self) -> str:
        return pagination.encode_cursor(self.ts, self.event_id)

    @classmethod
    def decode(cls, value: str) -> Cursor:
        return cls(*pagination.decode_cursor(value, datetime))


@dataclass(frozen=True, slots=True)
class EventFilter:
    user_id: str | None = None
    session_id: str | None = None
    anonymous_id: str | None = None
    type: str | None = None
    start: datetime | None = None
    end: datetime | None = None


Interval = Literal["minute", "hour", "day"]
MAX_BUCKETS = 20_000


def check_range(start: datetime, end: datetime, interval: Interval) -> None:
    if end <= start:
        raise InvalidRange("'to' must be after 'from'.")
    size = {"minute": 60, "hour": 3600, "day": 86400}[interval]
    if (end - start).total_seconds() / size > MAX_BUCKETS:
        raise InvalidRange(f"That range has more than {MAX_BUCKETS} {interval}s; use a larger interval.")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    type: str
    name: str | None
    ts: datetime
    received_at: datetime
    user_id: str | None
    session_id: str
    anonymous_id: str
    url: str
    path: str
    referrer: str | None
    title: str | None
    element: dict[str, str] | None
    props: dict[str, Any] | None
    browser: str
    os: str
    device: str
    is_bot: bool
    subject_type: str | None
    subject_id: str | None


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[StoredEvent]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class StatsBucket:
    bucket_start: datetime
    type: str
    events: int
    sessions: int
    users: int


@dataclass(frozen=True, slots=True)
class PageCount:
    path: str
    views: int
    sessions: int


@dataclass(frozen=True, slots=True)
class CollectResult:
    accepted: int
    rejected: list[tuple[int, str]]


def day_of(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
