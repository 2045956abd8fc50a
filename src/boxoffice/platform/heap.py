"""The garbage collector's pauses: kept short once a process has started, and measured.

CPython's cyclic collector stops the process while it runs. A full (generation 2) collection walks every
object the process holds: after start-up a boxoffice process holds about 250,000 (modules, FastAPI's routes
and schemas, SQLAlchemy's tables and compiled statements, pydantic's validators), and walking them took
150 to 340 ms here, several times a minute under load, while every request in flight waited. Those pauses
were the tail of the clickstream collector's latency (its p99 at 20,000 events/s: 367-435 ms with them,
155 ms without; loadtest/clickstream.py).

``settle`` runs once a process that boxoffice owns (``run``, ``serve``, ``worker``) has started (its services,
their caches, its workers): one full collection, then ``gc.freeze()``, which moves every object then alive
into a permanent generation that later collections skip. They then walk only what was made since: requests,
events, rows. Start-up objects that become garbage later are not reclaimed, which costs nothing here: what
start-up builds lives as long as the process. ``release``, when that runtime stops, hands them back to the
collector. ``observe_pauses`` times every collection into ``boxoffice_gc_pause_seconds{generation}``.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

GC_PAUSES = Histogram(
    "boxoffice_gc_pause_seconds",
    "Time the process stood still in a garbage collection, by generation (2: a full collection)",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

_pauses = [GC_PAUSES.labels(str(generation)) for generation in range(3)]
_started = 0.0


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
    else:
        _pauses[min(int(info["generation"]), 2)].observe(time.perf_counter() - _started)


def observe_pauses() -> None:
    """Time every collection of this process (once per process; calling again changes nothing)."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def settle() -> int:
    """Collect what start-up left behind, then freeze every object alive: later collections skip them.
    Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def release() -> None:
    """Undo ``settle``: the frozen objects are collected again (a runtime stopped; another may start)."""
    gc.unfreeze()
