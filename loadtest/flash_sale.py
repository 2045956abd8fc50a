"""Flash-sale benchmark: C concurrent buyers race for N tickets through hold -> order -> pay over real HTTP.

Run it against a running boxoffice (an admin account is needed to put the sale on):

    BOXOFFICE_ADMIN_EMAIL=admin@example.com BOXOFFICE_ADMIN_PASSWORD=admin-password-2026 boxoffice run &
    python loadtest/flash_sale.py --url http://127.0.0.1:8000 --buyers 64 --tickets 2000 \
        --admin-email admin@example.com --admin-password admin-password-2026

It creates a general-admission event with one section of N tickets, registers enough customers (the
per-customer limit is 10 tickets per event; registration is set-up, not timed), then lets C buyers loop
hold(1) -> order -> pay until the section is sold out. It prints complete flows per second, p50/p95/p99 of
each step, and the oversell count (paid tickets beyond N; must be 0), checked against the server's own
availability afterwards. Only 127.0.0.1 is a sensible target: the run is bounded by N and --max-seconds.

Cost per complete flow, from the server's ``/metrics`` (``boxoffice_db_statements_total`` per database) and,
with ``--server-pid``, the CPU time of that process group (read from /proc): once for the sale itself, and
once more when the work the sale left behind (relay, consumers, ticket issuing) is done too (``*_all``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"hold": [], "order": [], "pay": [], "flow": [], "code_visible": [], "pdf_ready": []}
    )
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    paid: int = 0
    sold_out: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


STATEMENTS = re.compile(r'^boxoffice_db_statements_total\{database="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


async def statements(client: httpx.AsyncClient) -> dict[str, float]:
    """SQL statements each database has been sent so far (the server's own counter)."""
    text = (await client.get("/metrics")).text
    return {database: float(count) for database, count in STATEMENTS.findall(text)}


def cpu_seconds(pgid: int | None) -> float:
    """User + system CPU time of every process in the server's process group (0 without one)."""
    if pgid is None:
        return 0.0
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def settle(client: httpx.AsyncClient, *, quiet: float = 1.0, limit: float = 60.0) -> None:
    """Wait until the server sends no statement for ``quiet`` seconds: the sale's background work is done."""
    deadline = time.monotonic() + limit
    last = await statements(client)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = await statements(client)
        if now == last:
            return
        last = now


def per_flow(before: dict[str, float], after: dict[str, float], flows: int) -> dict[str, float]:
    used = {db: after.get(db, 0.0) - before.get(db, 0.0) for db in after}
    return {db: round(n / max(1, flows), 1) for db, n in sorted(used.items()) if n}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


async def register_customer(client: httpx.AsyncClient, run_id: str, n: int) -> str:
    email = f"buyer-{run_id}-{n}@loadtest.example.com"
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": f"flash-sale-{run_id}-pw", "name": f"Buyer {n}"}
    )
    response.raise_for_status()
    for _ in range(600):
        items = (await client.get("/api/dev/mailbox", params={"to": email})).json()["items"]
        if items:
            code = re.search(r"\b(\d{6})\b", items[0]["text"]).group(1)  # type: ignore[union-attr]
            tokens = (await client.post("/api/auth/verify", json={"email": email, "code": code})).json()
            return str(tokens["access_token"])
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no code arrived for {email} (is the dev mail backend on?)")


