#!/usr/bin/env bash
# The seed's load (~3,500 requests per minute) and ten times that, with Locust, headless, bounded in time.
#
#   loadtest/run_locust.sh                  starts `boxoffice run` on 127.0.0.1 in a temporary data dir
#   loadtest/run_locust.sh http://127.0.0.1:8000    uses a boxoffice that is already running (dev mode:
#                                           the playlist builders sign up through the dev mailbox)
#
# Settings (environment): RUN_TIME (default 60s per step), BASE_USERS (20; each paces itself at
# LOCUST_RATE_PER_USER=2.92 requests/s, so 20 users ~ 3,500 requests/min), OUT (CSV reports; var/loadtest),
# BOXOFFICE_API_PROCESSES (passed on to the `boxoffice run` it starts: N API processes on the one port).
# Prints per step requests/s, p50, p95, p99 and failures, the load average before and after, Locust's own CPU
# and (when it started the server) the server's CPU milliseconds per request: every process of the `run`,
# read from /proc, which a busy machine does not inflate the way it inflates the latencies.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN_TIME=${RUN_TIME:-60s}
BASE_USERS=${BASE_USERS:-20}
OUT=${OUT:-var/loadtest}
mkdir -p "$OUT"

source loadtest/boxoffice_server.sh
use_or_start_boxoffice "${1:-}" "${PORT:-8950}" "$OUT/server.log"
# Wait (at most 3 minutes) until the demo is in place: the catalog's events have reached music's line-ups over
# the bus and (a server started here) its CPU has settled below a quarter of a core over 5 s once the demo's
# work is done, so the first step measures browsing, not the server's start-up.
"$BIN/python" - "$HOST" "$SERVER_PID" <<'PY'
import sys, time, httpx, psutil
deadline = time.monotonic() + 180

def cpu(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(t.user + t.system for t in (p.cpu_times() for p in [root, *root.children(recursive=True)]))

with httpx.Client(base_url=sys.argv[1], timeout=30) as client:
    while True:
        try:
            events = client.get("/api/events", params={"limit": 100}).json()["items"]
            musical = [e["id"] for e in events if e["category"] in ("concert", "festival")]
            if musical and all(client.get(f"/api/lineups/{e}").status_code == 200 for e in musical):
                break
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            sys.exit("the demo line-ups did not appear within 3 minutes")
        time.sleep(1)
while sys.argv[2] and time.monotonic() < deadline:
    before = cpu(int(sys.argv[2]))
    time.sleep(5)
    if cpu(int(sys.argv[2])) - before < 0.25 * 5:
        break
PY

server_cpu() {  # CPU seconds (user + system) of the server and every process under it; empty: not ours
  [[ -z "$SERVER_PID" ]] && return 0
  "$BIN/python" - "$SERVER_PID" <<'PY'
import sys, psutil
root = psutil.Process(int(sys.argv[1]))
total = 0.0
for process in [root, *root.children(recursive=True)]:
    try:
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    except psutil.NoSuchProcess:
        pass
print(f"{total:.2f}")
PY
}

run_step() {  # name users spawn-rate
  local load_before cpu_before cpu_after
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  cpu_before=$(server_cpu)
  /usr/bin/time -f "%U %S" -o "$OUT/$1.locust-cpu" \
    "$BIN/locust" -f loadtest/locustfile.py --headless --host "$HOST" -u "$2" -r "$3" --run-time "$RUN_TIME" \
    --stop-timeout 5 --only-summary --csv "$OUT/$1" --loglevel WARNING >"$OUT/$1.log" 2>&1 || true
  cpu_after=$(server_cpu)
  "$BIN/python" - "$OUT/$1_stats.csv" "$1" "$2" "$load_before" "$(cut -d' ' -f1 /proc/loadavg)" \
    "$(tail -1 "$OUT/$1.locust-cpu")" "$cpu_before" "$cpu_after" <<'PY'
import csv, sys
stats, name, users, load_before, load_after, locust_cpu, cpu_before, cpu_after = sys.argv[1:]
rows = list(csv.DictReader(open(stats)))
total = next(r for r in rows if r["Name"] == "Aggregated")
count, failures = int(total["Request Count"]), int(total["Failure Count"])
print(f"{name:>5}: {users} users, {count} requests, "
      f"{float(total['Requests/s']):.1f} req/s ({60 * float(total['Requests/s']):.0f}/min), "
      f"p50 {total['50%']} ms, p95 {total['95%']} ms, p99 {total['99%']} ms, "
      f"failures {failures} ({100 * failures / max(1, count):.2f} %)")
locust = sum(float(v) for v in locust_cpu.split())
line = f"       load average {load_before} -> {load_after}; Locust CPU {locust:.1f} s"
if cpu_before and cpu_after:
    server = float(cpu_after) - float(cpu_before)
    line += f"; server CPU {server:.1f} s = {1000 * server / max(1, count):.1f} ms per request"
print(line)
PY
}

run_step base "$BASE_USERS" 10
run_step x10 "$((BASE_USERS * 10))" 50
