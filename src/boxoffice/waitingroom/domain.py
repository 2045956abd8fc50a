"""The waiting room's rules: who stands where, how many go in, and when the line closes. No I/O.

A room belongs to one queued sale (an event). Before ``on_sale_at`` people join a pre-queue with no
position. At the opening everyone in the pre-queue gets a position from a shuffle seeded by a random seed
that is recorded, so arriving early gives no advantage and anyone can replay the draw. After the opening a
newcomer gets the next position (first come, first served). Admission goes in position order at a rate
(people per minute), as a token bucket: fractions carry over from one tick to the next, so a rate of 90 per
minute admits 3 every 2 seconds, never a burst. A place admitted gets a signed admission that booking
requires for holds on the event; it expires, and a place whose holder stops asking is abandoned.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from boxoffice.platform.problems import Conflict, Forbidden, NotFound, Problem


class RoomStatus(StrEnum):
    SCHEDULED = "scheduled"  # before on_sale_at: the pre-queue
    OPEN = "open"
    CLOSED = "closed"  # sold out


class PlaceStatus(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    CLOSED = "closed"


class CloseReason(StrEnum):
    SOLD_OUT = "sold_out"
    ADMISSION_EXPIRED = "admission_expired"
    ABANDONED = "abandoned"


class NoWaitingRoom(NotFound):
    slug = "no-waiting-room"
    title = "This sale has no waiting room"


class QueueClosed(Problem):
    status = 410
    slug = "queue-closed"
    title = "The line is closed"


class NotAdmitted(Forbidden):
    slug = "not-admitted"
    title = "Not admitted yet"


class AlreadyQueued(Conflict):
    slug = "already-queued"
    title = "This sale already has a waiting room"


@dataclass(frozen=True, slots=True)
class Room:
    event_id: str
    name: str
    on_sale_at: datetime
    admit_per_minute: int | None  # None: adapt to what booking sustains
    rate_per_minute: float  # the rate in force now
    status: RoomStatus
    seed: str | None  # the pre-queue draw's seed, recorded at the opening
    capacity: int
    sold: int
    next_position: int
    admitted_through: int  # the highest position admitted or passed over
    carry: float  # the token bucket's fraction left from the last tick
    last_tick_at: datetime | None
    opened_at: datetime | None
    adjusted_at: datetime | None = None  # the adaptive rate's last adjustment
    signal_holds: int = 0  # holds seen since then
    signal_slow: int = 0  # of those, slower than the latency target inside booking


@dataclass(frozen=True, slots=True)
class Place:
    event_id: str
    user_id: str
    arrival: int  # join order, 1, 2, ... (what the pre-queue draw shuffles)
    joined_at: datetime
    position: int | None  # None while in the pre-queue
    status: PlaceStatus
    reason: CloseReason | None
    admitted_at: datetime | None
    expires_at: datetime | None  # the admission's end
    last_seen_at: datetime
    converted: bool  # placed a hold while admitted


@dataclass(frozen=True, slots=True)
class Standing:
    """What a buyer sees of their place."""

    place: Place
    ahead: int
    eta_seconds: int | None


def draw_positions(arrivals: Sequence[str], seed: str) -> list[str]:
    """The pre-queue draw: ``arrivals`` (user ids in join order) in a shuffled order. Same seed, same order."""
    order = list(arrivals)
    random.Random(seed).shuffle(order)  # noqa: S311 - fairness needs replayability, not secrecy; the seed is random
    return order


def admit_count(
    rate_per_minute: float, elapsed_seconds: float, carry: float, *, max_elapsed: float = 5.0
) -> tuple[int, float]:
    """How many to admit after ``elapsed_seconds`` at ``rate_per_minute``, and the fraction to carry on.

    Only a fraction (< 1) carries over, and a stall counts for at most ``max_elapsed`` seconds, so a late
    tick never admits a burst.
    """
    tokens = carry + min(max(0.0, elapsed_seconds), max_elapsed) * rate_per_minute / 60.0
    count = math.floor(tokens)
    return count, tokens - count


@dataclass(frozen=True, slots=True)
class Signals:
    """What the room saw of booking since its last rate adjustment (measured on booking's side)."""

    holds: int  # holds placed on the sale (booking.hold-placed)
    slow_holds: int  # of those, how many took booking longer than the latency target
    due: int  # buyers admitted whose grace to hold has just run out (admitted in the last period, one grace ago)
    stalled: int  # of those, how many placed no hold: admitted buyers failing to hold (5xx, 503, timeouts, gone)
    waiting: int  # people still waiting with a position: is there anyone to admit faster?
    unheld: int  # admitted and not yet held now: the use of the concurrency window


@dataclass(frozen=True, slots=True)
class RateRule:
    """The adaptive rate's settings: additive increase, multiplicative decrease, like TCP's congestion window."""

    floor: float  # never below this (so never zero)
    ceiling: float
    step: float  # people per minute added at each healthy adjustment
    decrease: float = 0.5  # the rate is multiplied by this on a sign of saturation
    window: int = 200  # at most this many admitted buyers who have not held yet
    slow_share: float = 0.1  # saturated when more than this share of holds were slower than the target
    stall_share: float = 0.25  # saturated when more than this share of the due buyers placed no hold


@dataclass(frozen=True, slots=True)
class RateChange:
    rate: float
    reason: str  # why, for the audit record


def next_rate(current: float, signals: Signals, rule: RateRule) -> RateChange:
    """The admission rate for the next period when the organiser set none (AIMD).

    It slows down only on signs that booking is saturated: holds slower than the target inside booking, or
    admitted buyers who did not manage to hold in time; then it halves. Fewer holds alone are no such sign
    (buyers may simply be slow, or something else may slow them down). Otherwise, while people wait and the
    concurrency window has room, it grows by a fixed step. It stays within floor and ceiling, so never zero.
    """

    def clamp(rate: float) -> float:
        return min(max(rate, rule.floor, 1e-9), max(rule.ceiling, rule.floor))

    if signals.holds and signals.slow_holds > rule.slow_share * signals.holds:
        reason = f"halved: {signals.slow_holds} of {signals.holds} holds slower than the target in booking"
        return RateChange(clamp(current * rule.decrease), reason)
    if signals.due and signals.stalled > rule.stall_share * signals.due:
        reason = f"halved: {signals.stalled} of {signals.due} admitted buyers placed no hold in time"
        return RateChange(clamp(current * rule.decrease), reason)
    if signals.waiting == 0:
        return RateChange(clamp(current), "kept: nobody waiting")
    if signals.unheld >= rule.window:
        return RateChange(clamp(current), f"kept: window full ({signals.unheld} admitted without a hold yet)")
    return RateChange(clamp(current + rule.step), f"grew: healthy ({signals.holds} holds, none slow or stalled)")


def window_room(count: int, unheld: int, window: int) -> int:
    """How many of ``count`` may go in now: admitted buyers without a hold stay under the window."""
    return max(0, min(count, window - unheld))


POLL_MIN, POLL_MAX = 2, 20  # seconds between a waiting buyer's status polls (sold out reaches all within 20 s)


def poll_after(standing: Standing, room: Room, now: datetime) -> int | None:
    """When the buyer should ask again (seconds; the ``Retry-After`` hint): rarely when the turn is far off,
    every 2 seconds when it is near; never once admitted or closed."""
    if standing.place.status != PlaceStatus.WAITING:
        return None
    if room.status == RoomStatus.SCHEDULED or standing.eta_seconds is None:
        to_open = (room.on_sale_at - now).total_seconds()
        return int(min(POLL_MAX, max(POLL_MIN, to_open / 2)))
    return int(min(POLL_MAX, max(POLL_MIN, standing.eta_seconds / 4)))


def ahead_of(place: Place, room: Room) -> int:
    """People before this place who are still to be admitted (0 once admitted, or before the draw)."""
    if place.status != PlaceStatus.WAITING or place.position is None:
        return 0
    return max(0, place.position - room.admitted_through - 1)


def eta_seconds(ahead: int, rate_per_minute: float) -> int | None:
    if rate_per_minute <= 0:
        return None
    return math.ceil(ahead / (rate_per_minute / 60.0))


def standing(place: Place, room: Room, now: datetime) -> Standing:
    ahead = ahead_of(place, room)
    eta: int | None
    if place.status != PlaceStatus.WAITING:
        eta = 0 if place.status == PlaceStatus.ADMITTED else None
    elif room.status == RoomStatus.SCHEDULED:
        # Before the opening nobody knows their position; the wait starts at on_sale_at.
        eta = max(0, math.ceil((room.on_sale_at - now).total_seconds()))
    else:
        eta = eta_seconds(ahead + 1, room.rate_per_minute)  # those ahead, then this place's own turn
    return Standing(place, ahead, eta)


def admission_valid(place: Place, now: datetime) -> bool:
    return place.status == PlaceStatus.ADMITTED and place.expires_at is not None and place.expires_at > now


def unseen(place: Place, now: datetime, abandon_after: timedelta) -> bool:
    """A waiting place whose holder stopped asking for longer than ``abandon_after`` (tab closed, gone)."""
    return place.status == PlaceStatus.WAITING and now - place.last_seen_at > abandon_after
