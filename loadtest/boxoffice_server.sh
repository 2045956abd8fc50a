# Sourced by the load scripts: `use_or_start_boxoffice URL_OR_EMPTY PORT LOG` sets HOST to the given URL, or
# starts `boxoffice run` (dev mode, demo data) in a temporary data dir on 127.0.0.1:PORT, waits until it is
# ready, and stops it when the script exits. Needs BIN (the venv's bin folder).
SERVER_PID=""
_stop_boxoffice() { if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap _stop_boxoffice EXIT

use_or_start_boxoffice() {  # url-or-empty port log
  HOST=$1
  [[ -n "$HOST" ]] && return 0
  local port=$2 log=$3
  BOXOFFICE_PORT=$port BOXOFFICE_DATA_DIR="$(mktemp -d)" BOXOFFICE_LOG_LEVEL=WARNING "$BIN/boxoffice" run >"$log" 2>&1 &
  SERVER_PID=$!
  HOST="http://127.0.0.1:$port"
  for _ in $(seq 1 240); do
    if curl -fs "$HOST/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "boxoffice did not get ready; see $log"
  exit 1
}
