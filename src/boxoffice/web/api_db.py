"""``/admin/db``: every service's database on one page, read-only (admins).

Web keeps no data: each section comes from that service's own inspector (``/api/<service>/db``, see
``platform.inspect``), called as the visitor, so the service checks the admin role and audits the console.
The services asked are ``BOXOFFICE_WEB_DB_SERVICES``; one that is not deployed is left out.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import APIRouter, Request
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.responses import Response

from boxoffice.web import domain
from boxoffice.web.handlers import ApiProblem, Visitor
from boxoffice.web.pages import VisitorDep, form, render, text

router = APIRouter(include_in_schema=False)
PAGE = 50


class DbPageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOXOFFICE_WEB_", extra="ignore", frozen=True)

    db_services: list[str] = [
        "identity", "catalog", "booking", "payments", "tickets", "tracking", "waitingroom", "analytics", "music"
    ]


@functools.cache
def db_services() -> list[str]:
    return list(DbPageSettings().db_services)


def _require_admin(visitor: Visitor) -> None:
    visitor.require_user()
    if not visitor.is_admin:
        raise ApiProblem(domain.ProblemInfo(403, "forbidden", "Forbidden", "This page is for operators."))


async def _describe(visitor: Visitor, service: str) -> dict[str, Any] | None:
    """The service's tables, an ``{"error": ...}`` when it failed, None when it is not deployed."""
    try:
        described: dict[str, Any] = await visitor.call(service, "GET", f"/api/{service}/db")
        return described
    except LookupError:
        return None
    except ApiProblem as exc:
        if exc.status == 404:
            return None
        if exc.status in (401, 403):
            raise
        return {"service": service, "error": exc.message, "tables": []}


@router.get("/admin/db")
async def databases(request: Request, visitor: VisitorDep) -> Response:
    _require_admin(visitor)
    found = await asyncio.gather(*(_describe(visitor, name) for name in db_services()))
    services = [item for item in found if item is not None]
    return render(request, "admin_db.html", "admin-db", services=services, result=None, sql="", chosen=None)


@router.post("/admin/db/query")
async def run_query(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    _require_admin(visitor)
    service, sql = text(data, "service"), text(data, "sql")
    result: dict[str, Any] | None = None
    error: str | None = None
    status = 200
    if service not in db_services():
        error, status = "Choose one of the services.", 422
    elif not sql:
        error, status = "Write a SELECT statement to run.", 422
    else:
        try:
            result = await visitor.call(service, "POST", f"/api/{service}/db/query", json={"sql": sql})
        except ApiProblem as exc:
            if exc.status in (401, 403):
                raise
            error, status = exc.message, (exc.status if exc.status < 500 else 503)
    found = await asyncio.gather(*(_describe(visitor, name) for name in db_services()))
    services = [item for item in found if item is not None]
    return render(request, "admin_db.html", "admin-db", status=status, services=services, result=result,
                  sql=sql, chosen=service, error=error)


@router.get("/admin/db/{service}/{table}")
async def table_rows(request: Request, service: str, table: str, visitor: VisitorDep) -> Response:
    _require_admin(visitor)
    if service not in db_services():
        raise ApiProblem(domain.ProblemInfo(404, "not-found", "Not found", "There is no such service here."))
    query = request.query_params
    try:
        offset = max(0, int(query.get("offset", "0")))
    except ValueError:
        offset = 0
    params = {
        "where_column": query.get("where_column") or None,
        "where_value": query.get("where_value") or None,
        "sort": query.get("sort") or None,
        "order": "desc" if query.get("order") == "desc" else "asc",
        "limit": PAGE,
        "offset": offset,
    }
    described = await visitor.call(service, "GET", f"/api/{service}/db")
    columns = next((t["columns"] for t in described["tables"] if t["name"] == table), None)
    if columns is None:
        raise ApiProblem(domain.ProblemInfo(404, "not-found", "Not found", f"{service} has no table {table}."))
    rows = await visitor.call(service, "GET", f"/api/{service}/db/tables/{table}/rows", params=params)
    return render(request, "admin_db_table.html", "admin-db-table", service=service, table=table, rows=rows,
                  columns=columns, params=params, page_size=PAGE)
