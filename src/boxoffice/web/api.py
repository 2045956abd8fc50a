"""The page routes of web, and how a page answers when something goes wrong.

Paths (ARCHITECTURE.md section 5): ``/``, ``/events``, ``/events/{id}``, ``/trains``, ``/trains/runs/{id}``,
``/checkout/{hold_id}``, ``/orders``, ``/orders/{id}``, ``/account/register|verify|login``,
``/admin/events/new``, ``/admin/checkin``, ``/dev/mailbox``. Errors are pages, not problem+json: a service's
problem becomes a friendly message, a missing login a redirect to the login form.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from boxoffice.platform.problem_http import problem_response
from boxoffice.platform.problems import NotFound
from boxoffice.web import api_account, api_admin, api_checkout, api_shop
from boxoffice.web.clients import ApiProblem
from boxoffice.web.handlers import LoginRequired
from boxoffice.web.pages import CsrfRejected, redirect, render, with_query

log = structlog.get_logger("boxoffice.web")

router = APIRouter(include_in_schema=False)
for part in (api_shop.router, api_checkout.router, api_account.router, api_admin.router):
    router.include_router(part)


def _back_here(request: Request) -> str:
    """Where to return after logging in: this page, or (for a form post) the page the form was on."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.headers.get("host"):
        return "/"
    return (referer.path or "/") + (f"?{referer.query}" if referer.query else "")


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", "error", status=status, title=title, message=message)


def install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        return redirect(with_query("/account/login", next=_back_here(request)), request)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _: CsrfRejected) -> Response:
        message = "This form was open too long or did not come from boxoffice. Please go back, reload and retry."
        return _error_page(request, 403, "Form expired", message)

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> Response:
        if exc.status == 401:
            return redirect(with_query("/account/login", next=_back_here(request)), request)
        titles = {403: "Not allowed", 404: "Not found", 503: "Briefly unavailable"}
        return _error_page(request, exc.status, titles.get(exc.status, "Something went wrong"), exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(("/api/", "/internal/")):
            # The gateway sends every unclaimed path here; an unknown API path still answers as an API.
            return problem_response(NotFound(f"No API at {request.url.path}."))
        if exc.status_code == 404:
            return _error_page(request, 404, "Page not found", "There is no page at this address.")
        return _error_page(request, exc.status_code, "Something went wrong", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("page failed", path=request.url.path, exc_info=exc)
        return _error_page(request, 500, "Something went wrong", "Something went wrong on our side. Please try again.")
