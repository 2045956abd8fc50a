"""Inventory built from the catalog's events (``catalog.event-published``, ``catalog.run-published``).

Booking never reads catalog's tables: it keeps its own copy of what it sells, written from events, each
applied once (inbox) in one transaction. A republished event updates names and prices and adds sections or
seats; what is held or sold is never reset.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.booking import store
from boxoffice.booking.deps import BookingDeps
from boxoffice.platform.bus.envelope import Envelope
from boxoffice.platform.bus.tables import claim_inbox

GROUP = "booking.catalog"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def apply_catalog_event(deps: BookingDeps, envelope: Envelope) -> None:
    if envelope.type not in ("catalog.event-published", "catalog.run-published"):
        return
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, GROUP, envelope.id):
            return
        if envelope.type == "catalog.event-published":
            await _apply_event(uow.conn, envelope.data)
        else:
            await _apply_run(uow.conn, envelope.data)
        await uow.commit()


async def _apply_event(conn: AsyncConnection, data: dict[str, object]) -> None:
    event_id = str(data["event_id"])
    await store.upsert_event(conn, data, _time(str(data["starts_at"])))
    seat_rows: list[dict[str, object]] = []
    for section in data["sections"]:  # type: ignore[attr-defined]
        await store.upsert_section(conn, event_id, section)
        seat_rows.extend(
            {
                "seat_id": seat["seat_id"],
                "event_id": event_id,
                "section_id": section["section_id"],
                "label": seat["label"],
                "price": seat["price"],
                "status": "available",
            }
            for seat in section.get("seats") or ()
        )
    await store.insert_missing_seats(conn, seat_rows)


async def _apply_run(conn: AsyncConnection, data: dict[str, object]) -> None:
    run_id = str(data["run_id"])
    classes = data["classes"]
    await store.upsert_run(
        conn,
        {
            "run_id": run_id,
            "train_number": data["train_number"],
            "name": data["name"],
            "currency": data["currency"],
            "stops": data["stops"],
            "fares": {c["code"]: c["fares"] for c in classes},  # type: ignore[attr-defined]
            "class_names": {c["code"]: c["name"] for c in classes},  # type: ignore[attr-defined]
        },
    )
    await store.insert_missing_train_seats(
        conn,
        [
            {"run_id": run_id, "seat_id": seat["seat_id"], "class_code": c["code"], "label": seat["label"]}
            for c in classes  # type: ignore[attr-defined]
            for coach in c["coaches"]
            for seat in coach["seats"]
        ],
    )
