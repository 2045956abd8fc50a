"""Waiting-room benchmark: B buyers arrive within S seconds for N tickets, with and without the waiting room.

    .venv/bin/python loadtest/waiting_room.py --buyers 5000 --arrival-seconds 10 --tickets 500

It starts ``boxoffice run`` itself on 127.0.0.1 (fresh data dir, no demo data) and signs the buyers' access
tokens with identity's own key from that data dir (registering 5,000 accounts through e-mail codes would be
the benchmark of argon2, not of the sale). Then, twice:

- **with the room**: a queued sale opens a few seconds after the first arrival; each buyer joins the line,
  asks for their place every few seconds (with jitter, as the waiting page does), and once admitted holds
  one ticket with the admission, orders and pays; a buyer whose line closes is told "sold out";
- **without the room**: the same arrivals go straight to hold -> order -> pay on an ordinary sale.

Each buyer ends with an answer: a ticket, "sold out", a server error, or a timeout. It prints per mode the
answers, the time in line (p50/p99), the purchase latency, server errors, timeouts, and tickets sold against
the capacity (oversold must be 0). Only loopback is used; the run is bounded by --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boxoffice.cli import Runtime  # noqa: E402
from boxoffice.platform.settings import Settings  # noqa: E402
from tests.harness.net import free_port  # noqa: E402

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
SECRET = secrets.token_urlsafe(32)  # this run's throw-away server only


@dataclass
class Outcome:
    answers: Counter[str] = field(default_factory=Counter)
    in_line: list[float] = field(default_factory=list)
    purchase: list[float] = field(default_factory=list)
    server_errors: int = 0
    timeouts: int = 0
    sold: int = 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def mint_tokens(data_dir: Path, count: int) -> tuple[list[str], str]:
    """Access tokens for ``count`` buyers and one admin, signed by the running identity's key."""
    runtime = Runtime(Settings(data_dir=data_dir, secret_key=SECRET, demo=False), ["identity"], run_workers=False)
    await runtime.start()
    try:
        ring = runtime.services[0].keyring()  # type: ignore[attr-defined]
        now = datetime.now(UTC)

        def issue(roles: list[str]) -> str:
            user = str(uuid.uuid4())
            return str(ring.issue_access_token(user_id=user, email=f"{user[:8]}@load.example.com", name="Buyer",
                                               roles=roles, now=now, ttl=timedelta(hours=1)))

        return [issue(["customer"]) for _ in range(count)], issue(["admin"])
    finally:
        await runtime.stop()


async def create_sale(
    client: httpx.AsyncClient, admin: str, tickets: int, *, queue: dict[str, Any] | None
) -> tuple[str, str]:
    starts = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    body: dict[str, Any] = {
        "name": f"Benchmark {'queued' if queue else 'open'} sale {uuid.uuid4().hex[:6]}", "category": "concert",
        "venue": "Loopback Arena", "city": "Localhost", "currency": "EUR", "starts_at": starts.isoformat(),
        "sections": [{"name": "Floor", "price": 5000, "capacity": tickets}],
    }
    if queue:
        body["queue"] = queue
    response = await client.post("/api/events", json=body, headers={"Authorization": f"Bearer {admin}"})
    response.raise_for_status()
    event = response.json()
    return str(event["id"]), str(event["sections"][0]["id"])


