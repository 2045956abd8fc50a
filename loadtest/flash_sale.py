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
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtest.lean_http import Answer, Connection

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"hold": [], "order": [], "pay": [], "flow": [], "code_visible": [], "pdf_ready": []}
    )
    sent_at: dict[str, list[float]] = field(default_factory=lambda: {"hold": [], "order": [], "pay": []})
    """When each request of ``latencies[step]`` was sent (perf_counter), for ``slowest``."""
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    paid: int = 0
    sold_out: int = 0
    requests: int = 0  # counted by the buyers' connections (lean_http.Tally)
    timeouts: int = 0
    server_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


STATEMENTS = re.compile(r'^boxoffice_db_statements_total\{database="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)
POLLS = re.compile(r'^boxoffice_bus_polls_total\{group="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)
PUBLISHES = re.compile(r'^boxoffice_bus_publishes_total\{service="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


async def statements(client: httpx.AsyncClient) -> dict[str, float]:
    """SQL statements each database has been sent so far (the server's own counter)."""
    return (await counters(client))[0]


async def counters(client: httpx.AsyncClient) -> tuple[dict[str, float], dict[str, float]]:
    """The server's counters so far: SQL statements by database, and bus reads and writes (``poll <group>``:
    polls of a consumer group that returned events; ``publish <service>``: a relay's publishes)."""
    text = (await client.get("/metrics")).text
    bus = {f"poll {group}": float(n) for group, n in POLLS.findall(text)}
    bus.update({f"publish {service}": float(n) for service, n in PUBLISHES.findall(text)})
    return {database: float(count) for database, count in STATEMENTS.findall(text)}, bus


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


def per_flow(before: dict[str, float], after: dict[str, float], flows: int, *, digits: int = 1) -> dict[str, float]:
    used = {db: after.get(db, 0.0) - before.get(db, 0.0) for db in after}
    return {db: round(n / max(1, flows), digits) for db, n in sorted(used.items()) if n}


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


async def watch_pdf(conn: Connection, order_id: str, headers: dict[str, str], paid_at: float, stats: Stats) -> None:
    """Time from the payment's answer until the order's tickets show their codes (``code_visible``), and until
    every ticket's PDF downloads (``pdf_ready``: ``GET /api/tickets/{id}/pdf`` answers 200 with the PDF)."""
    deadline = paid_at + 120
    tickets: list[dict[str, Any]] = []
    try:
        while time.perf_counter() < deadline and not tickets:
            tickets = (await conn.request("GET", f"/api/orders/{order_id}", headers)).json().get("tickets") or []
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
                pdf = await conn.request("GET", f"/api/tickets/{ticket_id}/pdf", headers)
                if pdf.status == 200 and pdf.body.startswith(b"%PDF-"):
                    waiting.remove(ticket_id)
                elif pdf.status != 404:  # 404 pdf-not-ready: not rendered yet
                    stats.error(f"pdf {pdf.status}")
                    return
            if not waiting:
                stats.latencies["pdf_ready"].append(time.perf_counter() - paid_at)
                return
            await asyncio.sleep(0.05)
        stats.error("pdf never ready")
    except Answer as exc:
        stats.error(f"pdf watch: {exc}")
    finally:
        await conn.close()


async def buyer(
    conn: Connection,
    tokens: asyncio.Queue[str],
    hold_body: dict[str, Any],
    stats: Stats,
    stop: asyncio.Event,
    sample_every: int,
) -> None:
    """One buyer on its own keep-alive connection: hold -> order -> pay, again and again, with the next
    customer's token each time, until the section is sold out."""
    try:
        while not stop.is_set():
            token = await tokens.get()
            headers = {"Authorization": f"Bearer {token}"}
            try:
                start = time.perf_counter()
                hold = await conn.request(
                    "POST", "/api/holds", {**headers, "Idempotency-Key": uuid.uuid4().hex}, hold_body
                )
                stats.latencies["hold"].append(time.perf_counter() - start)
                stats.sent_at["hold"].append(start)
                if hold.status == 409:
                    stats.sold_out += 1
                    stop.set()
                    return
                if hold.status == 429:
                    continue  # this customer reached a limit: the next one goes
                if hold.status != 201:
                    stats.error(f"hold {hold.status}")
                    continue
                t = time.perf_counter()
                order = await conn.request("POST", "/api/orders", headers, {"hold_id": hold.json()["id"]})
                stats.latencies["order"].append(time.perf_counter() - t)
                stats.sent_at["order"].append(t)
                if order.status != 201:
                    stats.error(f"order {order.status}")
                    continue
                order_id = order.json()["id"]
                t = time.perf_counter()
                paid = await conn.request(
                    "POST", f"/api/orders/{order_id}/payment", {**headers, "Idempotency-Key": uuid.uuid4().hex}, CARD
                )
                stats.latencies["pay"].append(time.perf_counter() - t)
                stats.sent_at["pay"].append(t)
                if paid.status != 200:
                    stats.error(f"pay {paid.status}")
                    continue
                stats.paid += 1
                stats.latencies["flow"].append(time.perf_counter() - start)
                if stats.paid % sample_every == 0:
                    watcher = Connection(conn.host, conn.port, conn.timeout, stats)
                    stats.watchers.append(
                        asyncio.create_task(watch_pdf(watcher, order_id, headers, time.perf_counter(), stats))
                    )
            except Answer as exc:
                stats.error(str(exc))
            except (ValueError, KeyError) as exc:  # an answer that is not the JSON expected
                stats.error(f"bad answer: {type(exc).__name__}")
            finally:
                tokens.put_nowait(token)
    finally:
        await conn.close()


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
        (counted_before, bus_before), cpu_before = await counters(client), cpu_seconds(args.server_pid)
        own_before = time.process_time()
        print(f"the sale starts: {args.buyers} buyers", file=sys.stderr, flush=True)
        started, started_wall = time.perf_counter(), time.time()
        sample_every = max(1, args.tickets // max(1, args.pdf_samples))
        where = httpx.URL(args.url)
        buyers = [
            asyncio.create_task(
                buyer(Connection(where.host, where.port or 80, 30, stats), tokens, hold_body, stats, stop, sample_every)
            )
            for _ in range(args.buyers)
        ]
        _, pending = await asyncio.wait(buyers, timeout=args.max_seconds)
        stop.set()
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - started
        own_cpu = time.process_time() - own_before
        print(f"the sale ended: {stats.paid} flows in {elapsed:.1f} s", file=sys.stderr, flush=True)
        (counted_sale, bus_sale), cpu_sale = await counters(client), cpu_seconds(args.server_pid)
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
        "started_at_unix": round(started_wall, 2),
        "flows_per_second": round(stats.paid / elapsed, 1),
        "oversold": oversold,
        "server_available_after": available,
        "errors": stats.errors,
        "statements_per_flow": per_flow(counted_before, counted_sale, stats.paid),
        "statements_per_flow_all": per_flow(counted_before, counted_all, stats.paid),
        "bus_calls_per_flow": per_flow(bus_before, bus_sale, stats.paid, digits=2),
        "cpu_ms_per_flow": round((cpu_sale - cpu_before) * 1000 / max(1, stats.paid), 2),
        "cpu_ms_per_flow_all": round((cpu_all - cpu_before) * 1000 / max(1, stats.paid), 2),
        "load_generator_cpu_ms_per_flow": round(own_cpu * 1000 / max(1, stats.paid), 2),
        "requests_during_sale": stats.requests,
        "server_errors": stats.server_errors,
        "timeouts": stats.timeouts,
        **{
            f"{step}_ms": {
                "p50": round(percentile(values, 0.50) * 1000, 1),
                "p95": round(percentile(values, 0.95) * 1000, 1),
                "p99": round(percentile(values, 0.99) * 1000, 1),
                "mean": round(statistics.fmean(values) * 1000, 1) if values else None,
            }
            for step, values in stats.latencies.items()
        },
        # The five slowest requests of each step: [seconds into the sale when sent, ms]. A tail at the start
        # (work left from registering the buyers) reads differently from one spread over the sale.
        "slowest": {
            step: [
                [round(at - started, 2), round(latency * 1000, 1)]
                for latency, at in sorted(zip(stats.latencies[step], sent, strict=True), reverse=True)[:5]
            ]
            for step, sent in stats.sent_at.items()
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
    import uvloop  # uvicorn's event loop: the load generator's share of the cores stays small

    sys.exit(uvloop.run(main(parse())))
