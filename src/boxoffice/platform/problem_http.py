"""Problems on the wire: problem+json responses and the FastAPI exception handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import fastapi.routing
import structlog
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from boxoffice.platform.jsonutil import dumps
from boxoffice.platform.problems import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    Problem,
    ServiceUnavailable,
    Unprocessable,
)

log = structlog.get_logger("boxoffice.problems")


def problem_response(problem: Problem) -> Response:
    return Response(
        dumps(problem.body()),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def _describe_validation_error(errors: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """Turn pydantic's errors into (slug, detail, invalid-params) a client can act on."""
    params = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        params.append({"name": ".".join(loc) or "body", "reason": str(error.get("msg", "invalid"))})
        if error.get("type") == "json_invalid":
            return "malformed-json", "The request body is not valid JSON.", params
    first = params[0] if params else {"name": "body", "reason": "invalid"}
    detail = f"{first['name']}: {first['reason']}"
    if len(params) > 1:
        detail += f" (and {len(params) - 1} more)"
    return "validation-error", detail, params


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        slug, detail, params = _describe_validation_error(list(exc.errors()))
        if slug == "malformed-json":
            return problem_response(BadRequest(detail, slug=slug, title="Malformed JSON"))
        return problem_response(
            Unprocessable(detail, slug=slug, title="Validation error", invalid_params=params)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        problem = Problem(
            str(exc.detail),
            slug={404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error"),
            title=titles.get(exc.status_code, "HTTP error"),
            headers=exc.headers,
        )
        problem.status = exc.status_code
        return problem_response(problem)

    @app.exception_handler(PoolTimeout)
    async def _overloaded(request: Request, exc: PoolTimeout) -> Response:
        # Every database connection stayed busy for the pool's whole timeout: overload, not a bug. Say so,
        # and when to retry, instead of a 500.
        log.warning("database connections exhausted", path=request.url.path)
        busy = ServiceUnavailable("The service is too busy right now. Please retry in a moment.", slug="overloaded",
                                  headers={"Retry-After": "2"})
        return problem_response(busy)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if not exc.connection_invalidated:
            return await _unexpected(request, exc)
        # The database connection was lost in the middle (PostgreSQL restarted, the backend was terminated):
        # the transaction rolled back, and the pool connects anew. Not a bug: a retry in a moment succeeds.
        log.warning("database connection lost", path=request.url.path, error=str(exc.orig))
        lost = ServiceUnavailable("The service lost its database connection. Please retry in a moment.",
                                  slug="database-unavailable", headers={"Retry-After": "1"})
        return problem_response(lost)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return problem_response(Problem("An unexpected error occurred; it has been logged."))


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every error of every service is answered (for OpenAPI)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None


_REASONS = {
    400: "Bad request",
    401: "Not signed in, or the token is invalid",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation error",
    429: "Too many requests",
    503: "A service it depends on is unavailable",
}


PROBLEM_SCHEMA_REF = "#/components/schemas/ProblemDocument"


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _REASONS.get(status, "Error"),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's errors: ``@router.post(..., responses=problem_responses(404, 409))``.

    No ``model`` on purpose: FastAPI would declare it under ``application/json`` as well. The app factory
    registers the ``ProblemDocument`` schema (``problem_openapi``).
    """
    return {status: _problem_response(status) for status in statuses}


F = TypeVar("F", bound=Callable[..., Any])


def raises(*statuses: int) -> Callable[[F], F]:
    """Declare the problems a FastAPI dependency may answer; every route that depends on it declares them.

        @raises(401)
        async def current_user(request: Request) -> Principal: ...
    """

    def mark(dependency: F) -> F:
        dependency.__problem_statuses__ = statuses  # type: ignore[attr-defined]
        return dependency

    return mark


def _dependency_statuses(dependant: Dependant) -> set[int]:
    found = set(getattr(dependant.call, "__problem_statuses__", ()))
    for sub in dependant.dependencies:
        found |= _dependency_statuses(sub)
    return found


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes as the OpenAPI generator sees them (with the prefix and dependencies of the
    routers they were included with). FastAPI >= 0.160 nests included routers instead of copying routes."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in iterate(app.routes) if iterate is not None else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with every error answered as problem+json (install as ``app.openapi``).

    - every 4xx/5xx response, FastAPI's own 422 included, is ``application/problem+json`` with the
      ``ProblemDocument`` schema, and nothing else; ``HTTPValidationError`` is gone;
    - a route declares what its dependencies may answer (``raises``): 401 for one needing a user, 403 for
      one needing a role, without each route repeating it; and one with a body the 400 (malformed JSON)
      and 413 (too large) that the platform answers for it.
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        statuses = _dependency_statuses(route.dependant)
        if route.body_field is not None:
            statuses |= {400, 413}  # a body that is not JSON (install_problem_handlers), or too large (limits)
        for method in route.methods or ():
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is not None:
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses):
                    responses.setdefault(str(status), _problem_response(status))
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in "45":
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}
                    if status == "422":
                        response["description"] = _REASONS[422]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ProblemDocument"] = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    for unused in ("HTTPValidationError", "ValidationError"):  # in this order: the first refers to the second
        definition = components.pop(unused, None)
        if definition is not None and f'"#/components/schemas/{unused}"' in dumps(schema).decode():
            components[unused] = definition  # a route of the service's own uses it
    app.openapi_schema = schema
    return schema

