"""Loopback helpers for the test harness."""

from __future__ import annotations

import os
import random
import socket
import time

_handed_out: set[int] = set()


def _worker() -> int | None:
    """This pytest-xdist worker's number, or None outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER")
    return int(name.removeprefix("gw") or 0) if name else None


def free_port() -> int:
    """A free loopback port for a server a test starts.

    Under pytest-xdist each worker takes ports from its own stretch below the kernel's ephemeral range, and
    never hands out one twice: otherwise two workers' servers could be given the same port between this check
    and their bind, and a test would talk to (or pause) the other worker's server.
    """
    worker = _worker()
    if worker is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    start = 12000 + (worker % 8) * 1000
    for port in random.sample(range(start, start + 1000), 1000):
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {start}-{start + 999}")


def wait_for_port(port: int, *, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def free_port_range(count: int) -> int:
    """A first port such that ``count`` consecutive loopback ports are free (for ``run --processes``).

    Each pytest-xdist worker searches its own stretch of ports, so two workers never pick the same range
    between this check and their servers binding it.
    """
    start = 21000 + ((_worker() or 0) % 8) * 1400
    for base in range(start, start + 1400 - count, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")
