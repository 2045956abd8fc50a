"""Background work that repeats: the one loop every service's sweepers, senders and renderers run in.

    await repeat("booking.hold-sweeper", sweep_expired_holds, interval=1.0)

``step`` is awaited again at once while it returns something truthy ("there is more to do": a full batch),
otherwise after ``interval`` seconds, or as soon as ``wake`` is set. A step that raises is logged and
counted, and the loop backs off exponentially with full jitter (so many replicas that fail together do not
retry together) up to ``max_backoff``; the next success resets the back-off. Cancellation stops the loop
at once, whatever it is doing (the step's own transaction rolls back); a stop request of the runtime
(``platform.shutdown``) lets the step in hand finish and then returns.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter, Histogram

from boxoffice.platform.shutdown import cooperate, pause, stopped

log = structlog.get_logger("boxoffice.periodic")

RUNS = Counter("boxoffice_background_runs_total", "Steps of a background loop, by outcome", ["loop", "outcome"])
DURATION = Histogram(
    "boxoffice_background_run_duration_seconds",
    "How long one step of a background loop took",
    ["loop"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0),
)


async def repeat(
    name: str,
    step: Callable[[], Awaitable[object]],
    *,
    interval: float,
    wake: asyncio.Event | None = None,
    initial_delay: float = 0.0,
    backoff_base: float = 0.5,
    max_backoff: float = 30.0,
) -> None:
    """Run ``step`` until cancelled or stopped; see the module's docstring."""
    stop = cooperate()
    failures = 0
    if initial_delay > 0:
        await pause(initial_delay, stop)
    while not stopped(stop):
        if wake is not None:
            wake.clear()  # before the step: a wake-up during the step makes the next wait return at once
        started = time.perf_counter()
        try:
            more = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            RUNS.labels(name, "failed").inc()
            delay = random.uniform(0, min(max_backoff, backoff_base * 2 ** (failures - 1)))  # noqa: S311
            log.warning("background step failed; will retry", loop=name, error=repr(exc), retry_in=round(delay, 3))
            await pause(delay, stop)
            continue
        finally:
            DURATION.labels(name).observe(time.perf_counter() - started)
        failures = 0
        RUNS.labels(name, "ok").inc()
        if more:
            await asyncio.sleep(0)  # let requests run between full batches
            continue
        await pause(interval, wake, stop)
