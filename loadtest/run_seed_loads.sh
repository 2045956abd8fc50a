#!/usr/bin/env bash
# The seeds' shop load tests with Locust, headless, bounded, against a boxoffice on 127.0.0.1:
#   1. seed 000/001's k6 ramp, 10 -> 150 buyers (loadtest/locust_ramp.py), thresholds p95 < 500 ms, errors < 1 %;
#   2. seed 003's fixed-count railway run (loadtest/locust_rail.py), RAIL_REQUESTS requests (100,000).
#
#   loadtest/run_seed_loads.sh                       starts `boxoffice run` (dev mode, demo data) in a temp dir
#   loadtest/run_seed_loads.sh http://127.0.0.1:8000 uses one that is already running in dev mode
#
# Settings (environment): RAMP_TIME_SCALE (1.0 = the seed's 15 minutes; 0.2 = 3 minutes), RAIL_REQUESTS
# (100000), RAIL_USERS (50), RAIL_MAX_TIME (30m, a bound), ONLY (ramp or rail), OUT (var/loadtest).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-var/loadtest}
mkdir -p "$OUT"
HOST=${1:-}
SERVER_PID=""
cleanup() { if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
if [[ -z "$HOST" ]]; then
  PORT=${PORT:-8951}
  DATA=$(mktemp -d)
  BOXOFFICE_PORT=$PORT BOXOFFICE_DATA_DIR="$DATA" BOXOFFICE_LOG_LEVEL=WARNING "$BIN/boxoffice" run >"$OUT/seed-server.log" 2>&1 &
  SERVER_PID=$!
  HOST="http://127.0.0.1:$PORT"
  for _ in $(seq 1 240); do
    if curl -fs "$HOST/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  curl -fs "$HOST/readyz" >/dev/null || { echo "boxoffice did not get ready; see $OUT/seed-server.log"; exit 1; }
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "${ONLY:-ramp}" == ramp ]]; then
  "$BIN/locust" -f loadtest/locust_ramp.py --headless --host "$HOST" --only-summary --stop-timeout 10 \
    --csv "$OUT/ramp" --loglevel WARNING 2>"$OUT/ramp.log" | grep "^seed ramp" || tail -5 "$OUT/ramp.log"
fi
if [[ "${ONLY:-rail}" == rail ]]; then
  RAIL_REQUESTS=${RAIL_REQUESTS:-100000} "$BIN/locust" -f loadtest/locust_rail.py --headless --host "$HOST" \
    -u "${RAIL_USERS:-50}" -r 10 --run-time "${RAIL_MAX_TIME:-30m}" --only-summary --stop-timeout 10 \
    --csv "$OUT/rail" --loglevel WARNING 2>"$OUT/rail.log" | grep "^seed rail" || tail -5 "$OUT/rail.log"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
