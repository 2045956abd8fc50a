"""CPU per flash-sale flow in one process, without the noise of a shared machine's scheduler.

    .venv/bin/python loadtest/flow_cpu.py --flows 300 --concurrency 8 [--profile flows.prof]

The whole of boxoffice runs in this process (every service and worker, as ``boxoffice run`` does), reached
through httpx's ASGI transport instead of a socket. It registers the customers it needs, puts a general-
admission sale on, then times ``--flows`` complete hold -> order -> pay flows with ``--concurrency`` buyers
and prints the process's CPU milliseconds per flow and SQL statements per flow by database: for the flows
alone, and again once the work they left behind is done (relays and consumers; every ticket issued with its PDF
stored and every confirmation e-mail sent: ``seconds_to_finish_after_the_flows``; the PDF renderers' own
processes apart, ``pdf_workers_cpu_ms_per_flow``). The figures
include the in-process client's share (httpx, a few percent) and no uvicorn, so they are for comparing
two versions of the code side by side; ``loadtest/compare.py`` measures the real server.

``--over-http`` forgets the in-process ports (booking's ``ports.py``) so that payments calls booking through
the in-process HTTP client, as before the ports: run it with and without, side by side, for what a port saves.

``--profile FILE`` writes a cProfile of the timed flows, in CPU time (read it with ``python -m pstats FILE``), and
adds the CPU the requests alone took per flow under the profiler (the process's CPU also counts the workers'
work, part of it periodic, so it grows with how long a run takes on a busy machine).

``--profile-after FILE`` does the same for the work the flows left behind (issuing, PDFs stored, e-mails).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtest"))

import psutil  # noqa: E402
from flash_sale import CARD, create_sale, login, register_customer  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402
from prometheus_client.metrics import MetricWrapperBase  # noqa: E402

from boxoffice.cli import SERVICES  # noqa: E402
from boxoffice.platform.gateway import Gateway  # noqa: E402
from boxoffice.platform.metrics import BUS_CONSUMER_LAG  # noqa: E402
from boxoffice.platform.settings import Settings  # noqa: E402
from boxoffice.tickets.handlers.issuing import ISSUED  # noqa: E402
from boxoffice.tickets.handlers.mail import MAILS_SENT  # noqa: E402
from boxoffice.tickets.letters import CONFIRMATION  # noqa: E402
from tests.harness.app import running  # noqa: E402

ADMIN = ("admin@example.com", "admin-password-2026")


def statements() -> dict[str, float]:
    counts: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "boxoffice_db_statements":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["database"]] = sample.value
    return counts


def per_flow(before: dict[str, float], after: dict[str, float], flows: int) -> dict[str, float]:
    used = {db: after.get(db, 0.0) - before.get(db, 0.0) for db in after}
    return {db: round(n / flows, 1) for db, n in sorted(used.items()) if n}


def sample(metric: MetricWrapperBase, suffix: str = "", **labels: str) -> float:
    """The sum of one metric's samples (``suffix``: ``_total`` for a counter) with these labels. Asked of the
    metric itself: collecting the whole registry every 50 ms cost more CPU than the work being waited for."""
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if sample.name == family.name + suffix and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def lagging() -> bool:
    """Whether some consumer group has events it has not handled yet (its last poll's lag)."""
    return sample(BUS_CONSUMER_LAG) > 0


async def settle(tickets: float | None = None, orders: float | None = None, limit: float = 120.0) -> float:
    """Wait until the work the requests left behind is done, and return how long that took.

    With ``tickets`` and ``orders``: until that many tickets are issued with their PDFs stored and that many
    confirmation e-mails sent (counters of this process), and no consumer group lags. Without: until no group
    has lagged for a second. (Waiting for the statements to stop instead never ends: idle pollers run some.)"""
    started = deadline = time.monotonic()
    deadline += limit
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        done = not lagging()
        if tickets is not None and orders is not None:
            done = done and sample(ISSUED, "_total") >= tickets
            done = done and sample(MAILS_SENT, "_total", kind=CONFIRMATION) >= orders
        if done and tickets is not None:
            return time.monotonic() - started
        quiet_since = (quiet_since or time.monotonic()) if done else None
        if quiet_since is not None and time.monotonic() - quiet_since >= 1.0:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the work the flows left behind was not done after {limit:.0f} s")


def pdf_workers_cpu() -> float:
    """CPU seconds of this process's children (the tickets service's PDF renderers)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            total += times.user + times.system
    return total


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ["BOXOFFICE_ADMIN_EMAIL"], os.environ["BOXOFFICE_ADMIN_PASSWORD"] = ADMIN
    with tempfile.TemporaryDirectory(prefix="flow-cpu-") as data:
        settings = Settings(data_dir=Path(data), demo=False)
        async with running(settings, list(SERVICES)) as app:
            if args.over_http:
                app.runtime.clients.unregister_ports()
            client = app.client
            admin = await login(client, *ADMIN)
            event_id, section_id = await create_sale(client, admin, args.flows + 10)
            run_id = uuid.uuid4().hex[:6]
            gate = asyncio.Semaphore(8)

            async def customer(n: int) -> str:
                async with gate:
                    return await register_customer(client, run_id, n)

            tokens = await asyncio.gather(*[customer(n) for n in range(-(-args.flows // 10) + 1)])
            hold_body = {"event_id": event_id, "section_id": section_id, "quantity": 1}
            queue: asyncio.Queue[str] = asyncio.Queue()
            for _ in range(10):  # each customer's ten tickets, one hold at a time (the active-holds limit)
                for token in tokens:
                    queue.put_nowait(token)
            failures: dict[str, int] = {}

            async def flow() -> None:
                headers = {"Authorization": f"Bearer {queue.get_nowait()}"}
                hold = await client.post(
                    "/api/holds", json=hold_body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
                )
                if hold.status_code != 201:
                    failures[f"hold {hold.status_code}"] = failures.get(f"hold {hold.status_code}", 0) + 1
                    return
                order = await client.post("/api/orders", json={"hold_id": hold.json()["id"]}, headers=headers)
                paid = await client.post(
                    f"/api/orders/{order.json()['id']}/payment",
                    json=CARD,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                if paid.status_code != 200:
                    failures[f"pay {paid.status_code}"] = failures.get(f"pay {paid.status_code}", 0) + 1

            async def buyer(n: int) -> None:
                for _ in range(n):
                    await flow()

            await settle()
            issued, mailed = sample(ISSUED, "_total"), sample(MAILS_SENT, "_total", kind=CONFIRMATION)
            counted, cpu, wall = statements(), time.process_time(), time.perf_counter()
            pdf_cpu = pdf_workers_cpu()
            # Timed by the process's CPU clock, not the wall's: on a shared machine other processes' load would
            # otherwise count as this code's time.
            profile = cProfile.Profile(time.process_time) if args.profile else None
            requests_cpu = 0.0
            with profile or contextlib.nullcontext():
                share = args.flows // args.concurrency
                await asyncio.gather(*[buyer(share) for _ in range(args.concurrency)])
            flows = share * args.concurrency
            counted_flows, cpu_flows, wall_flows = statements(), time.process_time(), time.perf_counter()
            flows_done = flows - sum(failures.values())
            after = cProfile.Profile(time.process_time) if args.profile_after else None
            with after or contextlib.nullcontext():
                behind = await settle(tickets=issued + flows_done, orders=mailed + flows_done)
            if after is not None:
                after.dump_stats(args.profile_after)
            counted_all, cpu_all = statements(), time.process_time()
            pdf_cpu = pdf_workers_cpu() - pdf_cpu
            if profile is not None:
                profile.dump_stats(args.profile)
                requests_cpu = _cpu_inside(profile, Gateway.__call__)  # every request enters there
    flows -= sum(failures.values())
    result = {
        "over_http": args.over_http,
        "flows": flows,
        "failures": failures,
        "flows_per_second": round(flows / (wall_flows - wall), 1),
        "cpu_ms_per_flow": round((cpu_flows - cpu) * 1000 / flows, 2),
        "cpu_ms_per_flow_all": round((cpu_all - cpu) * 1000 / flows, 2),
        "pdf_workers_cpu_ms_per_flow": round(pdf_cpu * 1000 / flows, 2),
        "seconds_to_finish_after_the_flows": round(behind, 1),
        "statements_per_flow": per_flow(counted, counted_flows, flows),
        "statements_per_flow_all": per_flow(counted, counted_all, flows),
    }
    if args.profile:
        # The requests alone, without the workers' work (under the profiler, so higher than without it).
        result["profiled_request_cpu_ms_per_flow"] = round(requests_cpu * 1000 / flows, 2)
    print(json.dumps(result))


def _cpu_inside(profile: cProfile.Profile, function: Callable[..., object]) -> float:
    """Seconds of CPU the profile saw spent inside ``function`` (and what it called)."""
    code = function.__code__
    entry = pstats.Stats(profile).stats.get((code.co_filename, code.co_firstlineno, code.co_name))
    return float(entry[3]) if entry else 0.0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", help="write a cProfile of the timed flows to this file")
    parser.add_argument("--profile-after", help="write a cProfile of the work the flows left behind to this file")
    parser.add_argument(
        "--over-http",
        action="store_true",
        help="no in-process ports: services call each other through the in-process HTTP client (what a port saves)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
