"""A read-only inspector of a service's own database, for admins: what Adminer does, inside the product.

Every service with a database mounts ``inspector_router`` under ``/api/<service>/db`` (``Service.create_app``
does it), so a service still reads only its own database; web's ``/admin/db`` shows them all on one page.

- ``GET  /api/<service>/db``                          tables with row counts, columns and indexes
- ``GET  /api/<service>/db/tables/{table}/rows``      rows, with a filter, a sort and paging
- ``POST /api/<service>/db/query {sql}``              one SELECT, at most ``ROW_CAP`` rows, ``TIMEOUT`` seconds

The console is read-only because the DATABASE says so, not because we looked at the SQL: SQLite is opened
with ``mode=ro`` and an authorizer that allows reading only (no ATTACH, no PRAGMA, no writes, even inside a
CTE); PostgreSQL runs the statement alone (a prepared statement holds one) in a ``READ ONLY`` transaction
with a ``statement_timeout``, so a write, DDL, or a function that writes fails there. The only statements
refused before they reach the database are those that would end or change that transaction (COMMIT, SET,
...). Run services under a database role that is not a superuser: a superuser may read server files from a
SELECT. Every console statement is audited before it runs: logged, and stored as a ``platform.db-query-run``
event on the ``admin-audit`` topic through the service's outbox.

Secrets are masked by column name (password and OTP hashes, tokens, key material; ``SECRET_COLUMN``): in
listings, in rows and in console results; on SQLite the authorizer also reads such columns as NULL. The mask
is a guard against showing secrets by accident, not a boundary against an admin who means to get round it.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import String, cast, column, func, inspect, select, table
from sqlalchemy.engine import Connection, make_url

from boxoffice.platform.auth import Principal, require_role
from boxoffice.platform.db import Database
from boxoffice.platform.problem_http import problem_responses
from boxoffice.platform.problems import BadRequest, NotFound, Problem, ServiceUnavailable
from boxoffice.platform.requests import RequestBody

log = structlog.get_logger("boxoffice.inspect")

ROW_CAP = 500
TIMEOUT = 3.0
AUDIT_TOPIC = "admin-audit"
MASK = "••••••"
SECRET_COLUMN = re.compile(
    r"password|passwd|otp|secret|token|private|credential|salt|hash|(^|_)key$|_key_|pem|jwk|signing",
    re.IGNORECASE,
)
# Statements that would end, nest or reconfigure the read-only transaction, or move data in or out of files.
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(commit|rollback|begin|start|end|abort|savepoint|release|set|reset|discard|copy|prepare|execute|"
    r"deallocate|listen|unlisten|notify|lock|vacuum|checkpoint|load)\b",
    re.IGNORECASE,
)

Admin = Annotated[Principal, Depends(require_role("admin"))]


class ConsoleRefused(BadRequest):
    slug = "query-refused"
    title = "Query refused"


class ColumnOut(BaseModel):
    name: str
    type: str
    nullable: bool
    primary_key: bool
    masked: bool


class IndexOut(BaseModel):
    name: str
    columns: list[str]
    unique: bool


class TableOut(BaseModel):
    name: str
    rows: int
    columns: list[ColumnOut]
    indexes: list[IndexOut]


class DatabaseOut(BaseModel):
    service: str
    dialect: str
    tables: list[TableOut]


class RowsOut(BaseModel):
    table: str
    columns: list[str]
    rows: list[list[str | None]]
    total: int
    offset: int
    limit: int


class QueryIn(RequestBody):
    sql: str = Field(min_length=1, max_length=10_000)


class QueryOut(BaseModel):
    columns: list[str]
    rows: list[list[str | None]]
    truncated: bool
    """True when the statement had more than ``ROW_CAP`` rows (the rest were not fetched)."""
    elapsed_ms: float


def is_secret(name: str) -> bool:
    return bool(SECRET_COLUMN.search(name))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return f"<{len(data)} bytes> {data[:32].hex()}"
    text = str(value)
    return text if len(text) <= 2000 else text[:2000] + "…"


def _masked(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[str | None]]:
    secret = [is_secret(name) for name in columns]
    return [
        [MASK if hidden else _text(value) for value, hidden in zip(row, secret, strict=False)]
        for row in rows
    ]


def _describe(sync: Connection) -> list[tuple[str, list[ColumnOut], list[IndexOut]]]:
    inspector = inspect(sync)
    described = []
    for name in sorted(inspector.get_table_names()):
        pk = set(inspector.get_pk_constraint(name).get("constrained_columns") or [])
        columns = [
            ColumnOut(name=c["name"], type=str(c["type"]), nullable=bool(c.get("nullable", True)),
                      primary_key=c["name"] in pk, masked=is_secret(c["name"]))
            for c in inspector.get_columns(name)
        ]
        indexes = [
            IndexOut(name=i["name"] or "", columns=[c for c in i["column_names"] if c], unique=bool(i["unique"]))
            for i in inspector.get_indexes(name)
        ]
        described.append((name, columns, indexes))
    return described


async def describe(db: Database) -> list[TableOut]:
    async with db.read() as conn:
        described = await conn.run_sync(_describe)
        tables = []
        for name, columns, indexes in described:
            rows = (await conn.execute(select(func.count()).select_from(table(name)))).scalar_one()
            tables.append(TableOut(name=name, rows=int(rows), columns=columns, indexes=indexes))
    return tables


async def browse(
    db: Database,
    name: str,
    *,
    where_column: str | None,
    where_value: str | None,
    sort: str | None,
    order: Literal["asc", "desc"],
    limit: int,
    offset: int,
) -> RowsOut:
    """Rows of one table; the table and columns must be ones the database has (names are never spliced)."""
    async with db.read() as conn:
        described = {t: c for t, c, _ in await conn.run_sync(_describe)}
        if name not in described:
            raise NotFound(f"There is no table {name!r} in this database.")
        names = [c.name for c in described[name]]
        for wanted in (where_column, sort):
            if wanted and wanted not in names:
                raise BadRequest(f"The table {name!r} has no column {wanted!r}.", slug="unknown-column")
        source = table(name, *[column(n) for n in names])
        clauses = []
        if where_column and where_value:
            escaped = where_value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(cast(source.c[where_column], String).like(f"%{escaped}%", escape="\\"))
        stmt = select(*source.c).where(*clauses).limit(limit).offset(offset)
        if sort:
            stmt = stmt.order_by(source.c[sort].desc() if order == "desc" else source.c[sort].asc())
        rows = (await conn.execute(stmt)).all()
        total = (await conn.execute(select(func.count()).select_from(source).where(*clauses))).scalar_one()
    return RowsOut(table=name, columns=names, rows=_masked(names, rows), total=int(total), offset=offset, limit=limit)


async def run_console(db: Database, sql: str, *, row_cap: int = ROW_CAP, timeout: float = TIMEOUT) -> QueryOut:
    if _TRANSACTION_CONTROL.match(sql):
        raise ConsoleRefused("The console runs one read-only statement; transaction control and SET are not allowed.")
    started = time.perf_counter()
    if db.is_sqlite:
        path = make_url(db.url).database or ""
        columns, rows, truncated = await asyncio.to_thread(_sqlite_console, path, sql, row_cap, timeout)
    else:
        columns, rows, truncated = await _postgres_console(db, sql, row_cap, timeout)
    return QueryOut(columns=columns, rows=_masked(columns, rows), truncated=truncated,
                    elapsed_ms=round((time.perf_counter() - started) * 1000, 2))


_SQLITE_READS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action not in _SQLITE_READS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_READ and arg2 and is_secret(arg2):
        return sqlite3.SQLITE_IGNORE  # the column reads as NULL
    return sqlite3.SQLITE_OK


def _sqlite_console(path: str, sql: str, row_cap: int, timeout: float) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    try:
        conn.set_authorizer(_sqlite_authorizer)
        deadline = time.monotonic() + timeout
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = conn.execute(sql)
            rows = cursor.fetchmany(row_cap + 1)
        except sqlite3.Error as exc:
            if "interrupted" in str(exc):
                raise ConsoleRefused(f"The statement ran longer than {timeout:g} s and was stopped.") from None
            raise ConsoleRefused(f"The database refused the statement: {exc}") from None
        columns = [d[0] for d in cursor.description or ()]
        return columns, rows[:row_cap], len(rows) > row_cap
    finally:
        conn.close()


async def _postgres_console(
    db: Database, sql: str, row_cap: int, timeout: float
) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    import asyncpg  # type: ignore[import-untyped]

    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            async with driver.transaction(readonly=True):
                await driver.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                statement = await driver.prepare(sql)
                columns = [a.name for a in statement.get_attributes()]
                rows: list[Any] = []
                if columns:
                    cursor = await statement.cursor()
                    rows = await cursor.fetch(row_cap + 1)
                else:
                    await statement.fetch()  # a statement without result columns (it will mostly be refused)
        except asyncpg.QueryCanceledError:
            raise ConsoleRefused(f"The statement ran longer than {timeout:g} s and was stopped.") from None
        except asyncpg.PostgresError as exc:
            raise ConsoleRefused(f"The database refused the statement: {exc}") from None
        except asyncpg.InterfaceError as exc:
            raise ConsoleRefused(f"The statement cannot run here: {exc}") from None
    return columns, [tuple(r) for r in rows[:row_cap]], len(rows) > row_cap


async def audit_query(db: Database, *, service: str, actor: Principal, sql: str) -> None:
    """Log and store who ran what, before it runs; a statement that cannot be audited is not run."""
    log.info("database console query", service=service, actor=actor.id, email=actor.email, sql=sql)
    try:
        async with db.uow() as uow:
            uow.publish(AUDIT_TOPIC, "platform.db-query-run", key=service,
                        data={"service": service, "actor": actor.id, "email": actor.email, "sql": sql})
            await uow.commit()
    except Exception as exc:
        log.error("could not audit a console query; refusing it", service=service, error=repr(exc))
        raise ServiceUnavailable("The query could not be audited, so it was not run.") from exc


def _database(request: Request) -> tuple[str, Database]:
    service = request.app.state.service
    return str(service.name), service.db


def inspector_router(service: str) -> APIRouter:
    """The routes of ``service``'s inspector (admins only), mounted by ``Service.create_app``."""
    router = APIRouter(prefix=f"/api/{service}/db", tags=["database inspector"])

    @router.get("", responses=problem_responses(401, 403))
    async def database(request: Request, _: Admin) -> DatabaseOut:
        name, db = _database(request)
        return DatabaseOut(service=name, dialect=db.dialect, tables=await describe(db))

    @router.get("/tables/{name}/rows", responses=problem_responses(400, 401, 403, 404))
    async def rows(
        request: Request,
        name: str,
        user: Admin,
        where_column: str | None = None,
        where_value: str | None = None,
        sort: str | None = None,
        order: Literal["asc", "desc"] = "asc",
        limit: Annotated[int, Query(ge=1, le=ROW_CAP)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> RowsOut:
        _service, db = _database(request)
        return await browse(db, name, where_column=where_column, where_value=where_value, sort=sort,
                            order=order, limit=limit, offset=offset)

    @router.post("/query", responses=problem_responses(400, 401, 403, 503))
    async def query(request: Request, body: QueryIn, user: Admin) -> QueryOut:
        name, db = _database(request)
        await audit_query(db, service=name, actor=user, sql=body.sql)
        try:
            return await run_console(db, body.sql)
        except Problem:
            raise
        except Exception as exc:  # a driver error we did not foresee is still the statement's fault
            raise ConsoleRefused(f"The statement failed: {type(exc).__name__}") from None

    return router

