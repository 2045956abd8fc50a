"""The hot path's statements, run straight on sqlite3 in embedded mode.

A statement through SQLAlchemy's async engine costs 100-270 µs of CPU (a greenlet per call, the compiled
cache's key, an execution context, result processing); the same statement on sqlite3 costs a few. A flash
sale's hold, order and payment run about 45 statements, so that overhead was most of a flow's CPU.

``run(conn, STATEMENT, params)`` takes a SQLAlchemy Core statement built ONCE (a module constant with
``bindparam`` s, no per-call literals) and:

- on an embedded SQLite connection (``platform.sqlite_inline``: ``boxoffice run`` in every layout but
  ``--processes``), compiles it once for the dialect (per set of inserted columns), and then binds the
  parameters through the columns' own type processors (UTC datetimes, JSON), runs it on the connection's
  sqlite3 handle and converts the result columns with their processors: what SQLAlchemy would do, without
  its per-call machinery;
- on PostgreSQL through asyncpg, does the same on the asyncpg connection under SQLAlchemy's: the prepared
  statement from the connection's own cache (the one SQLAlchemy fills), the transaction begun as SQLAlchemy
  would begin it (lazily, at the first statement; none in autocommit), asyncpg's errors translated as
  SQLAlchemy's adapter translates them. Measured with ``py-spy --gil`` during a ``--processes`` sale, 29 %
  of booking's CPU and 17 % of payments' was SQLAlchemy's own code, against 7 % and 6 % for asyncpg;
- anywhere else (SQLite through aiosqlite's thread, ``BOXOFFICE_SQLITE_INLINE=0``), runs it through
  SQLAlchemy as before; and also while spans are exported (``BOXOFFICE_OTEL_ENDPOINT``): SQLAlchemy's engine
  events make each statement's span, so a purchase's trace shows its SQL in every mode.

The asyncpg path leans on a few attributes of SQLAlchemy's adapter that are not public (its transaction,
its statement cache, its error translation): the version is pinned in the lock file, and the integration
tests run every store on PostgreSQL.

Either way the answer is a ``Rows`` (rows with attribute access, and the rowcount). Statements the fast
paths cannot take as they are (expanding ``IN`` lists, Python-side column defaults, RETURNING) go through
SQLAlchemy too, so a statement is never run differently in meaning, only more cheaply. Database errors are
SQLAlchemy's (``IntegrityError`` ...) on every path. The statements are counted in
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
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Insert
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


@dataclass(slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the bind parameters in positional order
    defaults: Mapping[str, Any]  # values bound into the statement itself (``status == 'active'``)
    binders: Mapping[str, Callable[[Any], Any]]
    row: Callable[..., Any] | None  # builds a result row; None for statements without rows
    readers: tuple[Callable[[Any], Any] | None, ...] | None
    """The result columns' processors; on asyncpg None until the statement is first prepared: some depend on
    the column's type as PostgreSQL describes it (numeric or float)."""
    columns: tuple[Any, ...]  # the result columns (SQLAlchemy's)


_UNSUPPORTED = object()
_plans: dict[tuple[int, type[Dialect], tuple[str, ...]], _Plan | object] = {}


def _plan(stmt: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | object:
    cache_key = (id(stmt), type(dialect), keys)
    if (found := _plans.get(cache_key)) is not None:
        return found
    # An INSERT is compiled as for executemany: a ``Rows`` has no inserted key to give, so PostgreSQL's implicit
    # ``RETURNING id`` (for an autoincrement key) would fetch what nobody reads, and keep the statement slow.
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys), for_executemany=isinstance(stmt, Insert))
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
                readers=tuple(c.type._cached_result_processor(dialect, None) for c in columns)
                if dialect.name == "sqlite"
                else None,
                columns=tuple(columns),
            )
    if len(_plans) < _MAX_PLANS:  # statements built per call (a misuse) would fill it: they just stay slow
        _plans[cache_key] = plan
        _statements.append(stmt)  # kept alive: the cache is keyed by the statement's id
    return plan


_MAX_PLANS = 2000
_statements: list[ClauseElement] = []


def _driver(conn: AsyncConnection) -> tuple[Any, Any]:
    """(the DBAPI connection SQLAlchemy adapts, the driver's own connection) under ``conn``."""
    if conn.sync_connection is None:
        return None, None
    fairy = conn.sync_connection.connection
    return fairy.dbapi_connection, fairy.driver_connection


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
    adapted, driver = (None, None) if tracing.exporting() else _driver(conn)
    fast = isinstance(driver, InlineConnection) or isinstance(adapted, AsyncAdapt_asyncpg_connection)
    plan = _plan(stmt, conn.dialect, tuple(first)) if fast else _UNSUPPORTED
    if not isinstance(plan, _Plan):
        result = await conn.execute(stmt, params)  # type: ignore[call-overload]
        return Rows(result.all() if result.returns_rows else (), result.rowcount)
    counter = _counters.get(conn.sync_engine)
    if counter is not None:
        counter.inc()
    if isinstance(adapted, AsyncAdapt_asyncpg_connection):
        try:
            return await _run_asyncpg(adapted, conn.dialect, plan, batch)
        except DBAPIError as exc:
            if exc.connection_invalidated:  # as SQLAlchemy does: the pool never hands this connection out again
                await conn.invalidate(exc)
            raise
    assert isinstance(driver, InlineConnection)
    raw = driver.raw
    try:
        if len(batch) > 1:
            cursor = raw.executemany(plan.sql, [_bind(plan, p) for p in batch])
        else:
            cursor = raw.execute(plan.sql, _bind(plan, first))
    except sqlite3.Error as exc:
        raise DBAPIError.instance(plan.sql, None, exc, sqlite3.Error) from exc
    if plan.row is None:
        return Rows((), cursor.rowcount)
    return Rows(_rows(plan.row, plan.readers or (), cursor.fetchall()), cursor.rowcount)


