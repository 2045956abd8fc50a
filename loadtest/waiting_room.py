"""Waiting-room benchmark: B buyers arrive within S seconds for N tickets, with and without the waiting room.

    .venv/bin/python loadtest/waiting_room.py --buyers 1000 --arrival-seconds 10 --tickets 100 --max-seconds 120
    .venv/bin/python loadtest/waiting_room.py --buyers 5000 --arrival-seconds 10 --tickets 500 --processes 4

It starts ``boxoffice run`` itself on 127.0.0.1 (fresh data dir, no demo data) and signs the buyers' access
tokens with identity's own key from that data dir (registering 5,000 accounts through e-mail codes would be
the benchmark of argon2, not of the sale). Then, for each of ``--modes``:

- **room**: a queued sale opens a few seconds after the first arrival; each buyer joins the line, asks for
  their place again when the room's ``Retry-After`` says (with jitter, as the waiting page does), and once
  admitted holds one ticket with the admission, orders and pays; a buyer whose line closes is told "sold out";
- **open**: the same arrivals go straight to hold -> order -> pay on an ordinary sale.

The buyers are spread over ``--processes`` load processes, each with its own event loop, speaking HTTP/1.1
over plain asyncio streams (one keep-alive connection per buyer): one process with an HTTP client library
could not drive 5,000 buyers. A 503 or 429 on a hold is tried again after its Retry-After (three times).
Each buyer ends with an answer: a ticket, "sold out", an error, or a timeout. It prints per mode what the
server sold against the capacity (oversold must be 0), how many buyers got an answer and how long it took
(p50/p99 from arrival), the time in line, server errors, timeouts, the server's CPU time and the load
average (the machine may be shared). Only loopback is used; every mode is bounded by --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import secrets
import signal
import sqlite3
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

from loadtest.lean_http import Answer, Connection, Reply  # noqa: E402

from tests.harness.net import free_port  # noqa: E402

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
SECRET = secrets.token_urlsafe(32)  # this run's throw-away server only


@dataclass
class Outcome:
    answers: Counter[str] = field(default_factory=Counter)
    in_line: list[float] = field(default_factory=list)  # arrival -> admitted or told "sold out" (with the room)
    answer: list[float] = field(default_factory=list)  # arrival -> the final answer (a ticket or "sold out")
    purchase: list[float] = field(default_factory=list)  # hold -> paid
    server_errors: int = 0
    timeouts: int = 0
    requests: int = 0
    polls: int = 0

    def merge(self, other: Outcome) -> None:
        self.answers.update(other.answers)
        for name in ("in_line", "answer", "purchase"):
            getattr(self, name).extend(getattr(other, name))
        self.server_errors += other.server_errors
        self.timeouts += other.timeouts
        self.requests += other.requests
        self.polls += other.polls


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def mint_tokens(data_dir: Path, count: int) -> tuple[list[str], str]:
    """Access tokens for ``count`` buyers and one admin, signed by the running identity's key."""
    from boxoffice.cli import Runtime  # here, not at the top: the load processes need none of it
    from boxoffice.platform.settings import Settings

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


async def create_sale(url: str, admin: str, tickets: int, *, queue: dict[str, Any] | None) -> tuple[str, str]:
    starts = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    body: dict[str, Any] = {
        "name": f"Benchmark {'queued' if queue else 'open'} sale {uuid.uuid4().hex[:6]}", "category": "concert",
        "venue": "Loopback Arena", "city": "Localhost", "currency": "EUR", "starts_at": starts.isoformat(),
        "sections": [{"name": "Floor", "price": 5000, "capacity": tickets}],
    }
    if queue:
        body["queue"] = queue
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        response = await client.post("/api/events", json=body, headers={"Authorization": f"Bearer {admin}"})
        response.raise_for_status()
        event = response.json()
    return str(event["id"]), str(event["sections"][0]["id"])


def sold_count(data_dir: Path, event_id: str) -> int:
    """Tickets sold (paid), read from booking's own database: a server still busy cannot make this fail."""
    conn = sqlite3.connect(f"file:{data_dir / 'booking.db'}?mode=ro", uri=True, timeout=60)
    try:
        row = conn.execute("SELECT coalesce(sum(sold), 0) FROM sections WHERE event_id = ?", (event_id,)).fetchone()
        return int(row[0])
    finally:
        conn.close()


def retry_after(reply: Reply, default: float) -> float:
    try:
        return float(reply.headers.get("retry-after", default))
    except ValueError:
        return default


