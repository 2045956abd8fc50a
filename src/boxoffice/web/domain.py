"""Pure rules of the web front end: formatting, countdowns, CSRF tokens, friendly errors, seat layouts.

Nothing here does I/O; the page handlers and the templates call these, and unit tests pin them down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from boxoffice.platform import localtime

CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "INR": "₹"}
CATEGORIES = ("concert", "theatre", "comedy", "sports", "festival")
CURRENCIES = ("EUR", "GBP", "USD", "INR")
TEST_CARDS = (
    ("4242424242424242", "succeeds"),
    ("4000000000000002", "is declined"),
    ("4000000000009995", "is declined: insufficient funds"),
)


SESSION_COOKIE = "bo_session"
CSRF_COOKIE = "bo_csrf"


# The session: identity's token pair in one cookie ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tokens:
    access: str
    refresh: str

    def encode(self) -> str:
        raw = json.dumps({"a": self.access, "r": self.refresh}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> Tokens | None:
        if not value:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            return cls(access=str(data["a"]), refresh=str(data["r"]))
        except (ValueError, KeyError, TypeError):
            return None


def is_id(value: str) -> bool:
    """Every id the services give out is a UUID; anything else in a page's address names nothing."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


# Money and time --------------------------------------------------------------------------------------------


def format_money(minor: int, currency: str) -> str:
    """``format_money(269480, "INR")`` → ``"₹2,694.80"``; unknown currencies keep their code."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(minor), 100)
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = f"{major:,}.{cents:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def parse_money(text: str) -> int | None:
    """A price typed by a person (``"45"``, ``"45.5"``, ``"1,250.00"``) in minor units; None if unreadable."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    match = re.fullmatch(r"(\d{1,9})(?:\.(\d{1,2}))?", cleaned)
    if not match:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_when(value: str | datetime, zone: str | None = None) -> str:
    """``"Tue 01 Dec 2026, 16:55 IST"``: a time where it happens (the event's or the station's zone), with the
    zone's abbreviation; in UTC, and saying so, where no place is involved (a sale opening, a hold)."""
    return localtime.format_local(parse_time(value), zone)


def format_clock(value: str | datetime, zone: str | None = None) -> str:
    """``"16:55"`` in UTC, or ``"16:55 IST"`` in the zone of the place."""
    return localtime.format_local(parse_time(value), zone, "%H:%M %Z" if zone else "%H:%M")


def format_day(value: str | datetime, zone: str | None = None) -> str:
    return localtime.format_local(parse_time(value), zone, "%a %d %b")


