"""Tickets issued per second, end to end, in embedded mode: ticket-bookings event published -> PDF stored.

Runs the real tickets service (SQLite, the SQL bus, the folder object store) with its workers in this
process, publishes ``--orders`` confirmed orders of ``--seats`` tickets each onto the bus, and times until
every ticket's PDF is in the object store and recorded.

    .venv/bin/python loadtest/tickets_issue.py --orders 200 --seats 2
    .venv/bin/python loadtest/tickets_issue.py --orders 1 --seats 3 --idle 20   # one order, on a warm service

``--idle``: seconds the service runs before the orders arrive (a service that has been up for a while, with
its PDF worker processes started), rather than orders arriving as it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from boxoffice.cli import Runtime, migrate_all
from boxoffice.platform.bus.envelope import Envelope, new_event
from boxoffice.platform.settings import Settings
from boxoffice.tickets.store import tickets


def confirmed_order(seats: int) -> Envelope:
    event_id = str(uuid.uuid4())
    items = [{"seat_id": f"s{n}", "label": f"R-{n}", "section": "Stalls", "price": 5000} for n in range(seats)]
    data = {
        "event_id": event_id,
        "user_id": str(uuid.uuid4()),
        "order_id": str(uuid.uuid4()),
        "ticket_count": seats,
        "amount_minor": 5000 * seats,
        "currency": "EUR",
        "status": "confirmed",
        "timestamp": "2026-11-22T10:00:00Z",
        "kind": "event",
        "holder_name": "Load Test",
        "items": items,
        "event": {"name": "Benchmark Night", "venue": "Arena", "city": "Berlin", "starts_at": "2026-12-01T19:30:00Z"},
    }
    return new_event("booking.order-confirmed", source="booking", key=event_id, data=data, topic="ticket-bookings")


async def main(orders: int, seats: int, data_dir: Path, idle: float) -> None:
    settings = Settings(data_dir=data_dir, log_level="WARNING", demo=False)
    await asyncio.to_thread(migrate_all, settings, ["tickets"])
    runtime = Runtime(settings, ["tickets"], run_workers=True)
    await runtime.start()
    service = runtime.services[0]
    total = orders * seats
    try:
        await asyncio.sleep(idle)
        events = [confirmed_order(seats) for _ in range(orders)]
        started = time.perf_counter()
        for start in range(0, len(events), 100):
            await runtime.bus.publish(events[start : start + 100])
        first_ticket = all_tickets = None
        while True:
            async with service.db.read() as conn:
                count = (await conn.execute(select(func.count()).select_from(tickets))).scalar_one()
                done = (
                    await conn.execute(select(func.count()).select_from(tickets).where(tickets.c.pdf_key.is_not(None)))
                ).scalar_one()
            if first_ticket is None and count:
                first_ticket = time.perf_counter() - started
            if all_tickets is None and count >= total:
                all_tickets = time.perf_counter() - started
            if done >= total:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        pdfs = len(await service.objects.list("tickets/"))
    finally:
        await runtime.stop()
    print(f"orders={orders} tickets={total} pdfs_in_store={pdfs}")
    print(
        f"first ticket row after {first_ticket:.2f} s; every ticket (with its code) after"
        f" {all_tickets or elapsed:.2f} s;"
        f" all PDFs stored after {elapsed:.2f} s"
    )
    print(f"end to end: {total / elapsed:.1f} tickets/s (event published -> PDF stored and recorded)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--seats", type=int, default=2)
    parser.add_argument("--idle", type=float, default=0.0, help="seconds the service runs before the orders")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="boxoffice-tickets-bench-") as tmp:
        asyncio.run(main(args.orders, args.seats, Path(tmp), min(max(args.idle, 0.0), 120.0)))
