"""The waiting room's adaptive rate as a pure function, driven by scripted signals from booking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from boxoffice.waitingroom import domain
from boxoffice.waitingroom.domain import RateRule, Signals, next_rate

RULE = RateRule(floor=30, ceiling=6000, step=60, window=200)


def healthy(holds: int = 40, *, waiting: int = 500, unheld: int = 20) -> Signals:
    return Signals(holds=holds, slow_holds=0, due=holds, stalled=0, waiting=waiting, unheld=unheld)


def slow(holds: int = 40) -> Signals:
    return Signals(holds=holds, slow_holds=holds // 2, due=holds, stalled=0, waiting=500, unheld=20)


def stalled(due: int = 40) -> Signals:
    return Signals(holds=0, slow_holds=0, due=due, stalled=due, waiting=500, unheld=20)


def drive(rate: float, script: list[Signals]) -> list[float]:
    rates = []
    for signals in script:
        rate = next_rate(rate, signals, RULE).rate
        rates.append(rate)
    return rates


def test_it_grows_by_a_step_while_booking_is_healthy() -> None:
    assert drive(600, [healthy()] * 5) == [660, 720, 780, 840, 900]
    assert next_rate(600, healthy(), RULE).reason.startswith("grew")


def test_fewer_holds_alone_do_not_slow_it_down() -> None:
    """The flaw this replaces: buyers slowed down by something else hold less, which is no sign of saturation."""
    falling_holds = [healthy(holds) for holds in (50, 30, 10, 2, 0)]
    assert drive(600, falling_holds) == [660, 720, 780, 840, 900]


def test_it_halves_on_slow_holds_or_buyers_failing_to_hold() -> None:
    assert next_rate(800, slow(), RULE).rate == 400
    assert "slower than the target" in next_rate(800, slow(), RULE).reason
    assert next_rate(800, stalled(), RULE).rate == 400
    assert "placed no hold" in next_rate(800, stalled(), RULE).reason


def test_a_few_slow_holds_or_gone_buyers_are_tolerated() -> None:
    one_slow = Signals(holds=40, slow_holds=3, due=40, stalled=0, waiting=500, unheld=20)
    some_gone = Signals(holds=40, slow_holds=0, due=40, stalled=8, waiting=500, unheld=20)  # 20 % left
    assert next_rate(800, one_slow, RULE).rate == 860
    assert next_rate(800, some_gone, RULE).rate == 860


def test_additive_increase_multiplicative_decrease_saw_tooth() -> None:
    script = [healthy()] * 3 + [slow()] + [healthy()] * 2 + [stalled()]
    assert drive(600, script) == [660, 720, 780, 390, 450, 510, 255]


def test_it_never_reaches_zero_however_long_booking_stays_saturated() -> None:
    rates = drive(6000, [slow()] * 50 + [stalled()] * 50)
    assert min(rates) == RULE.floor > 0
    assert rates[-1] == RULE.floor
    assert next_rate(RULE.floor, slow(), RULE).rate == RULE.floor


def test_it_stays_within_the_ceiling() -> None:
    assert drive(5950, [healthy()] * 3) == [6000, 6000, 6000]


def test_it_does_not_grow_without_demand_or_with_the_window_full() -> None:
    nobody = healthy(waiting=0)
    assert next_rate(600, nobody, RULE) == domain.RateChange(600, "kept: nobody waiting")
    full = healthy(unheld=200)
    assert next_rate(600, full, RULE).rate == 600 and "window full" in next_rate(600, full, RULE).reason


def test_the_window_caps_admitted_buyers_without_a_hold() -> None:
    assert domain.window_room(10, 0, 200) == 10
    assert domain.window_room(10, 195, 200) == 5
    assert domain.window_room(10, 200, 200) == 0
    assert domain.window_room(10, 250, 200) == 0


@pytest.mark.parametrize(
    ("eta", "expected"),
    [(4, 2), (40, 10), (400, 20), (40_000, 20)],
)
def test_waiting_buyers_are_told_to_poll_rarely_when_their_turn_is_far(eta: int, expected: int) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    room = domain.Room(
        event_id="e", name="Sale", on_sale_at=now - timedelta(minutes=1), admit_per_minute=None,
        rate_per_minute=600, status=domain.RoomStatus.OPEN, seed="s", capacity=100, sold=0, next_position=10,
        admitted_through=0, carry=0.0, last_tick_at=now, opened_at=now,
    )
    place = domain.Place(
        event_id="e", user_id="u", arrival=1, joined_at=now, position=5, status=domain.PlaceStatus.WAITING,
        reason=None, admitted_at=None, expires_at=None, last_seen_at=now, converted=False,
    )
    assert domain.poll_after(domain.Standing(place, 4, eta), room, now) == expected
    admitted = domain.Place(**{**{f: getattr(place, f) for f in place.__slots__}, "status": domain.PlaceStatus.ADMITTED})
    assert domain.poll_after(domain.Standing(admitted, 0, 0), room, now) is None
