"""``boxoffice bus dead-letters`` and ``boxoffice bus replay ID`` as an operator runs them, on both databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from boxoffice.booking.deps import BookingSettings
from boxoffice.cli import SERVICES, find_dead_letters, migrate_all, replay_dead_letter
from boxoffice.platform.bus.deadletters import DeadLetters
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.bus.port import Record
from boxoffice.platform.bus.tables import INBOX
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.db import Database
from boxoffice.platform.settings import Settings
from tests.harness.booking import general_event


def boxoffice(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}, **env}
    return subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def catalog_group(settings: Settings, config: BookingSettings) -> str:
    """Booking's consumer group of catalog events, as booking names it."""
    booking = SERVICES["booking"](settings, bus=build_bus(settings), clients=ServiceClients(settings), config=config)
    return next(group for group, (topics, _handler) in booking.consumers().items() if "catalog.events" in topics)


async def make_dead_letters(
    tmp_path: Path, booking_url: str
) -> tuple[Settings, dict[str, BookingSettings], str, Envelope, Envelope, Database]:
    """A booking database holding two dead letters of its catalog group: one that applies now, one never."""
    settings = Settings(data_dir=tmp_path, demo=False)
    configs = {"booking": BookingSettings(database_url=booking_url)}
    await asyncio.to_thread(migrate_all, settings, None, configs)
    group = catalog_group(settings, configs["booking"])
    good = new_event("catalog.event-published", source="catalog", key="e1", data=general_event(), topic="catalog.events")
    broken = new_event(
        "catalog.event-published", source="catalog", key="e2", data={"event_id": "ev-broken"}, topic="catalog.events"
    )
    db = Database(booking_url, name="booking")
    for offset, envelope in enumerate((good, broken)):
        # As the consumer leaves them: the good one failed while something it needed was down.
        await DeadLetters(db).add(group, Record("catalog.events", 3, offset, envelope), error="ConnectionError", attempts=5)
    return settings, configs, group, good, broken, db


async def test_dead_letters_are_listed_and_replayed_to_their_group(
    tmp_path: Path, db_factory: Callable[[str], str]
) -> None:
    settings, configs, group, good, broken, db = await make_dead_letters(tmp_path, db_factory("booking"))
    store = DeadLetters(db)
    try:
        letters = await find_dead_letters(settings, configs=configs)
        assert sorted((name, d.group, d.topic, d.partition, d.event_id, d.attempts) for name, d in letters) == sorted(
            ("booking", group, "catalog.events", 3, e.id, 5) for e in (good, broken)
        )
        ids = {letter.event_id: letter.id for _name, letter in letters}

        replayed = await replay_dead_letter(settings, ids[good.id], configs)
        assert replayed.exit_code == 0, replayed.message
        assert await applied(db, group, good) and await store.get(ids[good.id]) is None

        failed = await replay_dead_letter(settings, ids[broken.id], configs)
        assert failed.exit_code == 1
        kept = await store.get(ids[broken.id])
        assert kept is not None and kept.attempts == 6 and "starts_at" in kept.error
        assert not await applied(db, group, broken)

        assert (await replay_dead_letter(settings, "no-such-id", configs)).exit_code == 2
        assert [d.id for _n, d in await find_dead_letters(settings, group=group, configs=configs)] == [ids[broken.id]]
    finally:
        await db.dispose()


async def test_the_bus_commands_of_the_cli(tmp_path: Path, sqlite_url: str) -> None:
    _settings, _configs, group, good, broken, db = await make_dead_letters(tmp_path, sqlite_url)
    await db.dispose()
    env = {"BOXOFFICE_DATA_DIR": str(tmp_path), "BOXOFFICE_DEMO": "0", "BOXOFFICE_BOOKING_DATABASE_URL": sqlite_url}

    listed = await asyncio.to_thread(boxoffice, "bus", "dead-letters", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert rows[0] == ["id", "service", "group", "topic", "partition", "offset", "event", "attempts", "failed_at", "error"]
    assert sorted((r[1], r[2], r[3], r[4], r[6], r[7], r[9]) for r in rows[1:]) == sorted(
        ("booking", group, "catalog.events", "3", f"catalog.event-published {e.id}", "5", "ConnectionError")
        for e in (good, broken)
    )
    good_id = next(r[0] for r in rows[1:] if good.id in r[6])

    replayed = await asyncio.to_thread(boxoffice, "bus", "replay", good_id, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert good_id in replayed.stdout
    db = Database(sqlite_url, name="booking")
    try:
        assert await applied(db, group, good) and not await applied(db, group, broken)
        assert [d.event_id for d in await DeadLetters(db).list()] == [broken.id]
    finally:
        await db.dispose()


async def applied(db: Database, group: str, envelope: Envelope) -> bool:
    async with db.read() as conn:
        query = select(INBOX.c.event_id).where(INBOX.c.consumer_group == group, INBOX.c.event_id == envelope.id)
        return (await conn.execute(query)).first() is not None