def format_duration(departs: str | datetime, arrives: str | datetime) -> str:
    minutes = max(0, int((parse_time(arrives) - parse_time(departs)).total_seconds() // 60))
    hours, rest = divmod(minutes, 60)
    return f"{hours}h {rest:02d}m" if hours else f"{rest}m"


def format_wait(seconds: int | float | None) -> str:
    """An estimated wait as a person says it: "under a minute", "about 4 minutes", "about 2 hours"."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"about {round(minutes / 60)} hours"


def seconds_left(expires_at: str | datetime, now: datetime) -> float:
    """Seconds until ``expires_at``, never negative (a countdown must not end before the hold does)."""
    return max(0.0, (parse_time(expires_at) - now).total_seconds())


def countdown_label(seconds: float) -> str:
    """``"9:59"``; rounds up, so it reads ``0:00`` only once the time is really up."""
    minutes, rest = divmod(max(0, math.ceil(seconds)), 60)
    return f"{minutes}:{rest:02d}"


# CSRF: a signed double-submit token ------------------------------------------------------------------------


def _csrf_signature(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"boxoffice-web-csrf-v1:" + nonce.encode(), hashlib.sha256).hexdigest()[:32]


def new_csrf_token(secret: bytes) -> str:
    """``nonce.signature``: the cookie holds it, every form repeats it; only we can sign a nonce."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_csrf_signature(secret, nonce)}"


def csrf_token_is_ours(secret: bytes, token: str | None) -> bool:
    if not token or token.count(".") != 1:
        return False
    nonce, signature = token.split(".")
    return hmac.compare_digest(signature, _csrf_signature(secret, nonce))


def csrf_accepts(secret: bytes, cookie: str | None, submitted: str | None) -> bool:
    """A form is ours when it repeats the cookie's token and that token carries our signature.

    A cross-site page can make the browser send the cookie, but cannot read it to repeat it in the form.
    """
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        return False
    return csrf_token_is_ours(secret, cookie)


def same_origin(origin: str | None, host: str | None) -> bool:
    """An ``Origin`` header, when the browser sends one, must name this site."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return re.sub(r"^https?://", "", origin).rstrip("/") == host


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after logging in: only a path on this site (no ``//evil.example``, no scheme).

    Browsers drop tabs and line breaks inside a URL and read a backslash as a slash, so ``/\t/evil.example``
    or ``/\\evil.example`` would leave the site: any control character, space or backslash refuses the target.
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# A buyer's choice kept across logging in -------------------------------------------------------------------

CHOICE_SECONDS = 30 * 60  # long enough to register and type the e-mailed code


def _choice_signature(secret: bytes, binding: str, body: str) -> str:
    message = f"boxoffice-web-choice-v1\x1f{binding}\x1f{body}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def seal_choice(secret: bytes, binding: str, choice: str, *, now: datetime) -> str:
    """``choice`` (a JSON text) as a token for a ``next`` address, signed and bound to ``binding``.

    The binding is the browser's CSRF token: a link someone else made cannot carry a choice this browser's
    pages will act on, and the choice cannot be altered on its way through the login form. It expires after
    ``CHOICE_SECONDS``.
    """
    expires = int(now.timestamp()) + CHOICE_SECONDS
    body = base64.urlsafe_b64encode(json.dumps([expires, choice]).encode()).decode().rstrip("=")
    return f"{body}.{_choice_signature(secret, binding, body)}"


def open_choice(secret: bytes, binding: str | None, token: str | None, *, now: datetime) -> str | None:
    """The choice ``seal_choice`` sealed, or None when the token is not ours, not this browser's, or too old."""
    if not binding or not token or len(token) > 4000 or token.count(".") != 1:
        return None
    body, signature = token.split(".")
    if not hmac.compare_digest(signature, _choice_signature(secret, binding, body)):
        return None
    try:
        expires, choice = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(expires, int) or not isinstance(choice, str) or expires < now.timestamp():
        return None
    return choice


# Friendly errors -------------------------------------------------------------------------------------------

FRIENDLY: dict[str, str] = {
    "seat-unavailable": "Sorry, one or more of those seats were taken meanwhile. Please pick others.",
    "sold-out": "Sorry, there are not enough tickets left for that. Try a smaller number or another section.",
    "hold-expired": "Your hold expired before the payment went through, so the seats were released. "
    "Nothing was charged. Please choose your seats again.",
    "payment-declined": "Your card was declined. Nothing was charged; try another card.",
    "invalid-credentials": "The e-mail or the password is wrong.",
    "email-not-verified": "Please verify your e-mail address first: enter the code we sent you.",
    "email-taken": "An account with this e-mail already exists. Log in instead?",
    "too-many-requests": "Too many attempts at once. Please wait a moment and try again.",
    "service-unavailable": "This part of boxoffice is briefly unavailable. Please try again in a moment.",
    "already-used": "This ticket has been checked in before.",
    "invalid-code": "This is not a valid boxoffice ticket: forged, altered or mistyped.",
    "unauthorized": "Please log in to continue.",
    "forbidden": "Your account is not allowed to do this.",
    "not-found": "We could not find that. It may have been removed.",
}


@dataclass(frozen=True, slots=True)
class ProblemInfo:
    status: int
    slug: str
    title: str
    detail: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def problem_from_body(status: int, body: Any) -> ProblemInfo:
    """Reads an RFC 9457 problem (or anything else an API answered with) into a ``ProblemInfo``."""
    if not isinstance(body, dict):
        body = {}
    slug = str(body.get("type") or "").rstrip("/").rsplit("/", 1)[-1] or f"http-{status}"
    known = {"type", "title", "status", "detail"}
    return ProblemInfo(
        status=status,
        slug=slug,
        title=str(body.get("title") or "Something went wrong"),
        detail=str(body.get("detail") or body.get("title") or "Something went wrong."),
        extra={k: v for k, v in body.items() if k not in known},
    )


def friendly_message(problem: ProblemInfo) -> str:
    """What the page says about an API problem: our wording for the known ones, the API's detail otherwise."""
    if problem.slug == "payment-declined" and problem.extra.get("decline_code") == "insufficient_funds":
        return "Your card was declined for insufficient funds. Nothing was charged; try another card."
    if problem.slug in FRIENDLY:
        return FRIENDLY[problem.slug]
    if problem.slug.startswith("http-") and problem.status >= 500:
        return "Something went wrong on our side. Please try again."
    return problem.detail


class StationLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def city(self) -> str: ...


# The gate -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckinResult:
    outcome: str  # "admitted" | "used" | "wrong-event" | "invalid"
    message: str
    ticket_id: str | None = None
    holder_name: str = ""
    event_name: str = ""
    section: str | None = None
    seat: str = ""
    retry: bool = False
    kind: str = "event"  # event | train


@dataclass(frozen=True, slots=True)
class GateTarget:
    """What a gate admits to: an event, or a train run (a conductor's gate: its tickets name the run)."""

    id: str
    kind: str  # "event" | "train"
    name: str
    starts_at: str
    timezone: str
    place: str


GATE_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def gate_nonce() -> str:
    """A new scan's client nonce: a retry of the same scan repeats it, a new scan gets a new one."""
    return secrets.token_urlsafe(16)


def gate_name(text: str) -> str | None:
    """The gate's name as staff typed it: printable, at most 64 characters, or None."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", text).strip()[:64]
    return cleaned or None


# Forms -----------------------------------------------------------------------------------------------------


def parse_row_labels(text: str) -> list[str]:
    """Row labels typed by an operator: ``"A-F"``, ``"A, B, C"``, ``"1-12"``, or a mix."""
    labels: list[str] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        span = re.fullmatch(r"([A-Za-z])-([A-Za-z])|(\d{1,3})-(\d{1,3})", part)
        if span and span.group(1):
            first, last = ord(span.group(1).upper()), ord(span.group(2).upper())
            labels.extend(chr(c) for c in range(first, last + 1))
        elif span:
            labels.extend(str(n) for n in range(int(span.group(3)), int(span.group(4)) + 1))
        else:
            labels.append(part.upper())
    return list(dict.fromkeys(labels))


def resolve_station(text: str, stations: Sequence[StationLike]) -> str | None:
    """A station typed or picked: its code, its name, its city, or ``"Name (CODE)"``."""
    wanted = text.strip()
    if not wanted:
        return None
    match = re.search(r"\(([A-Za-z0-9]{2,8})\)\s*$", wanted)
    if match:
        wanted = match.group(1)
    lowered = wanted.lower()
    for key in ("code", "name", "city"):
        for station in stations:
            if str(getattr(station, key)).lower() == lowered:
                return station.code
    return None


def attempt_key(*parts: str) -> str:
    """An Idempotency-Key from what makes one attempt that attempt (a resubmitted form repeats it)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
