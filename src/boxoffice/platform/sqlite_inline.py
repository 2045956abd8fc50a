"""SQLite for one process, without a thread per connection.

aiosqlite runs every statement on a thread of its own connection and hands the result back to the event
loop: two thread switches per statement. A booking transaction is a dozen statements, so under load most of
its time went to waiting for those threads to be scheduled, while the one writer connection of the database
stayed taken (measured: ~10 ms per hold, 120 holds/s, CPU mostly idle).

A SQLite statement on a small, cached database takes microseconds, less than the switch, so in one process
we run it right away on the loop's thread. ``InlineConnection`` looks like an ``aiosqlite.Connection`` to
SQLAlchemy's aiosqlite dialect (it is handed over through ``create_async_engine(async_creator=...)``), so
nothing else changes. The price: a statement that must wait for SQLite's lock blocks the loop. Within one
process that cannot happen (writers queue on a pool of one connection; WAL readers never wait), so this is
used by the single-process mode only; processes sharing a SQLite file use aiosqlite (``sqlite_inline=false``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


class _RunNow:
    """Stands in for aiosqlite's request queue: runs the function at once and settles its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite would
            future.set_exception(exc)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]  # SQLAlchemy sets None or a level

    @property
    def raw(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (``platform.hotsql`` runs the hot path's statements on it)."""
        return self._conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    def execute_now(self, sql: str) -> None:
        """Run a statement without parameters or rows (``BEGIN IMMEDIATE``) from synchronous code."""
        self._conn.execute(sql)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(path: str) -> Callable[[], Awaitable[InlineConnection]]:
    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from the garbage collector's thread.
        return InlineConnection(sqlite3.connect(path, isolation_level=None, check_same_thread=False))

    return connect
