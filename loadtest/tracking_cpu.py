"""CPU per event of tracking's two halves, measured apart and without HTTP: the collector (validate a batch,
append it to the bus) and the processor (poll, validate again, enrich, store).

Builds tracking in this process (SQLite in a temporary data dir, the sql bus unless ``--bus kafka``), then:

1. collector: ``--batches`` batches of ``--batch`` events through ``handlers.collect_events``, ``--concurrency``
   requests at a time (so the group publisher groups them as it does under load);
2. processor: what the bus holds, read as consumer group ``tracking-processor`` and stored by
   ``handlers.store_batch``, ``BOXOFFICE_TRACKING_PROCESSOR_BATCH`` records per poll.

Each phase is repeated ``--rounds`` times and the median CPU time (``time.process_time``: this process's
user + system time, so neighbours on a shared machine count for little) per event is printed. ``--profile``
prints the cProfile top functions of one more round of each phase. A last round measures how long the
processor holds the event loop at a stretch (CPU time between the runs of a task that wakes every
millisecond): in ``boxoffice run`` a collector request waits for that.

    .venv/bin/python loadtest/tracking_cpu.py                   # 3 rounds of 500 batches of 20 events
    .venv/bin/python loadtest/tracking_cpu.py --profile 25      # and where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.harness and loadtest
from loadtest.clickstream import AGENTS, make_batch

from boxoffice.cli import Runtime, migrate_all
from boxoffice.platform.settings import Settings
from boxoffice.tracking import handlers, store
from boxoffice.tracking.domain import TOPIC
from boxoffice.tracking.enrich import parse_agent
from boxoffice.tracking.service import PROCESSOR_GROUP


@contextlib.contextmanager
def profiled(top: int, title: str) -> Iterator[None]:
    if not top:
        yield
        return
    profile = cProfile.Profile(time.process_time)  # CPU time: the wall clock of a shared machine misleads
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        print(f"===== {title} =====\n{out.getvalue()}")


async def collect(deps: Any, bodies: list[bytes], concurrency: int) -> int:
    accepted = 0
    for start in range(0, len(bodies), concurrency):
        results = await asyncio.gather(
            *(
                handlers.collect_events(
                    deps,
                    handlers.CollectCommand(
                        body=body, content_type="application/json", client=f"10.0.{n // 256}.{n % 256}",
                        user_agent=AGENTS[n % len(AGENTS)],
                    ),
                )
                for n, body in enumerate(bodies[start : start + concurrency], start)
            )
        )
        accepted += sum(r.accepted for r in results)
    return accepted


class LoopHolds:
    """The CPU time the event loop was held between runs of a task that wakes every millisecond: in one process
    (``boxoffice run``) a collector request that arrives meanwhile waits at least that long for its answer."""

    def __init__(self) -> None:
        self.holds: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            began = time.process_time()
            await asyncio.sleep(0.001)
            self.holds.append(time.process_time() - began)

    def __enter__(self) -> LoopHolds:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def summary(self) -> str:
        if not self.holds:
            return "no holds measured"
        ordered = sorted(self.holds)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return f"longest {ordered[-1] * 1000:.1f} ms of CPU, p99 {p99 * 1000:.1f} ms ({len(ordered)} wake-ups)"


async def process(service: Any, expected: int) -> int:
    consumer = service.bus.consumer(PROCESSOR_GROUP, [TOPIC])
    await consumer.start()
    stored = 0
    try:
        while stored < expected:
            records = await consumer.poll(max_records=service.config.processor_batch, timeout=2.0)
            if not records:
                break
            stored += await handlers.store_batch(service.deps, [r.envelope for r in records])
            await consumer.commit(records)
            await asyncio.sleep(0)  # as the processor's loop (``platform.periodic.repeat``) does after a full poll
    finally:
        await consumer.stop()
    return stored


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tracking-cpu-") as tmp:
        overrides: dict[str, Any] = {"data_dir": Path(tmp), "bus_poll_interval_seconds": 0.05}
        if args.bus == "kafka":
            overrides |= {"bus": "kafka", "kafka_bootstrap_servers": args.bootstrap}
        settings = Settings(**overrides)
        await asyncio.to_thread(migrate_all, settings, ["tracking"])
        runtime = Runtime(settings, ["tracking"], run_workers=False)
        await runtime.start()
        service = next(s for s in runtime.services if s.name == "tracking")
        service.deps.buckets.rate = 1e9  # the load comes from few client addresses here
        for agent in AGENTS:  # as the processor does when it starts: ua-parser compiles its rules on first use
            parse_agent(agent)
        collector: list[float] = []
        processor: list[float] = []
        try:
            for round_ in range(args.rounds + (1 if args.profile else 0)):
                profiling = args.profile if round_ == args.rounds else 0
                bodies = [
                    make_batch(n, f"s-{round_}-{n % 200}", f"a-{n % 200}", n, args.batch) for n in range(args.batches)
                ]
                began = time.process_time()
                with profiled(profiling, "collector"):
                    accepted = await collect(service.deps, bodies, args.concurrency)
                collected_cpu = time.process_time() - began
                began = time.process_time()
                with profiled(profiling, "processor"):
                    stored = await process(service, accepted)
                processed_cpu = time.process_time() - began
                if stored != accepted:
                    raise SystemExit(f"stored {stored} of {accepted} accepted events")
                if not profiling:
                    collector.append(collected_cpu / accepted)
                    processor.append(processed_cpu / accepted)
                    print(f"round {round_ + 1}: {accepted} events; collector {collected_cpu / accepted * 1e6:.1f} us, "
                          f"processor {processed_cpu / accepted * 1e6:.1f} us CPU per event")
            # One more round with a watcher on the loop: how long the processor holds it at a stretch.
            bodies = [make_batch(n, f"s-w-{n % 200}", f"a-{n % 200}", n, args.batch) for n in range(args.batches)]
            accepted = await collect(service.deps, bodies, args.concurrency)
            with LoopHolds() as holds:
                await process(service, accepted)
            async with service.db.read() as conn:
                total = await store.count_events(conn)
        finally:
            await runtime.stop()
    collector_us, processor_us = statistics.median(collector) * 1e6, statistics.median(processor) * 1e6
    print(f"median CPU per event over {len(collector)} rounds ({args.bus} bus, SQLite, batches of {args.batch}): "
          f"collector {collector_us:.1f} us, processor {processor_us:.1f} us, together "
          f"{collector_us + processor_us:.1f} us ({total} events stored)")
    print(f"the processor held the event loop (a round of {args.batches * args.batch} events): {holds.summary()}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=50, help="collect requests in flight together")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bus", choices=["sql", "kafka"], default="sql")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers (--bus kafka)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions of a round")
    args = parser.parse_args()
    if args.batches * args.batch > 1_000_000 or args.rounds > 20:
        parser.error("keep a run bounded: at most 1,000,000 events per round and 20 rounds")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
