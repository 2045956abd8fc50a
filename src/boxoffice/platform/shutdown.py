"""Stopping workers gracefully: finish the batch in hand, take no new one, then return.

A ``Runtime`` starts its workers inside ``stoppable(stop)``. The loops every service runs its background
work in (``bus.consumer.run_consumer`` and ``periodic.repeat``) call ``cooperate()`` when they start: that
marks their task as one that stops by itself, and hands them the event they check between batches (and
wait on while idle). On SIGTERM the runtime sets the event, waits a bounded time for those tasks to return,
and only then cancels what is left (loops that do not cooperate, and any that overran the bound).

    stop = cooperate()
    while not stopped(stop):
        batch = await poll()
        await handle(batch)    # runs to its end (and commits) even when the stop comes meanwhile

Outside a runtime (a test calling ``run_consumer`` directly) there is no stop: the loop runs until it is
cancelled, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from boxoffice.platform.aio import wait_event


class Stop:
    """One runtime's stop request, and the tasks that promised to honour it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.cooperating: set[asyncio.Task[object]] = set()

    def request(self) -> None:
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


_CURRENT: ContextVar[Stop | None] = ContextVar("boxoffice_stop", default=None)


@contextlib.contextmanager
def stoppable(stop: Stop) -> Iterator[None]:
    """Tasks created inside this block (they copy the context) see ``stop`` through ``cooperate()``."""
    token = _CURRENT.set(stop)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def cooperate() -> asyncio.Event | None:
    """The stop event of the runtime this task runs in (None outside one); the task is waited for on stop."""
    stop = _CURRENT.get()
    if stop is None:
        return None
    task = asyncio.current_task()
    if task is not None:
        stop.cooperating.add(task)
        task.add_done_callback(stop.cooperating.discard)
    return stop.event


def stopped(event: asyncio.Event | None) -> bool:
    """True once the runtime asked to stop. A loop calls it between batches, so it is also where a lost
    cancellation is found: if this task was cancelled and something below swallowed the ``CancelledError``
    (Python 3.11's ``asyncio.wait_for`` and ``async_timeout``, which aiokafka uses, can lose a cancellation
    that races a completing wait), it is raised again here instead of the loop polling on for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    return event is not None and event.is_set()


async def pause(seconds: float, *events: asyncio.Event | None) -> bool:
    """Sleep ``seconds``, or less if one of ``events`` is (or gets) set; True if one was set."""
    waiting = [e for e in events if e is not None]
    if any(e.is_set() for e in waiting):
        return True
    if not waiting:
        await asyncio.sleep(seconds)
        return False
    if len(waiting) == 1:
        return await wait_event(waiting[0], seconds)
    waiters = [asyncio.ensure_future(e.wait()) for e in waiting]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)
