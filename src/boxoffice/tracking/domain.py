"""Clickstream rules: what a tracked event is, when a batch or a client is refused, which page a URL names.

No I/O here. The collector validates a whole batch in one ``TypeAdapter.validate_json`` pass over the body
(``parse_batch``): the events become plain dicts, and a bad event is rejected by its index without costing the
others. The processor validates what it reads from the bus again (``COLLECTED_BATCH``, ``EVENTS``), because
the bus is a boundary too.
"""

from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired
from urllib.parse import urlsplit

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from boxoffice.platform import pagination
from boxoffice.platform.jsonutil import dumps, loads
from boxoffice.platform.problems import (
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    Unprocessable,
    UnsupportedMediaType,
)

TOPIC = "user-tracking-events"
BATCH_TYPE = "tracking.batch-collected"
"""The collector's record: the accepted events of one request (``CollectedBatch``)."""
EVENT_TYPE = "tracking.event-collected"
"""One event per record, as collectors before the batch record published; the processor still reads them."""
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


class Element(TypedDict, total=False):
    tag: Annotated[str, StringConstraints(max_length=32)]
    text: Annotated[str, StringConstraints(max_length=200)]
    track: Annotated[str, StringConstraints(max_length=200)]


def _small_props(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(dumps(value))
    except TypeError:  # orjson's: an integer beyond 64 bits, say; the event could not travel on the bus
        raise ValueError("props must hold only JSON values of common sizes") from None
    if size > MAX_PROPS_BYTES:
        raise ValueError(f"props must stay under {MAX_PROPS_BYTES} bytes")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Props = Annotated[dict[str, Any], AfterValidator(_small_props)]
EventId = Annotated[
    str, StringConstraints(to_lower=True, pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
]
Timestamp = Annotated[
    str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$")
]
"""RFC 3339 with its zone, kept as the text the client sent: read by ``datetime.fromisoformat`` (fast, and its
datetimes compare without calling back into pydantic's own tzinfo, which costs microseconds a comparison)."""


class _EventFields(TypedDict):
    event_id: EventId
    ts: Timestamp
    anonymous_id: Id
    session_id: Id
    url: PageUrl
    user_id: NotRequired[Id | None]
    referrer: NotRequired[Url | None]
    title: NotRequired[Annotated[str, StringConstraints(max_length=300)] | None]
    element: NotRequired[Element | None]
    props: NotRequired[Props | None]


class CustomEvent(_EventFields):
    type: Literal["custom"]
    name: Name


class PageEvent(_EventFields):
    type: Literal["page_view", "click", "form_submit"]
    name: NotRequired[Name | None]


TrackedEvent = Annotated[CustomEvent | PageEvent, Field(discriminator="type")]
"""One event as the browser sends it (ARCHITECTURE.md section 5, "Tracking"), as a plain dict: the fields it
knows, as sent (``event_id`` lower-cased), without the ones it does not. Every rule is a constraint checked in
pydantic-core, straight from the JSON bytes: no Python runs per event but the props size check."""


class BatchIn(TypedDict):
    events: Annotated[list[TrackedEvent], Field(max_length=10_000)]
    sent_at: NotRequired[AwareDatetime | None]


BATCH = TypeAdapter(BatchIn)
EVENTS = TypeAdapter(list[TrackedEvent])


@dataclass(frozen=True, slots=True)
class Limits:
    max_events: int
    max_bytes: int
    retention: timedelta
    max_future: timedelta = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    accepted: list[TrackedEvent]
    """Each valid event, as it goes on the bus."""
    rejected: list[tuple[int, str]]


def parse_batch(body: bytes, *, limits: Limits, now: datetime) -> ParsedBatch:
    """Validate a batch in one pass over its bytes; events that break a rule are rejected by index.

    The whole batch is validated by ``TypeAdapter.validate_json``: no intermediate objects, and pydantic-core
    goes on past a bad event, so one failed pass names every bad event. Only then (a batch with a bad event is
    rare) are the good ones validated again on their own.
    """
    if len(body) > limits.max_bytes:
        raise BatchTooLarge(f"A batch may be at most {limits.max_bytes} bytes.")
    try:
        events = BATCH.validate_json(body)["events"]
        indexed: list[tuple[int, TrackedEvent]] = list(enumerate(events))
        rejected: dict[int, str] = {}
    except ValidationError as exc:
        indexed, rejected = _salvage(body, exc, limits)
    if len(indexed) + len(rejected) > limits.max_events:
        raise BatchTooLarge(f"A batch may hold at most {limits.max_events} events.")
    earliest, latest = now - limits.retention, now + limits.max_future
    accepted: list[TrackedEvent] = []
    seen: set[str] = set()
    for index, event in indexed:
        reason = time_problem(event["ts"], earliest, latest)
        if reason is None:
            if event["event_id"] in seen:
                reason = "event_id: repeated within the batch"
            else:
                seen.add(event["event_id"])
                accepted.append(event)
                continue
        rejected[index] = reason
    return ParsedBatch(accepted, sorted(rejected.items()))


def _salvage(
    body: bytes, exc: ValidationError, limits: Limits
) -> tuple[list[tuple[int, TrackedEvent]], dict[int, str]]:
    """A batch that failed validation: refuse it whole, or keep its good events and name the bad ones."""
    rejected: dict[int, str] = {}
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = error["loc"]
        if error["type"] == "json_invalid":
            raise MalformedBatch("The body is not valid JSON.") from None
        if loc == ("events",) and error["type"] == "too_long":
            raise BatchTooLarge(f"A batch may hold at most {limits.max_events} events.") from None
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            rejected.setdefault(loc[1], error_reason(loc[2:], error["type"], error["msg"]))
            continue
        where = ".".join(str(part) for part in loc) or "body"
        raise InvalidBatch(f"The body is not a batch of events: {where}: {error['msg']}.") from None
    try:
        items: list[Any] = loads(body)["events"]  # valid JSON, with a list of events: only events failed
    except (ValueError, KeyError, TypeError):  # a number orjson will not read, say
        raise MalformedBatch("The body is not JSON this collector can read.") from None
    if len(items) > limits.max_events:
        raise BatchTooLarge(f"A batch may hold at most {limits.max_events} events.")
    good = [index for index in range(len(items)) if index not in rejected]
    return list(zip(good, EVENTS.validate_python([items[i] for i in good]), strict=True)), rejected


def error_reason(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    """``field: what is wrong`` for one event's first error (without the union's tag in the path)."""
    if loc and loc[0] in EVENT_TYPES:
        if loc[1:] == ("name",) and kind == "missing":
            return "name: a custom event needs a name"
        loc = loc[1:]
    if not loc and kind == "union_tag_invalid":
        return f"type: must be one of {', '.join(EVENT_TYPES)}"
    where = ".".join(str(part) for part in loc)
    if kind == "string_pattern_mismatch" and where in _PATTERN_REASONS:
        message = _PATTERN_REASONS[where]
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


_PATTERN_REASONS = {
    "event_id": "must be a UUID",
    "ts": "must be an RFC 3339 date and time with its zone",
    "received_at": "must be an RFC 3339 date and time with its zone",
    "url": "must be an http(s) URL",
    "anonymous_id": "must be 1 to 64 letters, digits or _.:-",
    "session_id": "must be 1 to 64 letters, digits or _.:-",
    "user_id": "must be 1 to 64 letters, digits or _.:-",
}


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 timestamp (as ``Timestamp`` checked it) in UTC; None for a date that does not exist."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.utcoffset() else moment


def time_problem(ts: str, earliest: datetime, latest: datetime) -> str | None:
    """Events are stored by their own day; one older than the retention or far ahead has no place to go."""
    moment = parse_time(ts)
    if moment is None:
        return "ts: not a valid date and time"
    if moment < earliest:
        return "ts: older than the retention period"
    if moment > latest:
        return "ts: too far in the future"
    return None


class CollectedBatch(TypedDict):
    """A bus record of the collector: the events of one request and what the collector saw of it."""

    received_at: Timestamp
    user_agent: Annotated[str, StringConstraints(max_length=1024)]
    events: list[TrackedEvent]
    """Validated again by the processor (``EVENTS``, a whole poll at once), so one bad event fails alone."""


class RecordMeta(TypedDict):
    """What the processor checks of a record beside its events (both record types carry these)."""

    received_at: Timestamp
    user_agent: NotRequired[Annotated[str, StringConstraints(max_length=1024)]]


RECORD_META = TypeAdapter(RecordMeta)


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


@functools.lru_cache(maxsize=16_384)
def page_of(url: str) -> tuple[str, str | None, str | None]:
    """``(path, subject type, subject id)`` of a page URL; cached, as a site's pages repeat."""
    path = url_path(url)
    subject = path_subject(path)
    return path[:2048], subject[0] if subject else None, subject[1] if subject else None


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
        minute = int(ts.timestamp()) // 60
        counts = self._counts
        current = counts.get(session_id)
        if current is not None:
            counts.move_to_end(session_id)
        count = current[1] + 1 if current is not None and current[0] == minute else 1
        counts[session_id] = (minute, count)
        if count > self.max_per_minute:
            self._flagged[session_id] = None
            while len(self._flagged) > self.max_sessions:
                self._flagged.popitem(last=False)
        if len(counts) > self.max_sessions:
            counts.popitem(last=False)
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
