"""CPU per waiting-room request in one process, without the noise of a shared machine's scheduler.

    .venv/bin/python loadtest/waiting_room_cpu.py --buyers 2000 --polls 3 [--profile room.prof]

The waiting room and identity run in this process (the real runtime and gateway, every middleware, reached
through httpx's ASGI transport instead of a socket; no workers: the admission ticks are called here). Half
the buyers join the pre-queue, the room opens, the other half join the open line, then every buyer asks for
their place ``--polls`` times while a tick admits a few between rounds. It prints the process's CPU
milliseconds and SQL statements per join and per status request (the in-process client's share included,
uvicorn not), for comparing two versions of the code side by side; ``loadtest/waiting_room.py`` measures
the real server. ``--profile FILE`` writes a cProfile of the joins and polls (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import REGISTRY  # noqa: E402

from boxoffice.platform.bus.envelope import new_event  # noqa: E402
from boxoffice.platform.settings import Settings  # noqa: E402
from boxoffice.waitingroom import handlers  # noqa: E402
from tests.harness.app import FakeClock, running  # noqa: E402


def statements(database: str) -> float:
    for metric in REGISTRY.collect():
        if metric.name == "boxoffice_db_statements":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["database"] == database:
                    return sample.value
    return 0.0


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="room-cpu-") as data:
        async with running(Settings(data_dir=Path(data), demo=False), ["identity", "waitingroom"],
                           workers=False) as app:
            room = app.service("waitingroom")
            clock = room.clock = FakeClock()
            ring, now = app.service("identity").keyring(), datetime.now(UTC)
            tokens = []
            for _ in range(args.buyers):
                user = str(uuid.uuid4())
                token = ring.issue_access_token(user_id=user, email=f"{user[:8]}@load.example.com", name="Buyer",
                                                roles=["customer"], now=now, ttl=timedelta(hours=1))
                tokens.append({"Authorization": f"Bearer {token}"})
            event_id = str(uuid.uuid4())
            data_ = {"event_id": event_id, "name": "CPU probe", "starts_at": (now + timedelta(days=9)).isoformat(),
                     "sections": [{"section_id": f"{event_id}-s", "name": "Floor", "price": 100, "capacity": 500}],
                     "queue": {"on_sale_at": (clock.now + timedelta(minutes=5)).isoformat()}}
            await handlers.apply_catalog_event(room.deps, new_event(
                "catalog.event-published", source="catalog", key=event_id, data=data_, topic="catalog.events"))
            gate = asyncio.Semaphore(args.concurrency)
            failures: dict[str, int] = {}

            async def call(method: str, path: str, headers: dict[str, str]) -> None:
                async with gate:
                    response = await app.client.request(method, path, headers=headers)
                if response.status_code != 200:
                    what = f"{method} {response.status_code}"
                    failures[what] = failures.get(what, 0) + 1

            async def measured(work: list[tuple[str, str, dict[str, str]]]) -> tuple[float, float, float]:
                db, cpu, wall = statements("waitingroom"), time.process_time(), time.perf_counter()
                await asyncio.gather(*[call(*w) for w in work])
                return time.process_time() - cpu, statements("waitingroom") - db, time.perf_counter() - wall

            half = args.buyers // 2
            profile = cProfile.Profile() if args.profile else None
            join = f"/api/queue/{event_id}/join"
            with profile or contextlib.nullcontext():
                early = await measured([("POST", join, h) for h in tokens[:half]])
            clock.advance(minutes=6)
            await handlers.tick_rooms(room.deps)  # the opening: the pre-queue is drawn
            with profile or contextlib.nullcontext():
                late = await measured([("POST", join, h) for h in tokens[half:]])
            polls = [0.0, 0.0, 0.0]
            for _ in range(args.polls):
                clock.advance(seconds=1)
                await handlers.tick_rooms(room.deps)
                with profile or contextlib.nullcontext():
                    cpu, db, wall = await measured([("GET", f"/api/queue/{event_id}/me", h) for h in tokens])
                polls = [polls[0] + cpu, polls[1] + db, polls[2] + wall]
            if profile is not None:
                profile.dump_stats(args.profile)
    asks = args.buyers * args.polls
    print(json.dumps({
        "buyers": args.buyers,
        "failures": failures,
        "join_prequeue_cpu_ms": round(early[0] * 1000 / half, 3),
        "join_open_cpu_ms": round(late[0] * 1000 / (args.buyers - half), 3),
        "status_cpu_ms": round(polls[0] * 1000 / asks, 3),
        "join_statements": round((early[1] + late[1]) / args.buyers, 2),
        "status_statements": round(polls[1] / asks, 2),
        "joins_per_second": round(args.buyers / (early[2] + late[2]), 1),
        "status_per_second": round(asks / polls[2], 1),
    }))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--profile", help="write a cProfile of the joins and polls to this file")
    parsed = parser.parse_args()
    if not 2 <= parsed.buyers <= 20_000 or not 1 <= parsed.polls <= 20:
        parser.error("keep it bounded: 2 to 20,000 buyers, 1 to 20 polls")
    return parsed


if __name__ == "__main__":
    asyncio.run(main(parse()))
