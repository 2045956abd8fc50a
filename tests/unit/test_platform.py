"""Platform rules that need no I/O: settings, the circuit breaker, gateway routing, envelopes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import typer
from pydantic import ValidationError

from boxoffice.booking.deps import BookingSettings
from boxoffice.cli import _cancel_all, _replica_counts, database_url
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.clients import CircuitBreaker, CircuitOpen
from boxoffice.platform.gateway import compile_pattern
from boxoffice.platform.settings import Settings
from boxoffice.platform.shutdown import stopped


def test_production_refuses_default_secret_and_dev_mailbox() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(mode="production")
    assert "BOXOFFICE_SECRET_KEY" in str(error.value) and "dev mailbox" in str(error.value)
    Settings(mode="production", secret_key="x" * 40, mail_backend="smtp")


def test_database_urls_default_to_sqlite_in_the_data_dir(tmp_path: object) -> None:
    settings = Settings(data_dir="/srv/box")
    booking = BookingSettings(database_url="postgresql+asyncpg://db/booking")
    assert database_url(settings, "identity") == "sqlite+aiosqlite:////srv/box/identity.db"
    assert database_url(settings, "booking", {"booking": booking}) == "postgresql+asyncpg://db/booking"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_failures_and_half_opens_for_one_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset_after=10, clock=clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.t = 10
    breaker.before_call()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller waits while the trial runs
    breaker.record_failure()
    assert breaker.state == "open"
    clock.t = 20
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/api/orders/{}/payment", "/api/orders/123/payment", True),
        ("/api/orders/{}/payment", "/api/orders/123", False),
        ("/api/orders", "/api/orders/123/cancel", True),
        ("/api/orders", "/api/ordersx", False),
        ("/api/me", "/api/me", True),
        ("/.well-known/jwks.json", "/.well-known/jwks.json", True),
    ],
)
def test_gateway_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_pattern(pattern).match(path)) is matches


def test_envelope_round_trip_and_partition_by_key() -> None:
    event = new_event("booking.order-confirmed", source="booking", key="ev-1", data={"n": 1}, topic="ticket-bookings")
    back = Envelope.from_json(event.to_json(), topic="ticket-bookings")
    assert back == event
    assert {new_event("t", source="s", key="ev-1", data={}, topic="x").partition(8) for _ in range(20)} == {
        event.partition(8)
    }


async def swallowing_loop(polls: list[int]) -> None:
    """A worker loop over a library that loses a cancellation (as Python 3.11's ``asyncio.wait_for`` and
    ``async_timeout`` can when it races a completing wait): the ``CancelledError`` never reaches the loop."""
    while not stopped(None):
        polls.append(1)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)


async def test_a_loop_whose_cancellation_was_swallowed_still_stops() -> None:
    polls: list[int] = []
    task = asyncio.create_task(swallowing_loop(polls))
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done == {task} and task.cancelled()
    before = len(polls)
    await asyncio.sleep(0.05)
    assert len(polls) == before


async def test_stopping_the_workers_cancels_again_until_they_end() -> None:
    swallowed = 0

    async def stubborn() -> None:  # swallows two cancellations, honours the third
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 3:
                    raise
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await _cancel_all([task], grace=0.05)
    assert task.cancelled() and swallowed == 3


def test_replicas_name_a_count_for_every_service_or_some() -> None:
    assert _replica_counts(None, ["booking", "payments"]) == {"booking": 1, "payments": 1}
    assert _replica_counts("3", ["booking", "payments"]) == {"booking": 3, "payments": 3}
    assert _replica_counts("booking=2", ["booking", "payments"]) == {"booking": 2, "payments": 1}
    for wrong in ("0", "booking=x", "nobody=2", "booking=65"):
        with pytest.raises(typer.BadParameter):
            _replica_counts(wrong, ["booking", "payments"])


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("/api/orders/123/payment", "payments"),
        ("/api/orders/123/payment/refund", "payments"),
        ("/api/orders/123", "booking"),
        ("/api/orders", "booking"),
        ("/api/orders?limit=5", "booking"),
        ("/api/ordersx", None),
        ("/api/payments/p1", "payments"),
        ("/api/holds", "booking"),
        ("/api/booking/openapi.json", "booking"),
        ("/.well-known/jwks.json", "identity"),
        ("/api/me", "identity"),
        ("/collect", "tracking"),
        ("/api/nothing", None),
    ],
)
async def test_the_gateway_sends_a_path_to_the_most_specific_pattern(path: str, owner: str | None) -> None:
    from boxoffice.cli import SERVICES, gateway_routes
    from boxoffice.platform.gateway import Gateway

    reached: list[str] = []

    def app_of(name: str) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            reached.append(name)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        return app

    async def ready() -> dict[str, str]:
        return {}

    routes = [(p, app_of(name)) for name, cls in SERVICES.items() for p in gateway_routes(cls)]
    gateway = Gateway(routes, check_ready=ready)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    await gateway(scope, receive, send)
    assert reached == ([owner] if owner else [])
    assert sent[0]["status"] == (204 if owner else 404)
    assert (b"x-boxoffice-version", gateway.version.encode()) in sent[0]["headers"]
