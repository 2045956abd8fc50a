"""Memory over a long sale: one embedded ``boxoffice run`` serves flash sale after flash sale for ``--minutes``,
and the resident memory of its process group is sampled all along.

    .venv/bin/python loadtest/soak.py --minutes 10 --buyers 64 --tickets 2000

Each round is ``loadtest/flash_sale.py`` against the same server (a new event of ``--tickets`` tickets, new
customers, hold -> order -> pay until sold out, then the work left behind). Memory is the sum of RSS over
every process of the server's group, every ``--sample-seconds``. Printed as JSON at the end: the rounds
(flows/s, oversold), RSS after the first round (warm: imports, caches and pools are filled by then), at the
end and at its peak, and the least-squares slope of RSS over the samples after warm-up in MB per minute:
"flat" means that slope times the run is small next to the warm figure. Only 127.0.0.1; bounded by
``--minutes`` (a round that is running when the time is up finishes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.server import boxoffice_run  # noqa: E402

ADMIN = ("admin@example.com", "admin-password-2026")


def group_rss(leader: int) -> int:
    """Bytes resident in the server's process and all its descendants."""
    try:
        root = psutil.Process(leader)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def slope_mb_per_minute(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [rss / 2**20 for _, rss in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--buyers", type=int, default=64)
    parser.add_argument("--tickets", type=int, default=2000, help="tickets per round's sale")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    args = parser.parse_args()

    env = {"BOXOFFICE_DEMO": "0", "BOXOFFICE_LOG_LEVEL": "WARNING",
           "BOXOFFICE_ADMIN_EMAIL": ADMIN[0], "BOXOFFICE_ADMIN_PASSWORD": ADMIN[1]}
    samples: list[tuple[float, int]] = []
    rounds: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="boxoffice-soak-") as data, boxoffice_run(Path(data), env=env) as server:
        started = time.monotonic()
        done = threading.Event()

        def sample() -> None:
            while not done.wait(args.sample_seconds):
                samples.append((time.monotonic() - started, group_rss(server.process.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        warm_at: float | None = None
        while time.monotonic() - started < args.minutes * 60:
            run = subprocess.run(
                [sys.executable, str(ROOT / "loadtest" / "flash_sale.py"), "--url", server.url,
                 "--buyers", str(args.buyers), "--tickets", str(args.tickets), "--pdf-samples", "0",
                 "--admin-email", ADMIN[0], "--admin-password", ADMIN[1], "--label", f"round {len(rounds) + 1}"],
                capture_output=True, text=True, check=False, timeout=900,
            )
            if run.returncode not in (0, 1) or not run.stdout.strip():
                print(run.stderr[-3000:], file=sys.stderr)
                return 2
            result = json.loads(run.stdout)
            rounds.append({k: result[k] for k in ("mode", "paid", "flows_per_second", "oversold", "errors")})
            print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
            if warm_at is None:
                warm_at = time.monotonic() - started
        done.set()
        sampler.join()
        samples.append((time.monotonic() - started, group_rss(server.process.pid)))

    warm = [s for s in samples if warm_at is not None and s[0] >= warm_at]
    mb = 2**20
    report = {
        "minutes": round(samples[-1][0] / 60, 1),
        "rounds": rounds,
        "flows": sum(int(str(r["paid"])) for r in rounds),
        "oversold": sum(int(str(r["oversold"])) for r in rounds),
        "rss_mb_warm": round(warm[0][1] / mb, 1) if warm else None,
        "rss_mb_end": round(samples[-1][1] / mb, 1),
        "rss_mb_peak": round(max(rss for _, rss in samples) / mb, 1),
        "rss_slope_mb_per_minute_after_warmup": round(slope_mb_per_minute(warm), 2),
        "samples": len(samples),
    }
    print(json.dumps(report, indent=2))
    return 1 if report["oversold"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