async def create_sale(client: httpx.AsyncClient, admin_token: str, tickets: int) -> tuple[str, str]:
    body = {
        "name": f"Flash sale {uuid.uuid4().hex[:6]}",
        "category": "concert",
        "venue": "Benchmark Arena",
        "city": "Loopback",
        "starts_at": (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "currency": "EUR",
        "sections": [{"name": "Floor", "price": 4500, "capacity": tickets}],
    }
    response = await client.post("/api/events", json=body, headers={"Authorization": f"Bearer {admin_token}"})
    response.raise_for_status()
    event = response.json()
    event_id, section_id = event["id"], event["sections"][0]["id"]
    hold = {"event_id": event_id, "section_id": section_id, "quantity": 1}
    # Wait until booking has built the inventory from the catalog's event (it travels over the bus).
    for _ in range(200):
        probe = await client.post("/api/holds", json=hold, headers={"Authorization": f"Bearer {admin_token}"})
        if probe.status_code == 201:
            await client.delete(f"/api/holds/{probe.json()['id']}", headers={"Authorization": f"Bearer {admin_token}"})
            return event_id, section_id
        await asyncio.sleep(0.05)
    raise RuntimeError("the event never went on sale")


async def watch_pdf(
    client: httpx.AsyncClient, order_id: str, headers: dict[str, str], paid_at: float, stats: Stats
) -> None:
    """Time from the payment's answer until the order's tickets show their codes (``code_visible``), and until
    every ticket's PDF downloads (``pdf_ready``: ``GET /api/tickets/{id}/pdf`` answers 200 with the PDF)."""
    deadline = paid_at + 120
    tickets: list[dict[str, Any]] = []
    while time.perf_counter() < deadline and not tickets:
        tickets = (await client.get(f"/api/orders/{order_id}", headers=headers)).json().get("tickets") or []
        if not (tickets and all(t.get("code") for t in tickets)):
            tickets = []
            await asyncio.sleep(0.05)
    if not tickets:
        stats.error("tickets never issued")
        return
    stats.latencies["code_visible"].append(time.perf_counter() - paid_at)
    waiting = [str(t["id"]) for t in tickets]
    while time.perf_counter() < deadline:
        for ticket_id in list(waiting):
            pdf = await client.get(f"/api/tickets/{ticket_id}/pdf", headers=headers)
            if pdf.status_code == 200 and pdf.content.startswith(b"%PDF-"):
                waiting.remove(ticket_id)
            elif pdf.status_code != 404:  # 404 pdf-not-ready: not rendered yet
                stats.error(f"pdf {pdf.status_code}")
                return
        if not waiting:
            stats.latencies["pdf_ready"].append(time.perf_counter() - paid_at)
            return
        await asyncio.sleep(0.05)
    stats.error("pdf never ready")


async def buyer(
    client: httpx.AsyncClient,
    tokens: asyncio.Queue[str],
    hold_body: dict[str, Any],
    stats: Stats,
    stop: asyncio.Event,
    sample_every: int,
) -> None:
    while not stop.is_set():
        token = await tokens.get()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            start = time.perf_counter()
            hold = await client.post(
                "/api/holds", json=hold_body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
            )
            stats.latencies["hold"].append(time.perf_counter() - start)
            if hold.status_code == 409:
                stats.sold_out += 1
                stop.set()
                return
            if hold.status_code == 429:
                continue  # this customer reached a limit: the next one goes
            if hold.status_code != 201:
                stats.error(f"hold {hold.status_code}")
                continue
            t = time.perf_counter()
            order = await client.post("/api/orders", json={"hold_id": hold.json()["id"]}, headers=headers)
            stats.latencies["order"].append(time.perf_counter() - t)
            if order.status_code != 201:
                stats.error(f"order {order.status_code}")
                continue
            t = time.perf_counter()
            paid = await client.post(
                f"/api/orders/{order.json()['id']}/payment",
                json=CARD,
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            stats.latencies["pay"].append(time.perf_counter() - t)
            if paid.status_code != 200:
                stats.error(f"pay {paid.status_code}")
                continue
            stats.paid += 1
            stats.latencies["flow"].append(time.perf_counter() - start)
            if stats.paid % sample_every == 0:
                order_id = order.json()["id"]
                stats.watchers.append(
                    asyncio.create_task(watch_pdf(client, order_id, headers, time.perf_counter(), stats))
                )
        except httpx.HTTPError as exc:
            stats.error(type(exc).__name__)
        finally:
            tokens.put_nowait(token)


async def main(args: argparse.Namespace) -> int:
    limits = httpx.Limits(max_connections=args.buyers + 8, max_keepalive_connections=args.buyers + 8)
    async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:
        admin = await login(client, args.admin_email, args.admin_password)
        event_id, section_id = await create_sale(client, admin, args.tickets)
        accounts = max(args.buyers, math.ceil(args.tickets / args.per_customer) + args.buyers)
        run_id = uuid.uuid4().hex[:6]
        print(f"registering {accounts} customers ...", file=sys.stderr)
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> str:
            async with gate:
                return await register_customer(client, run_id, n)

        tokens: asyncio.Queue[str] = asyncio.Queue()
        for token in await asyncio.gather(*[one(n) for n in range(accounts)]):
            tokens.put_nowait(token)

        stats = Stats()
        stop = asyncio.Event()
        hold_body = {"event_id": event_id, "section_id": section_id, "quantity": 1}
        counted_before, cpu_before = await statements(client), cpu_seconds(args.server_pid)
        print(f"the sale starts: {args.buyers} buyers", file=sys.stderr, flush=True)
        started = time.perf_counter()
        sample_every = max(1, args.tickets // max(1, args.pdf_samples))
        buyers = [
            asyncio.create_task(buyer(client, tokens, hold_body, stats, stop, sample_every)) for _ in range(args.buyers)
        ]
        _, pending = await asyncio.wait(buyers, timeout=args.max_seconds)
        stop.set()
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - started
        counted_sale, cpu_sale = await statements(client), cpu_seconds(args.server_pid)
        if stats.watchers:
            await asyncio.wait(stats.watchers, timeout=130)
        await settle(client)
        counted_all, cpu_all = await statements(client), cpu_seconds(args.server_pid)

        event = (await client.get(f"/api/events/{event_id}")).json()
        available = sum(section["available"] for section in event["sections"])
    oversold = max(0, stats.paid - args.tickets)
    result = {
        "mode": args.label,
        "buyers": args.buyers,
        "tickets": args.tickets,
        "paid": stats.paid,
        "seconds": round(elapsed, 2),
        "flows_per_second": round(stats.paid / elapsed, 1),
        "oversold": oversold,
        "server_available_after": available,
        "errors": stats.errors,
        "statements_per_flow": per_flow(counted_before, counted_sale, stats.paid),
        "statements_per_flow_all": per_flow(counted_before, counted_all, stats.paid),
        "cpu_ms_per_flow": round((cpu_sale - cpu_before) * 1000 / max(1, stats.paid), 2),
        "cpu_ms_per_flow_all": round((cpu_all - cpu_before) * 1000 / max(1, stats.paid), 2),
        **{
            f"{step}_ms": {
                "p50": round(percentile(values, 0.50) * 1000, 1),
                "p95": round(percentile(values, 0.95) * 1000, 1),
                "p99": round(percentile(values, 0.99) * 1000, 1),
                "mean": round(statistics.fmean(values) * 1000, 1) if values else None,
            }
            for step, values in stats.latencies.items()
        },
    }
    print(json.dumps(result, indent=2))
    if stats.paid + available > args.tickets:
        print(f"INCONSISTENT: {stats.paid} paid + {available} available > {args.tickets}", file=sys.stderr)
        return 2
    return 1 if oversold else 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--buyers", type=int, default=64, help="concurrent buyers (C)")
    parser.add_argument("--tickets", type=int, default=2000, help="tickets on sale (N)")
    parser.add_argument("--per-customer", type=int, default=10, help="the server's tickets-per-event limit")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--pdf-samples", type=int, default=20, help="orders whose payment-to-PDF time is measured")
    parser.add_argument("--admin-email", default="admin@example.com")
    parser.add_argument("--admin-password", default="admin-password-2026")
    parser.add_argument("--server-pid", type=int, help="the server's process group, whose CPU time is reported")
    parser.add_argument("--label", default="", help="a name for this run in the output")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
