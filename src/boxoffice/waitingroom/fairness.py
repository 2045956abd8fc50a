"""Replaying a line from its record: who was admitted when, and why, and whether the rules held.

Everything needed is stored: every place's arrival number and join time, the seed drawn at the opening,
and every admission (or pass-over) with its position, time, tick and the rate in force. The replay redoes
the pre-queue draw from the seed and checks that the positions given match it, that people were admitted
strictly in position order, that no tick admitted more than its rate allowed, and that every admission went
in at the rate the record of rate changes had in force (each change is kept with the signals that caused it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boxoffice.waitingroom import domain, store
from boxoffice.waitingroom.deps import WaitingRoomDeps


@dataclass(frozen=True, slots=True)
class Step:
    seq: int
    at: datetime
    position: int
    user_id: str
    outcome: str
    why: str


@dataclass
class Replay:
    event_id: str
    seed: str | None
    prequeue: int
    steps: list[Step] = field(default_factory=list)
    rate_changes: list[store.RateChangeRow] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def fair(self) -> bool:
        return not self.violations


async def replay_line(deps: WaitingRoomDeps, event_id: str) -> Replay:
    async with deps.db.read() as conn:
        room = await store.room(conn, event_id)
        if room is None:
            raise domain.NoWaitingRoom("This sale has no waiting room.")
        places = await store.arrivals(conn, event_id)
        record = await store.admission_record(conn, event_id)
        rates = await store.rate_record(conn, event_id)
    early = [p for p in places if room.opened_at is not None and p.joined_at < room.opened_at]
    replay = Replay(event_id, room.seed, len(early), rate_changes=rates)
    if room.seed is not None:
        drawn = domain.draw_positions([p.user_id for p in early], room.seed)
        given = {p.user_id: p.position for p in early}
        wrong = [uid for index, uid in enumerate(drawn) if given.get(uid) != index + 1]
        if wrong:
            replay.violations.append(f"{len(wrong)} pre-queue positions differ from the draw of seed {room.seed}")
    last_position, tick_counts = 0, dict[int, int]()
    previous_at: dict[int, datetime] = {}
    for row in record:
        if row.position <= last_position:
            replay.violations.append(f"position {row.position} went in after position {last_position} (seq {row.seq})")
        last_position = max(last_position, row.position)
        why = "passed over: did not ask for its place in time" if row.outcome == "abandoned" else (
            f"next in line at tick {row.tick}, rate {row.rate_per_minute:.0f}/min"
        )
        replay.steps.append(Step(row.seq, row.at, row.position, row.user_id, row.outcome, why))
        if row.outcome == "admitted":
            tick_counts[row.tick] = tick_counts.get(row.tick, 0) + 1
            previous_at.setdefault(row.tick, row.at)
    _check_rates(replay, record, rates)
    ticks = sorted(previous_at)
    for before, tick in zip([None, *ticks], ticks, strict=False):
        rate = next(r.rate_per_minute for r in record if r.tick == tick)
        elapsed = 5.0 if before is None else min(5.0, (previous_at[tick] - previous_at[before]).total_seconds())
        allowed = math.floor(1 + rate / 60.0 * max(elapsed, 1.0))
        if tick_counts[tick] > allowed:
            count = tick_counts[tick]
            replay.violations.append(f"tick {tick} admitted {count}, more than the rate allowed ({allowed})")
    return replay


def _check_rates(replay: Replay, record: list[Any], rates: list[store.RateChangeRow]) -> None:
    """Every admission's rate is the one the last rate change before it put in force."""
    if not rates:
        return  # a line recorded before rate changes were kept
    index, in_force, wrong = 0, None, 0
    for row in record:
        while index < len(rates) and rates[index].at <= row.at:
            in_force = rates[index].to_rate
            index += 1
        if row.outcome == "admitted" and (in_force is None or not math.isclose(row.rate_per_minute, in_force)):
            wrong += 1
    if wrong:
        replay.violations.append(f"{wrong} admissions at a rate no recorded rate change put in force")
