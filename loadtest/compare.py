"""The flash sale in each mode, side by side, on this machine, in one run (ratios beat absolute figures here).

    .venv/bin/python loadtest/compare.py --modes embedded,processes --tickets 2000 --buyers 64 --pgbench

- ``embedded``: ``boxoffice run`` (SQLite, the SQL bus), fresh data dir.
- ``cores``: ``boxoffice run --api-processes N --workers-apart`` (``--api-processes``, default 2): the same
  files and bus, the API served by N processes on one port and the workers in one more (N = 1: one API
  process and one worker process). Its statement counts are one API process's and the worker's only (each
  process counts its own), so that column undercounts there.
- ``processes``: ``boxoffice run --processes`` on a PostgreSQL started for the run (one database per service)
  and the bus chosen with ``--bus`` (``kafka``: a Tansu broker started for the run; ``sql``: the bus in
  PostgreSQL).
- ``--pgbench``: the database's own limit for the same booking path (``loadtest/pg-flow-limit.sql``
  run by pgbench with 64 clients on the same PostgreSQL), the reference ARCHITECTURE's target is set against.

``--buyers 16,64,256``: each mode once per count, each on a fresh server and data dir (the scaling curve:
how throughput and p99 hold up with more buyers than the server has capacity for).

Each mode runs ``loadtest/flash_sale.py`` against its own server on 127.0.0.1 and prints its JSON; a summary
table closes the run: flows/s, latencies, the server's CPU milliseconds per complete flow (every process
of the mode; the sale alone, then with the work it left behind) and SQL statements per flow by database
(``boxoffice_db_statements_total``; in ``processes`` mode the gateway's process sees none of the services',
so that column is empty there). Everything started here is stopped before the next mode starts.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boxoffice.cli import SERVICES  # noqa: E402
from tests.harness.net import free_port, free_port_range  # noqa: E402
from tests.harness.postgres import create_database, postgres_server  # noqa: E402
from tests.harness.tansu import tansu_broker  # noqa: E402

ADMIN = ("admin@example.com", "admin-password-2026")


@contextlib.contextmanager
def server(env: dict[str, str], args: list[str], data_dir: Path) -> Iterator[tuple[str, int]]:
    """The server's URL and its process group (every process it starts is in it)."""
    port = free_port()
    full = {
        **os.environ,
        "BOXOFFICE_PORT": str(port),
        "BOXOFFICE_DATA_DIR": str(data_dir),
        "BOXOFFICE_DEMO": "0",
        "BOXOFFICE_LOG_LEVEL": "WARNING",
        "BOXOFFICE_ADMIN_EMAIL": ADMIN[0],
        "BOXOFFICE_ADMIN_PASSWORD": ADMIN[1],
        **env,
    }
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "boxoffice.cli", "run", *args],
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {data_dir / 'server.log'}")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def flash_sale(where: tuple[str, int], args: argparse.Namespace, label: str, buyers: int) -> dict[str, object]:
    url, pid = where
    command = [
        sys.executable,
        str(ROOT / "loadtest" / "flash_sale.py"),
        "--url",
        url,
        "--buyers",
        str(buyers),
        "--tickets",
        str(args.tickets),
        "--admin-email",
        ADMIN[0],
        "--admin-password",
        ADMIN[1],
        "--label",
        label,
        "--server-pid",
        str(pid),
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    print(out.stdout, flush=True)
    if out.returncode not in (0, 1):
        print(out.stderr[-3000:], file=sys.stderr)
    result: dict[str, object] = json.loads(out.stdout[out.stdout.index("{") :])
    return result


def pgbench(admin_url: str, seconds: int) -> float:
    """tps of loadtest/pg-flow-limit.sql with 64 clients: flows per second PostgreSQL itself manages."""
    script = ROOT / "loadtest" / "pg-flow-limit.sql"
    setup = [line.removeprefix("--").strip() for line in script.read_text().splitlines() if line.startswith("--   ")]
    url = create_database(admin_url, prefix="pgbench").replace("+asyncpg", "")
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    subprocess.run([psql, url, "-q", "-c", " ".join(setup)], check=True, capture_output=True)
    bench = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))[-1]
    out = subprocess.run(
        [bench, "-n", "-c", "64", "-j", "2", "-T", str(seconds), "-f", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    return float(match.group(1)) if match else float("nan")


def run_mode(
    stack: contextlib.ExitStack,
    mode: str,
    args: argparse.Namespace,
    buyers: int,
    results: list[dict[str, object]],
    servers: dict[str, str],
) -> float | None:
    """One flash sale in ``mode`` on a fresh server and fresh databases; pgbench's limit when asked for
    (processes mode, once). ``servers``: the PostgreSQL and broker started for the run, started on first use."""
    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{mode}-")))
    if mode == "embedded":
        with server({}, ["--api-processes", "1"], data_dir) as where:
            results.append(flash_sale(where, args, "embedded (SQLite, sql bus)", buyers))
        return None
    if mode == "cores":
        with server({}, ["--api-processes", str(args.api_processes), "--workers-apart"], data_dir) as where:
            label = f"embedded, {args.api_processes} API process{'es' if args.api_processes > 1 else ''} + workers"
            results.append(flash_sale(where, args, label, buyers))
        return None
    if "postgres" not in servers:
        servers["postgres"] = stack.enter_context(postgres_server())
    admin_url = servers["postgres"]
    env = {f"BOXOFFICE_{s.upper()}_DATABASE_URL": create_database(admin_url, prefix=s) for s in SERVICES}
    if args.bus == "kafka":
        if "kafka" not in servers:
            servers["kafka"] = stack.enter_context(tansu_broker()).bootstrap
        env |= {"BOXOFFICE_BUS": "kafka", "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": servers["kafka"]}
    else:
        env |= {"BOXOFFICE_BUS_DATABASE_URL": create_database(admin_url, prefix="bus")}
    env["BOXOFFICE_SERVICES_BASE_PORT"] = str(free_port_range(len(SERVICES)))
    with server(env, ["--processes"], data_dir) as where:
        results.append(flash_sale(where, args, f"processes (PostgreSQL, {args.bus} bus)", buyers))
    return pgbench(admin_url, 15) if args.pgbench and "pgbench" not in servers else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="embedded,processes")
    parser.add_argument("--bus", choices=["kafka", "sql"], default="kafka", help="the bus of the processes mode")
    parser.add_argument("--buyers", default="64", help="concurrent buyers, or several: 16,64,256")
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--pgbench", action="store_true")
    parser.add_argument("--api-processes", type=int, default=2, help="the cores mode's API processes")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    limit = None
    servers: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for mode in args.modes.split(","):
            for buyers in [int(n) for n in str(args.buyers).split(",")]:
                found = run_mode(stack, mode, args, buyers, results, servers)
                if found is not None:
                    limit, servers["pgbench"] = found, "done"
    print(
        "\nmode                                   buyers  flows/s  hold p50/p99 ms   flow p50 ms   code p50/p99 ms"
        "   pdf p50/p99 ms  oversold  cpu ms/flow (sale/all)"
    )
    for r in results:
        hold, flow, code, pdf = r["hold_ms"], r["flow_ms"], r.get("code_visible_ms", {}), r["pdf_ready_ms"]
        print(
            f"{r['mode']:<38} {r['buyers']:>6}  {r['flows_per_second']:>7}"
            f"  {hold['p50']:>6}/{hold['p99']:<8}  {flow['p50']:>10}"  # type: ignore[index]
            f"   {code.get('p50')}/{code.get('p99')}"  # type: ignore[attr-defined]
            f"   {pdf['p50']}/{pdf['p99']}  {r['oversold']:>8}  {r['cpu_ms_per_flow']}/{r['cpu_ms_per_flow_all']}"  # type: ignore[index]
        )
    print("\nSQL statements per complete flow, by database (the sale / with the work it left behind)")
    for r in results:
        if str(r["mode"]).startswith("embedded, "):  # cores: /metrics answers from one of the processes
            print(f"{r['mode']:<38} {r['buyers']:>6}  not counted: each process keeps its own counters")
            continue
        sale, every = r["statements_per_flow"], r["statements_per_flow_all"]
        assert isinstance(sale, dict) and isinstance(every, dict)
        row = ", ".join(f"{db} {sale.get(db, 0)}/{n}" for db, n in every.items())
        print(f"{r['mode']:<38} {r['buyers']:>6}  total {sum(sale.values()):.1f}/{sum(every.values()):.1f}: {row}")
    modes = dict.fromkeys(str(r["mode"]) for r in results)
    for mode in modes:
        rates = [float(r["flows_per_second"]) for r in results if r["mode"] == mode]  # type: ignore[arg-type]
        if len(rates) > 1:
            print(f"\n{mode}: flows/s from {min(rates)} to {max(rates)} over the buyer counts "
                  f"(lowest / highest {min(rates) / max(rates):.2f})")
    if limit is not None:
        print(f"\nPostgreSQL's own limit for the booking path (pgbench, 64 clients): {limit:.0f} flows/s")


if __name__ == "__main__":
    main()