async def purchase(conn: Connection, headers: dict[str, str], hold: dict[str, Any], out: Outcome) -> str:
    """hold -> order -> pay; a 503 or 429 is tried again after its Retry-After, three times at most."""
    started = time.monotonic()
    for attempt in range(4):
        placed = await conn.request("POST", "/api/holds", {**headers, "Idempotency-Key": uuid.uuid4().hex}, hold)
        if placed.status in (429, 503) and attempt < 3:
            await asyncio.sleep(retry_after(placed, 1.0) * random.uniform(1.0, 1.5))
            continue
        break
    if placed.status == 409:
        return "sold out"
    if placed.status != 201:
        return f"hold {placed.status}"
    order = await conn.request("POST", "/api/orders", {**headers, "Idempotency-Key": uuid.uuid4().hex},
                               {"hold_id": placed.json()["id"]})
    if order.status != 201:
        return f"order {order.status}"
    paid = await conn.request("POST", f"/api/orders/{order.json()['id']}/payment",
                              {**headers, "Idempotency-Key": uuid.uuid4().hex}, CARD)
    if paid.status != 200:
        return f"payment {paid.status}"
    out.purchase.append(time.monotonic() - started)
    return "ticket"


async def buyer_with_room(
    conn: Connection, room: Connection, token: str, event: tuple[str, str], out: Outcome, poll: float
) -> str:
    """Join, then ask again when the room's Retry-After says (as the waiting page does), then buy."""
    event_id, section_id = event
    headers = {"Authorization": f"Bearer {token}"}
    joined_at = time.monotonic()
    place = await room.request("POST", f"/api/queue/{event_id}/join", headers)
    while True:
        if place.status == 410:
            out.in_line.append(time.monotonic() - joined_at)
            return "sold out"
        if place.status != 200:
            return f"queue {place.status}"
        state = place.json()
        if state["status"] == "closed":
            out.in_line.append(time.monotonic() - joined_at)
            return "sold out" if state["reason"] == "sold_out" else f"closed: {state['reason']}"
        if state["status"] == "admitted":
            out.in_line.append(time.monotonic() - joined_at)
            hold = {"event_id": event_id, "section_id": section_id, "quantity": 1}
            return await purchase(conn, {**headers, "X-Admission": state["admission"]["token"]}, hold, out)
        wait = state.get("poll_after_seconds") or retry_after(place, poll)
        await asyncio.sleep(wait * random.uniform(0.7, 1.3))
        out.polls += 1
        place = await room.request("GET", f"/api/queue/{event_id}/me", headers)


async def buyer_without_room(
    conn: Connection, room: Connection, token: str, event: tuple[str, str], out: Outcome, poll: float
) -> str:
    event_id, section_id = event
    hold = {"event_id": event_id, "section_id": section_id, "quantity": 1}
    return await purchase(conn, {"Authorization": f"Bearer {token}"}, hold, out)


@dataclass(frozen=True)
class Job:
    """One load process's share: its buyers' tokens and arrival times (seconds after ``began``, wall clock)."""

    host: str
    port: int
    room_port: int  # where the buyers' /api/queue/ requests go: the server's port, or the room's own servers'
    room: bool
    event: tuple[str, str]
    buyers: list[tuple[str, float]]
    began: float
    poll: float
    timeout: float
    max_seconds: float


def started(_: int) -> int:
    return os.getpid()


def load_process(job: Job) -> Outcome:
    """A load process: its own event loop and connections, bounded by ``max_seconds``."""

    async def main() -> Outcome:
        out = Outcome()
        behaviour = buyer_with_room if job.room else buyer_without_room

        async def one(token: str, at: float) -> None:
            await asyncio.sleep(max(0.0, job.began + at - time.time()))
            conn = Connection(job.host, job.port, job.timeout, out, job.began + job.max_seconds)
            room = conn
            if job.room_port != job.port:
                room = Connection(job.host, job.room_port, job.timeout, out, job.began + job.max_seconds)
            arrived = time.monotonic()
            try:
                answer = await behaviour(conn, room, token, job.event, out, job.poll)
            except Answer as exc:
                answer = str(exc)
            finally:
                await conn.close()
                await room.close()
            if answer in ("ticket", "sold out"):
                out.answer.append(time.monotonic() - arrived)
            out.answers[answer] += 1

        tasks = [asyncio.create_task(one(t, a)) for t, a in job.buyers]
        remaining = job.began + job.max_seconds - time.time()
        _, pending = await asyncio.wait(tasks, timeout=max(1.0, remaining))
        for _ in range(10):  # asyncio.wait_for may swallow a cancellation (Python 3.11): cancel until done
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=2.0)
        unanswered = "no answer (run bounded)"  # cancelled, or stopped at the deadline
        out.answers[unanswered] = len(tasks) - sum(n for key, n in out.answers.items() if key != unanswered)
        return out

    return asyncio.run(main())


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the server's processes (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:13])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class ModeRun:
    out: Outcome
    sold: int
    seconds: float
    server_cpu: float
    load: tuple[float, float]  # 1-minute load average at the start and the end