async def run_text(conn: AsyncConnection, sql: str, params: Sequence[Any], *, many: bool = False) -> Rows:
    """SQL text with positional parameters (SQLite's ``?``), ``params`` a list of parameter tuples when
    ``many``: straight to sqlite3 on an embedded connection, ``exec_driver_sql`` through SQLAlchemy anywhere
    else (and while spans are exported). For the statements a caller keeps as SQLite text already (the SQL
    bus's): ``exec_driver_sql`` cost about 40 µs of CPU around each on the event loop, more than the statement."""
    _, driver = (None, None) if tracing.exporting() else _driver(conn)
    if not isinstance(driver, InlineConnection):
        result = await conn.exec_driver_sql(sql, list(params) if many else tuple(params))
        return Rows(result.all() if result.returns_rows else (), result.rowcount)
    counter = _counters.get(conn.sync_engine)
    if counter is not None:
        counter.inc()
    try:
        cursor = driver.raw.executemany(sql, params) if many else driver.raw.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else ()
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc
    return Rows(rows, cursor.rowcount)


def _rows(
    build: Callable[..., Any], readers: Sequence[Callable[[Any], Any] | None], fetched: Sequence[Any]
) -> list[Any]:
    if any(readers):
        return [
            build(*[value if read is None else read(value) for read, value in zip(readers, row, strict=True)])
            for row in fetched
        ]
    return [build(*row) for row in fetched]


async def _run_asyncpg(adapted: Any, dialect: Dialect, plan: _Plan, batch: Sequence[Params]) -> Rows:
    """What SQLAlchemy's asyncpg cursor does for one statement (``_prepare_and_execute``, ``_executemany``),
    without the engine's per-call machinery around it."""
    try:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()  # a no-op in autocommit (reads)
            if len(batch) > 1:
                await adapted._connection.executemany(plan.sql, [_bind(plan, p) for p in batch])
                return Rows((), -1)  # what SQLAlchemy's adapter reports for executemany
            prepared, attributes = await adapted._prepare(plan.sql, dialect._invalidate_schema_cache_asof)  # type: ignore[attr-defined]
            fetched = await prepared.fetch(*_bind(plan, batch[0]))
            status = prepared.get_statusmsg() or ""
    except Exception as error:
        raise _translated(adapted, dialect, plan.sql, error) from error
    verb, _, count = status.rpartition(" ")
    rowcount = int(count) if verb.split(" ", 1)[0] in _COUNTED and count.isdigit() else -1
    if plan.row is None:
        return Rows((), rowcount)
    if plan.readers is None:
        plan.readers = tuple(
            column.type._cached_result_processor(dialect, attribute.type.oid)
            for column, attribute in zip(plan.columns, attributes, strict=True)
        )
    return Rows(_rows(plan.row, plan.readers, fetched), rowcount)


_COUNTED = frozenset({"SELECT", "UPDATE", "DELETE", "INSERT"})


async def end(conn: AsyncConnection, *, commit: bool) -> bool:
    """PostgreSQL through asyncpg: COMMIT (or ROLLBACK) the transaction that ``run`` began on the asyncpg
    connection under ``conn``, as SQLAlchemy's adapter would, without the engine's greenlet around it. For a
    transaction SQLAlchemy does not know it has (only ``run`` used the connection); when it does
    (``conn.in_transaction()``), end it through SQLAlchemy. False when there was nothing to end here."""
    adapted, _ = _driver(conn)
    if not isinstance(adapted, AsyncAdapt_asyncpg_connection) or adapted._transaction is None:
        return False
    transaction = adapted._transaction
    try:
        await adapted._call_and_discard(transaction.commit if commit else transaction.rollback)
    except Exception as error:
        failed = _translated(adapted, conn.dialect, "COMMIT" if commit else "ROLLBACK", error)
        if isinstance(failed, DBAPIError) and failed.connection_invalidated:
            await conn.invalidate(failed)
        raise failed from error
    return True


def _translated(adapted: Any, dialect: Dialect, sql: str, error: Exception) -> BaseException:
    """asyncpg's ``error`` as SQLAlchemy would raise it: its adapter's DBAPI error, wrapped as the engine wraps
    it (``connection_invalidated`` when the connection is lost). Anything else is raised as it is."""
    try:
        adapted._handle_exception(error)  # raises the DBAPI error SQLAlchemy would have wrapped, or ``error``
    except dialect.loaded_dbapi.Error as translated:
        lost = dialect.is_disconnect(translated, adapted, None)
        return DBAPIError.instance(sql, None, translated, dialect.loaded_dbapi.Error, connection_invalidated=lost)
    raise AssertionError("SQLAlchemy's adapter did not raise")
