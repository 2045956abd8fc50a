"""``boxoffice serve SERVICE --drain-seconds N`` on SIGTERM: /readyz answers 503 at once (the load balancer
takes the process out), requests are still served meanwhile, then the process stops after its lifespan's
shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from boxoffice.platform.migrate import upgrade
from tests.harness.net import free_port


def test_sigterm_makes_readyz_fail_while_requests_are_still_served(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")},
        "BOXOFFICE_DATA_DIR": str(tmp_path),
        "BOXOFFICE_DEMO": "0",
    }
    upgrade("identity", f"sqlite+aiosqlite:///{(tmp_path / 'identity.db').resolve()}")  # where serve looks
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "boxoffice.cli", "serve", "identity", "--port", str(port), "--drain-seconds", "3"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.1)

        process.send_signal(signal.SIGTERM)
        seen: list[tuple[int, int]] = []
        while process.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                keys = httpx.get(f"{url}/.well-known/jwks.json", timeout=2)  # a real request, still answered
                seen.append((ready.status_code, keys.status_code))
            except httpx.TransportError:
                break  # stopped accepting: the drain is over
            time.sleep(0.05)
        # uvicorn re-raises the signal it handled once it has shut down (the default disposition: -SIGTERM).
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert seen, "the process stopped without draining"
    assert all(ready == 503 for ready, _ in seen)  # from the first request after SIGTERM on
    assert all(keys == 200 for _, keys in seen)
    logged = (tmp_path / "serve.log").read_text()
    assert "draining before shutdown" in logged and "Traceback" not in logged