async def run_mode(
    url: str, ports: tuple[int, int], tokens: list[str], admin: str, args: argparse.Namespace, *, room: bool,
    server_pids: list[int], data_dir: Path,
) -> ModeRun:
    queue = None
    if room:
        on_sale = (datetime.now(UTC) + timedelta(seconds=args.opens_after)).replace(microsecond=0)
        queue = {"on_sale_at": on_sale.isoformat()}
        if args.admit_per_minute:
            queue["admit_per_minute"] = args.admit_per_minute
    event = await create_sale(url, admin, args.tickets, queue=queue)
    await asyncio.sleep(2.0)  # booking and the waiting room learn the sale from the bus
    rng = random.Random(7)  # the same arrivals for both modes
    arrivals = sorted(rng.uniform(0, args.arrival_seconds) for _ in tokens)
    buyers = list(zip(tokens, arrivals, strict=True))
    context = multiprocessing.get_context("spawn")
    out = Outcome()
    with context.Pool(args.processes) as pool:
        await asyncio.to_thread(pool.map, started, range(args.processes), 1)  # the processes are up
        began = time.time() + 1.0
        jobs = [
            Job("127.0.0.1", ports[0], ports[1], room, event, buyers[p :: args.processes], began, args.poll_seconds,
                args.timeout, args.max_seconds)
            for p in range(args.processes)
        ]
        load_before, cpu_before = os.getloadavg()[0], cpu_seconds(server_pids)
        pending = pool.map_async(load_process, jobs)
        await asyncio.to_thread(pending.wait, args.max_seconds + 60)
        if not pending.ready():
            pool.terminate()
            raise SystemExit("the load processes did not stop in time")
        for part in pending.get():
            out.merge(part)
    seconds = time.time() - began
    await asyncio.sleep(3.0)  # the last payments' confirmations
    sold = sold_count(data_dir, event[0])
    return ModeRun(out, sold, seconds, cpu_seconds(server_pids) - cpu_before, (load_before, os.getloadavg()[0]))


