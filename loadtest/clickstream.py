"""Clickstream load: many simulated browsers POST batches of 20 events to /collect; how many are accepted per
second, how fast the collector answers, and how soon the processor has stored them all.

Starts ``boxoffice run`` itself (embedded: SQLite, the sql bus; or ``--bus kafka`` on a Tansu broker it
starts), then runs ``--browsers`` keep-alive connections spread over ``--processes`` load processes for
``--seconds``. Each browser is its own client (its own X-Forwarded-For address, which the collector is told
to trust here) with its own session, so the per-client rate limit applies as it would in production. The
load generator speaks HTTP/1.1 over raw asyncio streams: an HTTP client library would cost more CPU than the
collector it measures, on the same two cores.

    .venv/bin/python loadtest/clickstream.py                       # embedded, 30 s
    .venv/bin/python loadtest/clickstream.py --bus kafka           # Tansu broker, tracking on SQLite
    .venv/bin/python loadtest/clickstream.py --database-url postgresql+asyncpg://...  # tracking on PostgreSQL
    .venv/bin/python loadtest/clickstream.py --collectors 2        # `boxoffice serve tracking` x2 + `worker tracking`
    .venv/bin/python loadtest/clickstream.py --rate 10000 --seconds 15   # paced: the latency at 10,000 events/s offered

``--collectors N`` runs tracking as its own processes instead of ``boxoffice run``: N collectors (``boxoffice
serve tracking``, each on its own port; the browsers are spread over them) and one processor (``boxoffice worker
tracking``), sharing the data dir (SQLite, and the sql bus unless ``--bus kafka``). ``--py-spy PATH`` records
each server process with py-spy while the load runs (collapsed stacks in ``--profile-dir``).

Prints accepted events/s, the collector's p50/p95/p99, stored events/s end to end (from the first request
to the moment the last accepted event is in the table), the backlog left when the load stopped, and the CPU
time the server processes spent per event, with and without what they spend idle (measured for
``--idle-seconds`` before the load: the other services' pollers in ``boxoffice run``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.harness
from tests.harness.net import free_port, wait_for_port
from tests.harness.server import boxoffice_run

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Mobile Safari/537.36",
]
PAGES = ["/", "/events", "/trains", "/events/ev-1", "/events/ev-2", "/trains/runs/r-1", "/orders"]
TYPES = ["page_view", "click", "click", "click", "form_submit", "custom"]


def make_batch(
    browser: int, session: str, anonymous: str, seq: int, size: int, *, ts: str | None = None,
    ids: Sequence[str] | None = None,
) -> bytes:
    now = ts or datetime.now(UTC).isoformat()
    events = []
    for n in range(size):
        kind = TYPES[(seq + n) % len(TYPES)]
        event = {
            "event_id": ids[n] if ids else str(uuid.uuid4()),
            "type": kind,
            "ts": now,
            "anonymous_id": anonymous,
            "session_id": session,
            "url": f"http://shop.test{PAGES[(browser + seq + n) % len(PAGES)]}",
        }
        if kind == "click":
            event["element"] = {"tag": "a", "text": "Buy tickets", "track": "buy"}
        elif kind == "custom":
            event["name"] = "seat-picked"
            event["props"] = {"seat": f"A-{n}"}
        elif kind == "form_submit":
            event["props"] = {"fields": ["q", "category"]}
        events.append(event)
    return orjson.dumps({"sent_at": now, "events": events})


class BatchTemplate:
    """One browser's batch, encoded once: each request only fills in fresh event ids and the time.

    Encoding a batch of 20 events afresh (20 UUIDs, a dict each, orjson) costs the load generator about as
    much CPU as the collector spends on it, on the same two cores; formatting a template costs a tenth.
    The ids are UUID-shaped and unique in the run (run, browser, sequence number); the time has a fixed
    width, so the request head (with its Content-Length) is encoded once too.
    """

    TS = "2000-01-01T00:00:00.000000+00:00"

    def __init__(self, run: int, browser: int, size: int, head: bytes) -> None:
        session, anonymous = f"s-{run:x}-{browser}", f"a-{run:x}-{browser}"
        marker_ts, marker_id = "@@TS@@", "@@ID@@"
        prefix = f"{run & 0xFFFFFFFF:08x}-{browser & 0xFFFF:04x}-4{browser >> 16 & 0xFFF:03x}-8000-"
        body = make_batch(browser, session, anonymous, 0, size, ts=marker_ts, ids=[marker_id] * size)
        self.template = (
            body.replace(b"%", b"%%")
            .replace(marker_ts.encode(), b"%s")
            .replace(marker_id.encode(), prefix.encode() + b"%012x")
        )
        self.size = size
        length = len(self.template % tuple([self.TS.encode()] + [0, self.TS.encode()] * size))
        self.head = head.replace(b"@@LENGTH@@", str(length).encode())

    def request(self, seq: int) -> bytes:
        ts = datetime.now(UTC).isoformat(timespec="microseconds").encode()
        first = seq * self.size
        values: list[object] = [ts]
        for n in range(first, first + self.size):
            values += (n, ts)
        return self.head + self.template % tuple(values)


class Exchange(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: send a request, wait for its whole answer (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is no subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("the server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((int(head[9:12]), body))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def browser_loop(
    host: str, port: int, browser: int, deadline: float, size: int, latencies: list[float], counts: dict[str, int],
    run: int, every: float = 0.0,
) -> None:
    """One browser: a batch, its answer, the next batch at once (``every`` 0: as fast as the server answers), or
    one batch every ``every`` seconds from a random start (a paced browser: the latency then counts from when
    the batch was due, so a server that falls behind shows it in the percentiles instead of slowing the load)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(Exchange, host, port)
    address = f"10.{browser // 65536 % 256}.{browser // 256 % 256}.{browser % 256}"
    head = (
        f"POST /collect HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: @@LENGTH@@\r\nUser-Agent: {AGENTS[browser % len(AGENTS)]}\r\n"
        f"X-Forwarded-For: {address}\r\n\r\n"
    ).encode()
    template = BatchTemplate(run, browser, size, head)
    seq = 0
    due = time.perf_counter() + random.uniform(0, every)
    try:
        while time.monotonic() < deadline:
            if every:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            request = template.request(seq)
            seq += 1
            started = due if every else time.perf_counter()
            status, payload = await protocol.exchange(request)
            latencies.append(time.perf_counter() - started)
            due += every
            if status == 202:
                counts["accepted"] += orjson.loads(payload)["accepted"]
            else:
                counts[f"http_{status}"] = counts.get(f"http_{status}", 0) + 1
                await asyncio.sleep(0.05)
    finally:
        transport.close()


