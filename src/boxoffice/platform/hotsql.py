"""The hot path's statements, run straight on sqlite3 in embedded mode.

A statement through SQLAlchemy's async engine costs 100-270 µs of CPU (a greenlet per call, the compiled
cache's key, an execution context, result processing); the same statement on sqlite3 costs a few. A flash
sale's hold, order and payment run about 45 statements, so that overhead was most of a flow's CPU.

``run(conn, STATEMENT, params)`` takes a SQLAlchemy Core statement built ONCE (a module constant with
``bindparam`` s, no per-call literals) and:

- on an embedded SQLite connection (``platform.sqlite_inline``, the one-process mode), compiles it once for
  the dialect (per set of inserted columns), and then binds the parameters through the columns' own type
  processors (UTC datetimes, JSON), runs it on the connection's sqlite3 handle and converts the result
  columns with their processors: what SQLAlchemy would do, without its per-call machinery;
- anywhere else (PostgreSQL, SQLite shared between processes), runs it through SQLAlchemy as before; and
  also in embedded mode while spans are exported (``BOXOFFICE_OTEL_ENDPOINT``): SQLAlchemy's engine events
  make each statement's span, so a purchase's trace shows its SQL in every mode.

Either way the answer is a ``Rows`` (rows with attribute access, and the rowcount). Statements SQLite's
fast path cannot take as they are (expanding ``IN`` lists, Python-side column defaults) go through
SQLAlchemy too, so a statement is never run differently in meaning, only more cheaply. Database errors are
SQLAlchemy's (``IntegrityError`` ...) on both paths. The statements are counted in
``boxoffice_db_statements_total`` like every other.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from prometheus_client import Counter
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from boxoffice.platform import tracing
from boxoffice.platform.sqlite_inline import InlineConnection

Params = Mapping[str, Any]

_counters: WeakKeyDictionary[Engine, Counter] = WeakKeyDictionary()


def count_on(engine: Engine, counter: Counter) -> None:
    """Count this engine's fast statements in ``counter`` (``platform.db`` registers each SQLite engine)."""
    _counters[engine] = counter


class Rows:
    """A statement's answer: its rows (attribute access by column name) and the rows it changed."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> Sequence[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise (NoResultFound if not self._rows else MultipleResultsFound)("expected exactly one row")
        return self._rows[0]

    def scalar(self) -> Any | None:
        return self._rows[0][0] if self._rows else None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the bind parameters in positional order
    defaults: Mapping[str, Any]  # values bound into the statement itself (``status == 'active'``)
    binders: Mapping[str, Callable[[Any], Any]]
    row: Callable[..., Any] | None  # builds a result row; None for statements without rows
    readers: tuple[Callable[[Any], Any] | None, ...]


_UNSUPPORTED = object()
_plans: dict[tuple[int, type[Dialect], tuple[str, ...]], _Plan | object] = {}


def _plan(stmt: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | object:
    cache_key = (id(stmt), type(dialect), keys)
    if (found := _plans.get(cache_key)) is not None:
        return found
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    plan: _Plan | object = _UNSUPPORTED
    if (
        compiled.positiontup is not None
        and not compiled.post_compile_params
        and not compiled.literal_execute_params
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and not compiled.returning
    ):
        columns = compiled._result_columns
        names = tuple(compiled.positiontup)
        try:
            row = namedtuple("Row", [c.keyname for c in columns]) if columns else None
        except ValueError:  # a name twice, or not a name: SQLAlchemy's rows deal with those
            row = None
        binders = {name: f for name, f in compiled._bind_processors.items() if callable(f)}
        if (row is not None or not columns) and len(binders) == len(compiled._bind_processors):
            plan = _Plan(
                sql=compiled.string,
                names=names,
                defaults={name: compiled.binds[name].effective_value for name in names if name not in keys},
                binders=binders,
                row=row,
                readers=tuple(c.type._cached_result_processor(dialect, None) for c in columns),
            )
    if len(_plans) < _MAX_PLANS:  # statements built per call (a misuse) would fill it: they just stay slow
        _plans[cache_key] = plan
        _statements.append(stmt)  # kept alive: the cache is keyed by the statement's id
    return plan


_MAX_PLANS = 2000
_statements: list[ClauseElement] = []


def _sqlite(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The embedded SQLite connection under ``conn``, or None when this is not the one-process mode."""
    driver = conn.sync_connection.connection.driver_connection if conn.sync_connection is not None else None
    return driver.raw if isinstance(driver, InlineConnection) else None


def _bind(plan: _Plan, params: Params) -> list[Any]:
    values = []
    binders = plan.binders
    for name in plan.names:
        value = params[name] if name in params else plan.defaults[name]
        if (binder := binders.get(name)) is not None:
            value = binder(value)
        values.append(value)
    return values


async def run(conn: AsyncConnection, stmt: ClauseElement, params: Params | Sequence[Params]) -> Rows:
    """Run ``stmt`` (built once, at import) with ``params`` (a list of them: executemany) on ``conn``."""
    batch: Sequence[Params] = [params] if isinstance(params, Mapping) else params
    if not batch:
        return Rows((), 0)
    first = batch[0]
    raw = None if tracing.exporting() else _sqlite(conn)
    plan = _plan(stmt, conn.dialect, tuple(first)) if raw is not None else _UNSUPPORTED
    if not isinstance(plan, _Plan) or raw is None:
        result = await conn.execute(stmt, params)  # type: ignore[call-overload]
        return Rows(result.all() if result.returns_rows else (), result.rowcount)
    counter = _counters.get(conn.sync_engine)
    try:
        if len(batch) > 1:
            cursor = raw.executemany(plan.sql, [_bind(plan, p) for p in batch])
        else:
            cursor = raw.execute(plan.sql, _bind(plan, first))
    except sqlite3.Error as exc:
        raise DBAPIError.instance(plan.sql, None, exc, sqlite3.Error) from exc
    finally:
        if counter is not None:
            counter.inc()
    if plan.row is None:
        return Rows((), cursor.rowcount)
    readers, build = plan.readers, plan.row
    if any(readers):
        rows = [
            build(*[value if read is None else read(value) for read, value in zip(readers, row, strict=True)])
            for row in cursor.fetchall()
        ]
    else:
        rows = [build(*row) for row in cursor.fetchall()]
    return Rows(rows, cursor.rowcount)