async def purchase(client: httpx.AsyncClient, headers: dict[str, str], hold: dict[str, Any], out: Outcome) -> str:
    started = time.perf_counter()
    placed = await client.post("/api/holds", json=hold, headers=headers)
    if placed.status_code == 409:
        return "sold out"
    if placed.status_code >= 500:
        out.server_errors += 1
        return "server error"
    if placed.status_code != 201:
        return f"hold {placed.status_code}"
    order = await client.post("/api/orders", json={"hold_id": placed.json()["id"]}, headers=headers)
    if order.status_code != 201:
        out.server_errors += order.status_code >= 500
        return f"order {order.status_code}"
    paid = await client.post(f"/api/orders/{order.json()['id']}/payment", json=CARD,
                             headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    if paid.status_code != 200:
        out.server_errors += paid.status_code >= 500
        return f"payment {paid.status_code}"
    out.purchase.append(time.perf_counter() - started)
    return "ticket"


async def buyer_with_room(client: httpx.AsyncClient, token: str, event: tuple[str, str], out: Outcome,
                          poll: float) -> str:
    event_id, section_id = event
    headers = {"Authorization": f"Bearer {token}"}
    joined_at = time.perf_counter()
    place = await client.post(f"/api/queue/{event_id}/join", headers=headers)
    while True:
        if place.status_code == 410:
            out.in_line.append(time.perf_counter() - joined_at)
            return "sold out"
        if place.status_code >= 500:
            out.server_errors += 1
            return "server error"
        if place.status_code != 200:
            return f"queue {place.status_code}"
        state = place.json()
        if state["status"] == "closed":
            out.in_line.append(time.perf_counter() - joined_at)
            return "sold out" if state["reason"] == "sold_out" else f"closed: {state['reason']}"
        if state["status"] == "admitted":
            out.in_line.append(time.perf_counter() - joined_at)
            hold = {"event_id": event_id, "section_id": section_id, "quantity": 1}
            return await purchase(client, {**headers, "X-Admission": state["admission"]["token"]}, hold, out)
        await asyncio.sleep(poll * random.uniform(0.7, 1.3))
        place = await client.get(f"/api/queue/{event_id}/me", headers=headers)


async def buyer_without_room(client: httpx.AsyncClient, token: str, event: tuple[str, str], out: Outcome,
                             poll: float) -> str:
    event_id, section_id = event
    hold = {"event_id": event_id, "section_id": section_id, "quantity": 1}
    return await purchase(client, {"Authorization": f"Bearer {token}"}, hold, out)


async def run_mode(url: str, tokens: list[str], admin: str, args: argparse.Namespace, *, room: bool) -> Outcome:
    out = Outcome()
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as client:
        queue = None
        if room:
            on_sale = (datetime.now(UTC) + timedelta(seconds=args.opens_after)).replace(microsecond=0)
            queue = {"on_sale_at": on_sale.isoformat()}
        event = await create_sale(client, admin, args.tickets, queue=queue)
        await asyncio.sleep(2.0)  # booking and the waiting room learn the sale from the bus
        behaviour = buyer_with_room if room else buyer_without_room
        rng = random.Random(7)  # the same arrivals for both modes
        arrivals = sorted(rng.uniform(0, args.arrival_seconds) for _ in tokens)
        began = time.perf_counter()

        async def one(token: str, at: float) -> None:
            await asyncio.sleep(max(0.0, began + at - time.perf_counter()))
            try:
                answer = await behaviour(client, token, event, out, args.poll_seconds)
            except httpx.TimeoutException:
                out.timeouts += 1
                answer = "timeout"
            except httpx.HTTPError as exc:
                answer = f"connection: {type(exc).__name__}"
            out.answers[answer] += 1

        tasks = [asyncio.create_task(one(t, a)) for t, a in zip(tokens, arrivals, strict=True)]
        _, pending = await asyncio.wait(tasks, timeout=args.max_seconds)
        for task in pending:
            task.cancel()
        out.answers["no answer (run bounded)"] += len(pending)
        out.sold = args.tickets - int((await client.get(f"/api/events/{event[0]}")).json()["sections"][0]["available"])
    return out


def report(name: str, out: Outcome, tickets: int) -> dict[str, Any]:
    return {
        "mode": name,
        "answers": dict(out.answers.most_common()),
        "tickets_paid": out.answers.get("ticket", 0),
        "oversold": max(0, out.answers.get("ticket", 0) - tickets),
        "server_errors": out.server_errors,
        "timeouts": out.timeouts,
        "in_line_p50_s": round(percentile(out.in_line, 0.5), 2),
        "in_line_p99_s": round(percentile(out.in_line, 0.99), 2),
        "purchase_p50_s": round(percentile(out.purchase, 0.5), 3),
        "purchase_p99_s": round(percentile(out.purchase, 0.99), 3),
    }


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="boxoffice-wr-"))
    port = free_port()
    env = {**os.environ, "BOXOFFICE_DATA_DIR": str(data_dir), "BOXOFFICE_PORT": str(port), "BOXOFFICE_DEMO": "0",
           "BOXOFFICE_SECRET_KEY": SECRET, "BOXOFFICE_LOG_LEVEL": "WARNING",
           "BOXOFFICE_BOOKING_MAX_ACTIVE_HOLDS": "3", "BOXOFFICE_WAITINGROOM_TICK_SECONDS": "0.5"}
    log = (data_dir / "server.log").open("wb")
    command = [sys.executable, "-m", "boxoffice.cli", "run"]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220 - once
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            for _ in range(300):
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        tokens, admin = await mint_tokens(data_dir, args.buyers * 2)
        results = []
        for room in (True, False):
            half = tokens[: args.buyers] if room else tokens[args.buyers:]
            out = await run_mode(url, half, admin, args, room=room)
            results.append(report("with the waiting room" if room else "without", out, args.tickets))
            print(json.dumps(results[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{args.buyers} buyers within {args.arrival_seconds:g} s for {args.tickets} tickets")
    for r in results:
        print(f"{r['mode']:>24}: paid {r['tickets_paid']}, oversold {r['oversold']}, server errors "
              f"{r['server_errors']}, timeouts {r['timeouts']}, in line p50 {r['in_line_p50_s']} s / p99 "
              f"{r['in_line_p99_s']} s, purchase p99 {r['purchase_p99_s']} s; answers {r['answers']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=5000)
    parser.add_argument("--arrival-seconds", type=float, default=10.0)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--opens-after", type=float, default=5.0, help="the queued sale opens this long after creation")
    parser.add_argument("--poll-seconds", type=float, default=3.0, help="how often a buyer in line asks")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=30.0, help="a request slower than this is a timeout")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    asyncio.run(main(parser.parse_args()))
