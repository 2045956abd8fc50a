"""A recorded ``ticket-bookings`` stream, generated from a seed: the input of the analytics tests, the Flink
differential test and the throughput benchmark.

Bookings (confirmations, and cancellations of some of them later) for ``events`` events and runs over
``minutes`` minutes of event time. The records arrive out of order, but within the watermark's bound: each
arrives at its event time plus a delay below ``max_disorder`` seconds, so no record is ever later than
``max_disorder`` behind the newest one before it (globally, hence in every partition too), and nothing is
late for a watermark with a bound at least that large.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from boxoffice.platform.bus.envelope import Envelope

TOPIC = "ticket-bookings"
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CURRENCIES = ("EUR", "GBP", "INR", "USD")


@dataclass(frozen=True, slots=True)
class Recorded:
    arrival: float  # seconds after START: the order the records are in on the bus
    envelope: Envelope


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def generate(
    *,
    seed: int = 2026,
    bookings: int = 5000,
    events: int = 20,
    minutes: int = 30,
    max_disorder: float = 4.0,
    cancel_share: float = 0.06,
    start: datetime = START,
) -> list[Envelope]:
    """The stream in arrival order (confirmations plus cancellations: a little more than ``bookings``)."""
    rng = random.Random(seed)
    ids = [f"{'run' if i % 5 == 4 else 'ev'}-{seed}-{i:02d}" for i in range(events)]
    weights = [rng.uniform(0.2, 3.0) for _ in ids]  # some events sell much faster than others
    span = minutes * 60.0
    recorded: list[Recorded] = []
    for n in range(bookings):
        event_id = rng.choices(ids, weights)[0]
        index = ids.index(event_id)
        kind = "train" if event_id.startswith("run") else "event"
        currency = CURRENCIES[index % len(CURRENCIES)]
        tickets = rng.choice((1, 1, 1, 2, 2, 3, 4))
        price = 1500 + 500 * (index % 7)
        at = rng.uniform(0, span - 0.001)
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        user_id = f"user-{rng.randrange(2000)}"
        data = {
            "event_id": event_id,
            "user_id": user_id,
            "order_id": order_id,
            "ticket_count": tickets,
            "amount_minor": tickets * price,
            "currency": currency,
            "status": "confirmed",
            "timestamp": _stamp(start + timedelta(seconds=round(at, 3))),
            "kind": kind,
            "holder_name": f"Fan {n}",
            "items": [],
        }
        recorded.append(_record(rng, at, max_disorder, data, "booking.order-confirmed", start))
        if rng.random() < cancel_share:
            later = min(span - 0.001, at + rng.uniform(5, 600))
            cancelled = {**data, "status": "cancelled", "timestamp": _stamp(start + timedelta(seconds=round(later, 3)))}
            recorded.append(_record(rng, later, max_disorder, cancelled, "booking.order-cancelled", start))
    recorded.sort(key=lambda r: r.arrival)
    return [r.envelope for r in recorded]


def _record(
    rng: random.Random, at: float, disorder: float, data: dict[str, object], type_: str, start: datetime
) -> Recorded:
    arrival = at + rng.uniform(0, disorder * 0.999)
    envelope = Envelope(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        type=type_,
        source="booking",
        time=start + timedelta(seconds=arrival),
        key=str(data["event_id"]),
        data=data,
        topic=TOPIC,
    )
    return Recorded(arrival, envelope)


def write_json_lines(envelopes: Iterable[Envelope], path: Path) -> None:
    """The records as the topic holds them, one JSON object per line (Flink's filesystem source reads it)."""
    with path.open("wb") as out:
        for envelope in envelopes:
            out.write(envelope.to_json() + b"\n")


def expected_windows(
    envelopes: Sequence[Envelope], window_seconds: int = 60
) -> dict[tuple[str, str], tuple[int, int, int, str]]:
    """What every window must add up to when nothing is late: (event, window_start) -> totals. An oracle
    written without the worker's code, to check the worker and Flink against something independent."""
    totals: dict[tuple[str, str], tuple[int, int, int, str]] = {}
    for envelope in envelopes:
        data = envelope.data
        at = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
        epoch = int(at.timestamp() // window_seconds) * window_seconds
        key = (str(data["event_id"]), _stamp(datetime.fromtimestamp(epoch, UTC)))
        sign = -1 if data["status"] == "cancelled" else 1
        tickets, orders, revenue, _ = totals.get(key, (0, 0, 0, ""))
        totals[key] = (
            tickets + sign * int(data["ticket_count"]),  # type: ignore[call-overload]
            orders + sign,
            revenue + sign * int(data["amount_minor"]),  # type: ignore[call-overload]
            str(data["currency"]),
        )
    return totals


