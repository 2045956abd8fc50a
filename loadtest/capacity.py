"""The capacity model: CPU milliseconds per complete purchase for each tier of ``boxoffice run --processes``,
and what that predicts for N cores per tier.

    .venv/bin/python loadtest/capacity.py --buyers 64 --tickets 2000
    .venv/bin/python loadtest/capacity.py --buyers 64 --tickets 2000 --replicas booking=2,payments=2

It starts a PostgreSQL and a Tansu broker for the run (one database per service, the kafka bus), then
``boxoffice run --processes`` (``--replicas`` passed on), and runs ``loadtest/flash_sale.py`` against it.
The CPU time of every process is read from /proc (psutil) when the sale starts and once the work it left
behind is done (relay, consumers, ticket PDFs), and summed per tier:

- ``gateway``: the ``run --processes`` process that routes every request;
- ``<service> api`` / ``<service> worker``: each service's ``serve`` processes and its ``worker``;
- ``postgresql``: the server and its backends (exited backends are in the server's children's times);
- ``broker``: Tansu.

Before the sale the processes are left idle for ``--idle-seconds`` (10): what each tier burns doing nothing
(pollers, heartbeats) is reported in ms per second and taken out of its per-flow figure (net of idle), so
that the model does not depend on how fast the sale went. A process's live children (the PDF renderers)
count with it.

Per tier: ms of CPU per flow, its share, and the flows/s one core of it sustains (1000 / ms). A tier of one
Python process (an API without replicas, the gateway) is limited to one core whatever the machine has; a
tier with N processes on N free cores sustains N times that. The run ends with the prediction for this machine
(its cores shared by every tier: (cores * 1000 - idle ms/s) / net ms per flow) next to what the sale
measured. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtest"))

from compare import ADMIN, server  # noqa: E402

from boxoffice.cli import SERVICES  # noqa: E402
from tests.harness.net import free_port_range  # noqa: E402
from tests.harness.postgres import create_database, postgres_server  # noqa: E402
from tests.harness.tansu import tansu_broker  # noqa: E402


def listener(port: int) -> psutil.Process:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu(process: psutil.Process, *, reaped_children: bool) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    if reaped_children:  # the exited children's times, and the live ones' (a PDF renderer pool)
        total += times.children_user + times.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                live = child.cpu_times()
                total += live.user + live.system
    return total


def tiers(gateway: psutil.Process, database: psutil.Process, broker: psutil.Process) -> dict[str, float]:
    """CPU seconds so far, per tier."""
    found: dict[str, float] = {"gateway": cpu(gateway, reaped_children=False)}
    for child in gateway.children():
        with contextlib.suppress(psutil.NoSuchProcess):
            command = child.cmdline()
            role, name = (command[3], command[4]) if len(command) > 4 else ("other", "")
            tier = f"{name} {'api' if role == 'serve' else role}"
            found[tier] = found.get(tier, 0.0) + cpu(child, reaped_children=True)
    found["postgresql"] = cpu(database, reaped_children=True)
    found["broker"] = cpu(broker, reaped_children=True)
    return found


def activity(admin_url: str, databases: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Per service: (transactions, connections opened) so far, as PostgreSQL counts them (pg_stat_database:
    commits and rollbacks, sessions). A backend reports at the end of a transaction, at most once a second."""

    async def read() -> dict[str, tuple[int, int]]:
        conn = await asyncpg.connect(admin_url)
        try:
            rows = await conn.fetch("SELECT datname, xact_commit + xact_rollback, sessions FROM pg_stat_database")
        finally:
            await conn.close()
        by_name = {row[0]: (int(row[1]), int(row[2])) for row in rows}
        return {service: by_name.get(name, (0, 0)) for service, name in databases.items()}

    return asyncio.run(read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=64)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--replicas", default="", help="passed to run --processes (N or SERVICE=N,...)")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle measurement before the sale")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="capacity-")))
        admin_url = stack.enter_context(postgres_server())
        broker = stack.enter_context(tansu_broker())
        urls = {s: create_database(admin_url, prefix=s) for s in SERVICES}
        databases = {s: url.rsplit("/", 1)[1] for s, url in urls.items()}
        env = {f"BOXOFFICE_{s.upper()}_DATABASE_URL": url for s, url in urls.items()}
        env |= {"BOXOFFICE_BUS": "kafka", "BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "BOXOFFICE_SERVICES_BASE_PORT": str(free_port_range(len(SERVICES)))}
        extra = ["--replicas", args.replicas] if args.replicas else []
        url, pid = stack.enter_context(server(env, ["--processes", *extra], data_dir))
        gateway = psutil.Process(pid)
        database = listener(int(admin_url.rsplit(":", 1)[1].split("/")[0]))
        kafka = listener(int(broker.bootstrap.rsplit(":", 1)[1]))
        time.sleep(5)  # start-up settles (demo off: nothing to seed)
        idle_from = tiers(gateway, database, kafka)
        time.sleep(args.idle_seconds)
        idle_to = tiers(gateway, database, kafka)
        idle = {t: (idle_to[t] - idle_from.get(t, 0.0)) * 1000 / args.idle_seconds for t in idle_to}  # ms/s
        command = [sys.executable, str(ROOT / "loadtest" / "flash_sale.py"), "--url", url,
                   "--buyers", str(args.buyers), "--tickets", str(args.tickets),
                   "--admin-email", ADMIN[0], "--admin-password", ADMIN[1], "--label", "capacity"]
        sale = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert sale.stderr is not None
        before: dict[str, float] | None = None
        started = time.monotonic()
        for line in sale.stderr:  # registration is set-up: the clock starts with the sale
            if line.startswith("the sale starts"):
                before, started = tiers(gateway, database, kafka), time.monotonic()
                break
        pg_before = activity(admin_url, databases)
        out, err = sale.communicate(timeout=args.timeout)
        after, elapsed = tiers(gateway, database, kafka), time.monotonic() - started
        time.sleep(1.5)  # the backends' last reports
        pg_after = activity(admin_url, databases)
        if before is None or sale.returncode not in (0, 1):
            print(err[-3000:], file=sys.stderr)
            return 2
        result = json.loads(out[out.index("{"):])

    flows = max(1, int(result["paid"]))
    used = {t: (after[t] - before.get(t, 0.0)) * 1000 for t in after}  # ms during the sale and its tail
    per_flow = {t: ms / flows for t, ms in used.items()}
    net = {t: max(0.0, ms - idle.get(t, 0.0) * elapsed) / flows for t, ms in used.items()}
    total, total_net, total_idle = sum(per_flow.values()), sum(net.values()), sum(idle.values())
    cores = os.cpu_count() or 1
    print(f"\n{flows} flows at {result['flows_per_second']} flows/s, {args.buyers} buyers, replicas "
          f"{args.replicas or 1}; oversold {result['oversold']}; hold p99 {result['hold_ms']['p99']} ms; "
          f"{elapsed:.0f} s from the sale's start to its work done\n")
    print(f"{'tier':<22} {'cpu ms/flow':>11} {'net of idle':>11} {'share':>6} {'idle ms/s':>9} "
          f"{'flows/s per core':>17}")
    for tier, ms in sorted(net.items(), key=lambda item: -item[1]):
        if per_flow[tier] < 0.05:
            continue
        rate = f"{1000 / ms:>17.0f}" if ms > 0 else f"{'-':>17}"
        print(f"{tier:<22} {per_flow[tier]:>11.2f} {ms:>11.2f} {ms / total_net:>6.0%} "
              f"{idle.get(tier, 0.0):>9.1f} {rate}")
    print(f"{'total':<22} {total:>11.2f} {total_net:>11.2f} {'':>6} {total_idle:>9.1f}")
    pg = {s: (pg_after[s][0] - pg_before[s][0], pg_after[s][1] - pg_before[s][1]) for s in databases}
    print("\nPostgreSQL, per flow, during the sale and its tail (the idle pollers' share included):")
    print("  " + ", ".join(f"{s} {xacts / flows:.1f} transactions, {opened / flows:.2f} connections opened"
                           for s, (xacts, opened) in sorted(pg.items(), key=lambda item: -item[1][0])
                           if xacts / flows >= 0.05 or opened))
    predicted = (cores * 1000 - total_idle) / total_net
    print(f"\nthis machine ({cores} cores shared by every tier): predicted {predicted:.0f} flows/s if CPU-bound "
          f"((cores x 1000 - idle ms/s) / net ms per flow); measured {result['flows_per_second']}")
    print(json.dumps({"flows": flows, "flows_per_second": result["flows_per_second"], "replicas": args.replicas,
                      "seconds": round(elapsed, 1), "cpu_ms_per_flow": {t: round(ms, 2) for t, ms in per_flow.items()},
                      "net_ms_per_flow": {t: round(ms, 2) for t, ms in net.items()},
                      "idle_ms_per_second": {t: round(ms, 1) for t, ms in idle.items()},
                      "postgresql_per_flow": {s: {"transactions": round(x / flows, 2), "connections_opened":
                                                  round(o / flows, 3)} for s, (x, o) in pg.items()}}))
    return 1 if result["oversold"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
