"""A real PostgreSQL server for the tests, started on loopback in a temporary directory.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user (which Debian's
``postgresql`` package creates). Set ``BOXOFFICE_TEST_POSTGRES_URL`` (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``) to use a server you already run instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from tests.harness.net import free_port


def _bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: run 'make test' (it installs postgresql)")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields an admin URL ``postgresql://postgres@127.0.0.1:PORT/postgres``."""
    if url := os.environ.get("BOXOFFICE_TEST_POSTGRES_URL"):
        yield url
        return
    workdir = Path(tempfile.mkdtemp(prefix="boxoffice-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(
        _as_postgres([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
        "-c shared_buffers=128MB"
    )
    subprocess.run(
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(workdir / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        # Hundreds of test databases take a while to delete on a busy disk, and a session fixture's teardown
        # counts against the last test's timeout: delete them in the background.
        subprocess.Popen(["rm", "-rf", str(workdir)], start_new_session=True)


def create_database(admin_url: str, prefix: str = "t") -> str:
    """A fresh, empty database; returns its SQLAlchemy URL (asyncpg driver)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        for attempt in range(50):
            try:
                conn = await asyncpg.connect(admin_url)
                break
            except (OSError, asyncpg.CannotConnectNowError):
                if attempt == 49:
                    raise
                time.sleep(0.1)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    # In a thread of its own: callers may already be inside an event loop (async fixtures).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, create()).result()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"
