"""Every line a boxoffice process writes is one JSON object; each request leaves one access-log line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx

from tests.harness.server import boxoffice_run


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}\n--- whole output ---\n{text[-4000:]}") from None
    return parsed


def test_boxoffice_run_writes_only_json_lines_and_one_access_line_per_request(tmp_path: Path) -> None:
    with boxoffice_run(tmp_path, env={"BOXOFFICE_DEMO": "0"}) as server:
        events = httpx.get(f"{server.url}/api/events", headers={"X-Request-ID": "req-events-1"}, timeout=10)
        hold = httpx.get(f"{server.url}/api/holds/h-123", timeout=10)
        malformed = httpx.post(
            f"{server.url}/api/holds", content=b"{", headers={"Content-Type": "application/json"}, timeout=10
        )
    assert events.status_code == 200 and hold.status_code == 401 and malformed.status_code in (400, 401)

    lines = json_lines(server.log.read_text())
    loggers = {line.get("logger", "") for line in lines}
    assert any(name.startswith("alembic") for name in loggers), loggers  # the migrations at start-up
    assert any(name.startswith("uvicorn") for name in loggers), loggers
    access = [line for line in lines if line["event"] == "request" and line["route"].startswith("/api/")]
    assert len(access) == 3, access
    by_route = {(line["method"], line["route"]): line for line in access}
    first = by_route[("GET", "/api/events")]
    assert first["service"] == "catalog" and first["status"] == 200 and first["request_id"] == "req-events-1"
    assert isinstance(first["duration_ms"], float | int) and first["duration_ms"] >= 0
    second = by_route[("GET", "/api/holds/{hold_id}")]  # the template, not the id
    assert second["service"] == "booking" and second["status"] == 401
    assert second["request_id"] == hold.headers["x-request-id"]
    assert by_route[("POST", "/api/holds")]["status"] == malformed.status_code


SCRIPT = textwrap.dedent(
    """
    import logging, warnings
    import structlog
    from boxoffice.platform.observability import configure_logging

    configure_logging("INFO")
    logging.getLogger("fpdf.output").warning("a warning from a library, %s", "formatted")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("alembic.runtime").exception("a library failed")
        structlog.get_logger("boxoffice.test").error("we failed", exc_info=True)
    warnings.warn("something is deprecated", DeprecationWarning, stacklevel=1)
    raise RuntimeError("the process dies")
    """
)


def test_stdlib_logs_warnings_and_tracebacks_are_single_json_lines() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = json_lines(done.stderr)
    events = {line["event"]: line for line in lines}
    library = events["a warning from a library, formatted"]
    assert library["level"] == "warning" and library["logger"] == "fpdf.output" and "timestamp" in library
    for failed in (events["a library failed"], events["we failed"]):
        assert failed["level"] == "error"
        assert failed["exception"].startswith("Traceback") and "ZeroDivisionError" in failed["exception"]
    assert any("something is deprecated" in line["event"] for line in lines)
    crash = events["uncaught exception"]
    assert crash["level"] == "critical" and "RuntimeError: the process dies" in crash["exception"]
