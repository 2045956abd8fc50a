"""``boxoffice run`` as a real process on a free loopback port, for end-to-end tests over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness.net import free_port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def boxoffice_run(
    data_dir: Path, *, env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), timeout: float = 60.0
) -> Iterator[Server]:
    port = free_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")},
        "BOXOFFICE_PORT": str(port),
        "BOXOFFICE_DATA_DIR": str(data_dir),
        "BOXOFFICE_API_PROCESSES": "1",  # one process unless a test asks for more (``--api-processes N``)
        **(env or {}),
    }
    log = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "boxoffice.cli", "run", *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"boxoffice run exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"boxoffice run not ready after {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(url, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
