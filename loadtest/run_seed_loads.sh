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
source loadtest/boxoffice_server.sh
use_or_start_boxoffice "${1:-}" "${PORT:-8951}" "$OUT/seed-server.log"
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
