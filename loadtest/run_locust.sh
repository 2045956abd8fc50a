#!/usr/bin/env bash
# The seed's load (~3,500 requests per minute) and ten times that, with Locust, headless, bounded in time.
#
#   loadtest/run_locust.sh                  starts `boxoffice run` on 127.0.0.1 in a temporary data dir
#   loadtest/run_locust.sh http://127.0.0.1:8000    uses a boxoffice that is already running (dev mode:
#                                           the playlist builders sign up through the dev mailbox)
#
# Settings (environment): RUN_TIME (default 60s per step), BASE_USERS (20; each paces itself at
# LOCUST_RATE_PER_USER=2.92 requests/s, so 20 users ~ 3,500 requests/min), OUT (CSV reports; var/loadtest).
# Prints requests/s, p50, p95, p99 and failures per step.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN_TIME=${RUN_TIME:-60s}
BASE_USERS=${BASE_USERS:-20}
OUT=${OUT:-var/loadtest}
mkdir -p "$OUT"

source loadtest/boxoffice_server.sh
use_or_start_boxoffice "${1:-}" "${PORT:-8950}" "$OUT/server.log"
if [[ -n "$SERVER_PID" ]]; then
  sleep 3  # the catalog's demo events reach music's line-ups over the bus
fi

run_step() {  # name users spawn-rate
  "$BIN/locust" -f loadtest/locustfile.py --headless --host "$HOST" -u "$2" -r "$3" --run-time "$RUN_TIME" \
    --stop-timeout 5 --only-summary --csv "$OUT/$1" --loglevel WARNING >"$OUT/$1.log" 2>&1 || true
  "$BIN/python" - "$OUT/$1_stats.csv" "$1" "$2" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
total = next(r for r in rows if r["Name"] == "Aggregated")
print(f"{sys.argv[2]:>5}: {sys.argv[3]} users, {int(total['Request Count'])} requests, "
      f"{float(total['Requests/s']):.1f} req/s ({60 * float(total['Requests/s']):.0f}/min), "
      f"p50 {total['50%']} ms, p95 {total['95%']} ms, p99 {total['99%']} ms, "
      f"failures {total['Failure Count']} ({100 * int(total['Failure Count']) / max(1, int(total['Request Count'])):.2f} %)")
PY
}

run_step base "$BASE_USERS" 10
run_step x10 "$((BASE_USERS * 10))" 50
