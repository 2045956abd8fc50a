"""The sql bus keeps events for its retention only, and trimming never disturbs offsets or positions."""

from __future__ import annotations

import time

from boxoffice.platform.bus.envelope import new_event
from boxoffice.platform.bus.sql import SqlBus


def event(n: int) -> object:
    return new_event("test.thing-happened", source="test", key="k", data={"n": n}, topic="retention")


async def test_old_events_are_trimmed_and_offsets_go_on(db_url: str) -> None:
    bus = SqlBus(db_url, retention_seconds=3600)
    await bus.start()
    consumer = bus.consumer("reader", ["retention"])
    await consumer.start()
    try:
        await bus.publish([event(n) for n in range(3)])  # type: ignore[misc]
        first = await consumer.poll(timeout=1)
        assert [r.envelope.data["n"] for r in first] == [0, 1, 2]
        await consumer.commit(first)
        assert await bus.trim() == 0  # nothing is an hour old yet
        assert await bus.trim(now=time.time() + 3601) == 3
        await bus.publish([event(3)])  # type: ignore[list-item]
        later = await consumer.poll(timeout=1)
        assert [(r.offset, r.envelope.data["n"]) for r in later] == [(3, 3)]  # offsets are never reused
    finally:
        await consumer.stop()
        await bus.stop()
