"""Idempotency-Key records: a replay is marked ``Idempotent-Replayed: true``; records expire after the TTL.

Every test runs on SQLite and PostgreSQL: a small service built on the platform's ``Service`` (so it gets
what every service gets: the replay header, the purge loop), and the real booking service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from boxoffice.booking.deps import BookingSettings
from boxoffice.platform.app import Service
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.idempotency import IDEMPOTENCY, add_idempotency_table, run_idempotent
from boxoffice.platform.settings import ServiceSettings, Settings
from tests.harness.app import FakeClock, Running, running, wait_for
from tests.harness.booking import general_event, publish_event, token_for

metadata = MetaData()
add_idempotency_table(metadata)
things = Table(
    "things", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), nullable=False)
)
router = APIRouter()


@router.post("/api/things", status_code=201)
async def make_thing(
    request: Request, body: dict[str, str], key: Annotated[str | None, Header(alias="Idempotency-Key")] = None
) -> JSONResponse:
    service: Service = request.app.state.service

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        result = await uow.conn.execute(insert(things).values(name=body["name"]).returning(things.c.id))
        return {"id": result.scalar_one(), "name": body["name"]}

    stored = await run_idempotent(
        service.db, work, owner="someone", scope="things", key=key, body=body, status_code=201, now=service.now
    )
    return JSONResponse(stored.body, status_code=stored.status_code)


class KeeperService(Service):
    name = "keeper"

    def routers(self) -> list[APIRouter]:
        return [router]


@pytest.fixture
async def keeper(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[KeeperService, httpx.AsyncClient]]:
    settings = Settings(data_dir=tmp_path, idempotency_ttl_hours=2)
    service = KeeperService(
        settings, bus=build_bus(settings), clients=ServiceClients(settings), config=ServiceSettings(database_url=db_url)
    )
    async with service.db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    transport = httpx.ASGITransport(app=service.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://keeper.test") as client:
        yield service, client
    await service.stop()


async def count(service: Service, table: Table) -> int:
    async with service.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_replay_is_marked_and_a_first_answer_is_not(keeper: tuple[KeeperService, httpx.AsyncClient]) -> None:
    service, client = keeper
    first = await client.post("/api/things", json={"name": "a"}, headers={"Idempotency-Key": "k1"})
    again = await client.post("/api/things", json={"name": "a"}, headers={"Idempotency-Key": "k1"})
    other = await client.post("/api/things", json={"name": "a"}, headers={"Idempotency-Key": "k2"})
    unkeyed = await client.post("/api/things", json={"name": "a"})

    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    for fresh in (first, other, unkeyed):
        assert "Idempotent-Replayed" not in fresh.headers
    assert await count(service, things) == 3


async def test_records_expire_after_the_ttl_and_the_purge_loop_removes_them(
    keeper: tuple[KeeperService, httpx.AsyncClient],
) -> None:
    service, client = keeper
    clock = FakeClock()
    service.clock = clock
    for key in ("k1", "k2"):
        await client.post("/api/things", json={"name": key}, headers={"Idempotency-Key": key})
    assert await count(service, IDEMPOTENCY) == 2

    clock.advance(hours=1, minutes=59)  # BOXOFFICE_IDEMPOTENCY_TTL_HOURS=2: still kept
    assert await service.purge_idempotency_keys() is False
    assert await count(service, IDEMPOTENCY) == 2
    replay = await client.post("/api/things", json={"name": "k1"}, headers={"Idempotency-Key": "k1"})
    assert replay.headers.get("Idempotent-Replayed") == "true"

    clock.advance(minutes=2)
    purge = asyncio.create_task(service.workers()["idempotency-purge"]())  # the loop every service runs
    try:
        await wait_for(lambda: _is(count(service, IDEMPOTENCY), 0))
    finally:
        purge.cancel()
        await asyncio.gather(purge, return_exceptions=True)

    fresh = await client.post("/api/things", json={"name": "k1"}, headers={"Idempotency-Key": "k1"})
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert fresh.json()["id"] != replay.json()["id"]  # the key is free again: the work was done again
    assert await count(service, things) == 3


async def test_the_purge_is_a_no_op_in_a_database_without_the_table(tmp_path: Path, db_url: str) -> None:
    settings = Settings(data_dir=tmp_path)
    service = KeeperService(
        settings, bus=build_bus(settings), clients=ServiceClients(settings), config=ServiceSettings(database_url=db_url)
    )
    try:
        assert await service.purge_idempotency_keys() is False
    finally:
        await service.stop()


async def test_booking_marks_a_replayed_hold(tmp_path: Path, db_factory: Callable[[str], str]) -> None:
    settings = Settings(data_dir=tmp_path, demo=False)
    configs = {"booking": BookingSettings(database_url=db_factory("booking"))}
    async with running(settings, ["identity", "booking"], configs=configs) as app:
        event = general_event(capacity=10)
        await publish_event(app, event)
        headers = {**token_for(app), "Idempotency-Key": "hold-1"}
        body = {"event_id": event["event_id"], "section_id": event["sections"][0]["section_id"], "quantity": 2}
        first = await app.client.post("/api/holds", json=body, headers=headers)
        again = await app.client.post("/api/holds", json=body, headers=headers)
        assert first.status_code == again.status_code == 201, again.text
        assert first.json()["id"] == again.json()["id"]
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await availability(app, event["event_id"]) == 8


async def availability(app: Running, event_id: str) -> int:
    response = await app.runtime.clients.get("booking").get(f"/internal/availability/events?ids={event_id}")
    return int(response.json()["events"][event_id]["available"])


async def _is(value: Any, expected: int) -> bool:
    return bool(await value == expected)