def load_process(
    args: tuple[str, tuple[int, ...], int, int, float, int, int, float],
) -> tuple[dict[str, int], list[float], float]:
    """One load process's browsers; returns its counts, latencies and the CPU seconds it used."""
    host, ports, first, browsers, seconds, size, run, every = args
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> tuple[dict[str, int], list[float]]:
        latencies: list[float] = []
        counts = {"accepted": 0}
        deadline = time.monotonic() + seconds
        results = await asyncio.gather(
            *(
                browser_loop(
                    host, ports[(first + b) % len(ports)], first + b, deadline, size, latencies, counts, run, every
                )
                for b in range(browsers)
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            counts["browser_errors"] = len(errors)
            print(f"browser error: {errors[0]!r}", file=sys.stderr)
        return counts, latencies

    began = time.process_time()
    counts, latencies = asyncio.run(main())
    return counts, latencies, time.process_time() - began


class StoredCounter:
    """How many events the tracking table holds: read-only, straight from the database."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.database_url = database_url
        self.path = data_dir / "tracking.db"

    def count(self) -> int:
        if self.database_url:
            return asyncio.run(self._count_postgres())
        if not self.path.exists():
            return 0
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT count(*) FROM tracking_events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    async def _count_postgres(self) -> int:
        import asyncpg

        assert self.database_url
        conn = await asyncpg.connect(self.database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM tracking_events"))
        finally:
            await conn.close()


@contextlib.contextmanager
def kafka_env(bus: str, bootstrap: str | None) -> Iterator[dict[str, str]]:
    if bus != "kafka":
        yield {}
        return
    if bootstrap:
        yield {"BOXOFFICE_BUS": "kafka", "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        return
    from tests.harness.tansu import tansu_broker

    with tansu_broker() as broker:
        yield {"BOXOFFICE_BUS": "kafka", "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of processes, their reaped children and the boxoffice processes they started
    (``boxoffice run --api-processes N``; not the PDF renderers, whose start-up would count as idle)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if "boxoffice.cli" in child.cmdline():
                    times = child.cpu_times()
                    total += times.user + times.system
    return total


@dataclass
class Servers:
    ports: tuple[int, ...]
    pids: dict[str, int]
    """Each server process by role: ``run``, or ``collector-N`` and ``processor``."""


@contextlib.contextmanager
def embedded(data_dir: Path, env: dict[str, str]) -> Iterator[Servers]:
    with boxoffice_run(data_dir, env=env, timeout=120) as server:
        yield Servers((int(server.url.rsplit(":", 1)[1]),), {"run": server.process.pid})


@contextlib.contextmanager
def separate(data_dir: Path, env: dict[str, str], collectors: int, inline: bool = False) -> Iterator[Servers]:
    """Tracking alone, as its own processes: ``serve tracking`` N times and ``worker tracking`` once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")},
        "BOXOFFICE_DATA_DIR": str(data_dir),
        "BOXOFFICE_SQLITE_INLINE": "1" if inline else "0",  # processes share the SQLite files
        **env,
    }
    command = [sys.executable, "-m", "boxoffice.cli"]
    subprocess.run([*command, "migrate"], env=full_env, check=True, stdout=subprocess.DEVNULL)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    ports = tuple(free_port() for _ in range(collectors))
    with (data_dir / "servers.log").open("wb") as out:
        try:
            for n, port in enumerate(ports):
                processes[f"collector-{n + 1}"] = subprocess.Popen(
                    [*command, "serve", "tracking", "--port", str(port)], env=full_env, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            processes["processor"] = subprocess.Popen(
                [*command, "worker", "tracking"], env=full_env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for port in ports:
                wait_for_port(port, timeout=120)
            yield Servers(ports, {role: p.pid for role, p in processes.items()})
        finally:
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def start_profilers(
    py_spy: str | None, out_dir: Path, servers: Servers, seconds: float
) -> list[subprocess.Popen[bytes]]:
    if not py_spy:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
             "--format", "raw", "--nonblocking", "-o", str(out_dir / f"{role}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for role, pid in servers.pids.items()
    ]


def collector_appends(host: str, port: int) -> tuple[float, float]:
    """(appends, requests appended) so far, from a collector's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    values = {"boxoffice_tracking_appends_total": 0.0, "boxoffice_tracking_appended_requests_total": 0.0}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values["boxoffice_tracking_appends_total"], values["boxoffice_tracking_appended_requests_total"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="clickstream-") as tmp, kafka_env(args.bus, args.bootstrap) as env:
        data_dir = Path(tmp) / "var"
        env = {
            **env,
            "BOXOFFICE_LOG_LEVEL": "WARNING",
            "BOXOFFICE_DEMO": "0",
            "BOXOFFICE_TRACKING_TRUST_FORWARDED_FOR": "1",
        }
        if args.database_url:
            env["BOXOFFICE_TRACKING_DATABASE_URL"] = args.database_url
        for pair in args.env:
            key, _, value = pair.partition("=")
            env[key] = value
        servers_of = (
            separate(data_dir, env, args.collectors, args.sqlite_inline) if args.collectors
            else embedded(data_dir, env)
        )
        with servers_of as servers:
            host = "127.0.0.1"
            pids = list(servers.pids.values())
            counter = StoredCounter(data_dir, args.database_url)
            baseline = counter.count()
            idle_started, idle_cpu = time.monotonic(), cpu_seconds(pids)
            time.sleep(args.idle_seconds)
            idle_per_second = (cpu_seconds(pids) - idle_cpu) / (time.monotonic() - idle_started)
            cpu_before = {role: cpu_seconds([pid]) for role, pid in servers.pids.items()}
            per = max(1, args.browsers // args.processes)
            run_id = uuid.uuid4().int & 0xFFFFFFFF
            every = args.browsers * args.batch / args.rate if args.rate else 0.0
            jobs = [
                (host, servers.ports, p * per, per, args.seconds, args.batch, run_id, every)
                for p in range(args.processes)
            ]
            profilers = start_profilers(args.py_spy, Path(args.profile_dir), servers, args.seconds)
            started = time.monotonic()
            context = multiprocessing.get_context("spawn")
            with context.Pool(args.processes) as pool:
                pending = pool.map_async(load_process, jobs)
                while not pending.ready():
                    pending.wait(1.0)
                results = pending.get()
            load_seconds = time.monotonic() - started
            stored_at_stop = counter.count() - baseline
            counts: dict[str, int] = {}
            latencies: list[float] = []
            load_cpu = sum(cpu for _, _, cpu in results)
            for part, lat, _ in results:
                for key, value in part.items():
                    counts[key] = counts.get(key, 0) + value
                latencies.extend(lat)
            accepted = counts.get("accepted", 0)
            drain_deadline = time.monotonic() + args.drain_timeout
            stored = stored_at_stop
            while stored < accepted and time.monotonic() < drain_deadline:
                time.sleep(0.25)
                stored = counter.count() - baseline
            end_to_end = time.monotonic() - started
            cpu_by_role = {role: cpu_seconds([pid]) - cpu_before[role] for role, pid in servers.pids.items()}
            appends = [collector_appends(host, port) for port in servers.ports]
            load = os.getloadavg()[0]
            for profiler in profilers:
                profiler.wait(timeout=60)
        server_cpu = sum(cpu_by_role.values())
        requests = len(latencies)
        layout = (f"{args.collectors} x `serve tracking` + `worker tracking`" if args.collectors
                  else "`boxoffice run`")
        print(f"mode: {layout}, {args.bus} bus, tracking on {'PostgreSQL' if args.database_url else 'SQLite'}; "
              f"{args.browsers} browsers in {args.processes} load processes, batches of {args.batch}, "
              f"{args.seconds:g} s, {os.cpu_count()} cores"
              + (f", paced at {args.rate:,.0f} events/s offered (latency from when each batch was due)" if args.rate
                 else ", each browser sending again as soon as answered"))
        print(f"requests: {requests} ({requests / load_seconds:,.0f}/s); other answers: "
              f"{ {k: v for k, v in counts.items() if k != 'accepted'} }")
        print(f"accepted: {accepted} events, {accepted / load_seconds:,.0f} events/s")
        print(f"collector latency: p50 {percentile(latencies, .5) * 1000:.1f} ms, "
              f"p95 {percentile(latencies, .95) * 1000:.1f} ms, p99 {percentile(latencies, .99) * 1000:.1f} ms, "
              f"mean {statistics.fmean(latencies) * 1000 if latencies else float('nan'):.1f} ms")
        print(f"stored when the load stopped: {stored_at_stop} ({stored_at_stop / load_seconds:,.0f} events/s)")
        complete = "all" if stored >= accepted else f"only {stored}"
        print(f"stored end to end: {complete} of {accepted} in {end_to_end:.1f} s "
              f"({stored / end_to_end:,.0f} events/s)")
        # The machine may be shared: what one event costs the server says more than the wall-clock rates.
        per_event = server_cpu / max(1, stored)
        busy = max(0.0, server_cpu - idle_per_second * end_to_end) / max(1, stored)
        roles = ", ".join(f"{role} {cpu / max(1, stored) * 1e6:.0f}" for role, cpu in cpu_by_role.items())
        print(f"server CPU: {server_cpu:.1f} s for collecting and storing {stored} events = {per_event * 1e6:.0f} us "
              f"per event ({roles}); {busy * 1e6:.0f} us without the {idle_per_second * 1000:.0f} ms/s the "
              f"servers spend idle (one fully available core: ~{1 / busy if busy else 0:,.0f} events/s end to end); "
              f"load average {load:.1f}")
        grouped = ", ".join(f"{requests_ / max(1, count):.1f}" for count, requests_ in appends)
        print(f"collector requests per bus append: {grouped} (each collector's, over the whole run)")
        print(f"load generator CPU: {load_cpu:.1f} s = {load_cpu / max(1, requests) * 1e6:.0f} us per request, "
              f"{load_cpu / max(1, accepted) * 1e6:.0f} us per accepted event ({load_cpu / load_seconds:.2f} cores "
              f"while the load ran)")
        if profilers:
            print(f"py-spy profiles (collapsed stacks): {args.profile_dir}/<role>.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=200)
    parser.add_argument("--processes", type=int, default=1, help="load-generating processes")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0, metavar="EVENTS_PER_S",
                        help="pace the browsers to offer this many events/s in all (default: each sends again as "
                             "soon as answered, which measures throughput; a latency percentile needs a set rate)")
    parser.add_argument("--bus", choices=["sql", "kafka"], default="sql")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers; default: start Tansu for the run")
    parser.add_argument("--database-url", help="tracking's database (default: SQLite in a temporary data dir)")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for the processor")
    parser.add_argument("--collectors", type=int, default=0,
                        help="run tracking alone: this many `serve tracking` processes and one `worker tracking`")
    parser.add_argument("--sqlite-inline", action="store_true",
                        help="with --collectors: SQLite statements on each process's event loop, not a thread")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the server processes, e.g. BOXOFFICE_TRACKING_CLIENT_BURST_EVENTS=2000")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="measure the servers' idle CPU this long")
    parser.add_argument("--py-spy", metavar="PATH", help="py-spy executable: profile each server process")
    parser.add_argument("--profile-dir", default="var/clickstream-profiles", help="where --py-spy writes")
    args = parser.parse_args()
    if args.seconds > 600 or args.browsers > 5000 or args.collectors > 8:
        parser.error("keep a run bounded: at most 600 s, 5000 browsers and 8 collectors")
    run(args)


if __name__ == "__main__":
    main()
