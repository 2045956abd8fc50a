"""Strict request bodies over HTTP, on SQLite and PostgreSQL: a quantity of "5" or true is a 422 problem and
holds nothing (pydantic's lax mode used to read them as 5 and 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from boxoffice.booking.deps import BookingSettings
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running
from tests.harness.booking import general_event, publish_event, token_for


@pytest.fixture
async def app(tmp_path: Path, db_factory: Callable[[str], str]) -> AsyncIterator[Running]:
    configs = {"booking": BookingSettings(database_url=db_factory("booking"))}
    async with running(Settings(data_dir=tmp_path, demo=False), ["identity", "booking"], configs=configs) as app:
        yield app


async def available(app: Running, event_id: str) -> int:
    response = await app.runtime.clients.get("booking").get(f"/internal/availability/events?ids={event_id}")
    return int(response.json()["events"][event_id]["available"])


async def test_a_hold_quantity_that_is_not_a_json_integer_is_a_422_and_holds_nothing(app: Running) -> None:
    event = general_event(capacity=10)
    await publish_event(app, event)
    buyer = token_for(app)
    shape: dict[str, Any] = {"event_id": event["event_id"], "section_id": event["sections"][0]["section_id"]}
    for quantity in ("5", True, 5.0, "1e0"):
        response = await app.client.post("/api/holds", json={**shape, "quantity": quantity}, headers=buyer)
        assert response.status_code == 422, (quantity, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/validation-error"
        assert "quantity" in response.json()["detail"]
    assert await available(app, event["event_id"]) == 10
    held = await app.client.post("/api/holds", json={**shape, "quantity": 5}, headers=buyer)
    assert held.status_code == 201, held.text
    assert await available(app, event["event_id"]) == 5