def report(name: str, run: ModeRun, args: argparse.Namespace) -> dict[str, Any]:
    out = run.out
    answered = out.answers.get("ticket", 0) + out.answers.get("sold out", 0)
    return {
        "mode": name,
        "buyers": args.buyers,
        "tickets": args.tickets,
        "sold": run.sold,  # what the server counts as sold (paid orders)
        "oversold": max(0, run.sold - args.tickets, out.answers.get("ticket", 0) - args.tickets),
        "tickets_paid": out.answers.get("ticket", 0),
        "answered": answered,  # a ticket or "sold out"
        "answers": dict(out.answers.most_common()),
        "server_errors": out.server_errors,
        "timeouts": out.timeouts,
        "answer_p50_s": round(percentile(out.answer, 0.5), 2),
        "answer_p99_s": round(percentile(out.answer, 0.99), 2),
        "in_line_p50_s": round(percentile(out.in_line, 0.5), 2),
        "in_line_p99_s": round(percentile(out.in_line, 0.99), 2),
        "purchase_p50_s": round(percentile(out.purchase, 0.5), 3),
        "purchase_p99_s": round(percentile(out.purchase, 0.99), 3),
        "requests": out.requests,
        "status_polls": out.polls,
        "seconds": round(run.seconds, 1),
        "server_cpu_s": round(run.server_cpu, 1),
        "load_average": [round(v, 1) for v in run.load],
    }


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="boxoffice-wr-"))
    port = free_port()
    env = {**os.environ, "BOXOFFICE_DATA_DIR": str(data_dir), "BOXOFFICE_PORT": str(port), "BOXOFFICE_DEMO": "0",
           "BOXOFFICE_SECRET_KEY": SECRET, "BOXOFFICE_LOG_LEVEL": "WARNING",
           "BOXOFFICE_BOOKING_MAX_ACTIVE_HOLDS": "3", "BOXOFFICE_WAITINGROOM_TICK_SECONDS": "0.5"}
    if args.room_servers:
        env["BOXOFFICE_SQLITE_INLINE"] = "0"  # several processes write the waiting room's SQLite file
    log = (data_dir / "server.log").open("wb")
    command = [sys.executable, "-m", "boxoffice.cli", "run"]
    server = subprocess.Popen(  # noqa: ASYNC220 - once; its own session, so its workers stop with it
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    servers, room_port = [server], port
    url = f"http://127.0.0.1:{port}"
    modes = [m.strip() for m in args.modes.split(",")]
    results = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as probe:
            for _ in range(600):
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise SystemExit(f"boxoffice did not get ready (see {data_dir / 'server.log'})")
        if args.room_servers:
            # The waiting room's API in processes of its own (SO_REUSEPORT: the kernel spreads the buyers'
            # connections over them), as replicas behind an ingress that routes /api/queue/ to them would be;
            # its admission loop and everything else stay in the first process.
            room_port = free_port()
            serve = [sys.executable, "-m", "boxoffice.cli", "serve", "waitingroom", "--port", str(room_port),
                     "--reuse-port"]
            room_env = {**env, "BOXOFFICE_IDENTITY_URL": url}  # the keys that verify the buyers' tokens
            servers += [
                subprocess.Popen(  # noqa: ASYNC220 - a few, once
                    serve, env=room_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
                for _ in range(args.room_servers)
            ]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{room_port}", timeout=10) as probe:
                for _ in range(300):
                    try:
                        if (await probe.get("/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)
            await asyncio.sleep(5.0)  # every one of them listens (the probe reached one)
        tokens, admin = await mint_tokens(data_dir, args.buyers * len(modes))
        for index, mode in enumerate(modes):
            share = tokens[index * args.buyers : (index + 1) * args.buyers]
            run = await run_mode(url, (port, room_port), share, admin, args, room=mode == "room",
                                 server_pids=[s.pid for s in servers], data_dir=data_dir)
            results.append(report("with the waiting room" if mode == "room" else "without", run, args))
            print(json.dumps(results[-1]), flush=True)
    finally:
        for each in servers:
            os.killpg(each.pid, signal.SIGTERM)
        for each in servers:
            each.wait(timeout=30)
    print(f"\n{args.buyers} buyers within {args.arrival_seconds:g} s for {args.tickets} tickets, "
          f"{args.processes} load processes, {os.cpu_count()} cores")
    for r in results:
        print(f"{r['mode']:>22}: sold {r['sold']}, oversold {r['oversold']}, answered {r['answered']} of "
              f"{r['buyers']} (p50 {r['answer_p50_s']} s, p99 {r['answer_p99_s']} s), server errors "
              f"{r['server_errors']}, timeouts {r['timeouts']}, in line p50 {r['in_line_p50_s']} s / p99 "
              f"{r['in_line_p99_s']} s, purchase p99 {r['purchase_p99_s']} s, {r['requests']} requests, "
              f"server CPU {r['server_cpu_s']} s, load average {r['load_average'][0]} -> {r['load_average'][1]}; "
              f"answers {r['answers']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=5000)
    parser.add_argument("--arrival-seconds", type=float, default=10.0)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--modes", default="room,open", help="room (through the waiting room), open (straight)")
    parser.add_argument("--processes", type=int, default=4, help="load processes (each its own loop)")
    parser.add_argument("--admit-per-minute", type=int, help="the organiser's rate (default: adaptive)")
    parser.add_argument("--opens-after", type=float, default=5.0, help="the queued sale opens this long after creation")
    parser.add_argument("--poll-seconds", type=float, default=3.0, help="a poll interval when the room gives none")
    parser.add_argument("--timeout", type=float, default=30.0, help="a request slower than this is a timeout")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--room-servers", type=int, default=0,
                        help="serve the waiting room's API from this many processes of its own as well")
    parsed = parser.parse_args()
    if parsed.buyers > 10_000 or parsed.max_seconds > 900 or not 1 <= parsed.processes <= 16 or not (
        0 <= parsed.room_servers <= 4
    ):
        parser.error("keep a run bounded: at most 10,000 buyers, 900 s, 16 load processes and 4 room servers")
    if not set(parsed.modes.split(",")) <= {"room", "open"}:
        parser.error("--modes: room, open or both")
    asyncio.run(main(parsed))
