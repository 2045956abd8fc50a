"""Catalog's read side without a database: the read cache, and availability answers from booking."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxoffice.catalog.availability import FULL, BookingAvailability, Counts
from boxoffice.catalog.cache import ReadCache
from boxoffice.platform.clients import ServiceClient


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_cache_serves_until_ttl_then_reloads() -> None:
    clock, loads = Ticker(), []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    cache = ReadCache(ttl=10, clock=clock)
    assert await cache.get("k", load) == 1
    clock.now = 9.9
    assert await cache.get("k", load) == 1
    clock.now = 10.1
    assert await cache.get("k", load) == 2


async def test_invalidate_drops_entries_and_a_load_racing_it_is_not_stored() -> None:
    cache = ReadCache(ttl=60)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_stale() -> str:
        started.set()
        await release.wait()
        return "stale"

    async def fresh() -> str:
        return "fresh"

    reader = asyncio.create_task(cache.get("k", slow_stale))
    await started.wait()
    cache.invalidate()  # a write committed while the read was loading
    release.set()
    assert await reader == "stale"  # that reader may see it, but it must not stay in the cache
    assert await cache.get("k", fresh) == "fresh"


async def test_cache_is_bounded() -> None:
    cache = ReadCache(ttl=60, max_entries=3)
    for i in range(5):
        await cache.get(i, lambda i=i: asyncio.sleep(0, result=i))
    assert len(cache) == 3


def booking(answer: Any, status: int = 200) -> ServiceClient:
    async def availability(request: Request) -> Response:
        if isinstance(answer, bytes):
            return Response(answer, status_code=status)
        return JSONResponse({**answer, "asked": dict(request.query_params)}, status_code=status)

    app = Starlette(routes=[Route("/internal/availability/{kind}", availability)])
    return ServiceClient("booking", app=app, retries=0)


async def test_booking_answers_are_read_per_event_and_run() -> None:
    events = {"events": {"e1": {"available": 7, "sections": {"s1": 3}, "seats": {"x": "held", "y": "weird"}}}}
    client = booking(events)
    found = await BookingAvailability(lambda: client).events(["e1", "e2"])
    assert set(found) == {"e1"}
    assert found["e1"].available == 7 and found["e1"].part("s1", 10) == 3 and found["e1"].part("s2", 10) == 10
    assert found["e1"].seat("x") == "held" and found["e1"].seat("z") == "available"
    assert found["e1"].seat("y") == "held"  # an unknown status is not sold as available
    runs = {"runs": {"r1": {"classes": {"3A": 40}, "seats": {"s": "sold"}}}}
    client = booking(runs)
    found = await BookingAvailability(lambda: client).runs(["r1"], origin="NDLS", destination="BCT")
    assert found["r1"].part("3A", 64) == 40 and found["r1"].seat("s") == "sold" and found["r1"].available is None


async def test_a_failing_or_absent_booking_means_capacity_not_an_error() -> None:
    def absent() -> ServiceClient:
        raise LookupError("booking is not deployed")

    for source in (lambda: booking({}, status=500), lambda: booking(b"not json"), absent):
        assert await BookingAvailability(source).events(["e1"]) == {"e1": Counts(stale=True)}
    assert FULL.part("s1", 12) == 12 and FULL.seat("x") == "available"


async def test_a_slow_booking_is_not_waited_for() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(600)  # only the reader's own timeout (0.1 s) can end the wait
        return JSONResponse({})

    client = ServiceClient("booking", app=Starlette(routes=[Route("/internal/availability/events", slow)]), retries=0)
    assert await BookingAvailability(lambda: client, timeout=0.1).events(["e1"]) == {"e1": Counts(stale=True)}


async def test_when_booking_fails_the_last_counts_it_gave_are_served_marked_stale() -> None:
    answers = [booking({"events": {"e1": {"available": 7, "sections": {"s1": 3}}}}), booking({}, status=503)]
    availability = BookingAvailability(lambda: answers[0])
    fresh = await availability.events(["e1", "e2"])
    assert fresh["e1"].available == 7 and not fresh["e1"].stale and "e2" not in fresh
    answers.pop(0)
    stale = await availability.events(["e1", "e2"])
    assert stale["e1"] == Counts(available=7, parts={"s1": 3}, stale=True)
    assert stale["e2"] == Counts(stale=True)  # never counted: capacity, but said to be a guess
