"""The plumbing every page shares: templates, the visitor, forms with their CSRF check, redirects."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from boxoffice.platform.app import provide
from boxoffice.web import domain
from boxoffice.web.deps import WebDeps
from boxoffice.web.domain import CSRF_COOKIE, SESSION_COOKIE, Tokens
from boxoffice.web.handlers import Visitor

HERE = Path(__file__).parent


class CsrfRejected(Exception):
    """A form arrived without our token: not sent by one of our pages (or the page is very old)."""


@functools.cache
def templates() -> Jinja2Templates:
    env = Jinja2Templates(directory=HERE / "templates")
    env.env.filters.update(
        money=domain.format_money,
        when=domain.format_when,
        clock=domain.format_clock,
        day=domain.format_day,
    )
    env.env.globals.update(duration=domain.format_duration, categories=domain.CATEGORIES)
    return env


DepsDep = Annotated[WebDeps, Depends(provide(WebDeps))]


def web_deps(request: Request) -> WebDeps:
    """The dependencies, where a page helper has only the request (error pages, ``render``)."""
    deps = getattr(request.app.state.service, "deps", None)
    if not isinstance(deps, WebDeps):
        raise TypeError("this app is not web")
    return deps


async def visitor(request: Request, deps: DepsDep) -> Visitor:
    """The visitor behind this request; the security middleware writes their cookie back if it changed."""
    cached = getattr(request.state, "visitor", None)
    if isinstance(cached, Visitor):
        return cached
    current = Visitor(deps, Tokens.decode(request.cookies.get(SESSION_COOKIE)))
    request.state.visitor = current
    await current.identify()
    return current


VisitorDep = Annotated[Visitor, Depends(visitor)]


def render(request: Request, template: str, page: str, *, status: int = 200, **context: Any) -> Response:
    """A page: ``page`` is its ``data-page`` name (tests and the clickstream tracker rely on it)."""
    who: Visitor | None = getattr(request.state, "visitor", None)
    context.update(
        page=page,
        visitor=who,
        user=who.user if who else None,
        csrf_token=request.state.csrf_token,
        dev_mode=web_deps(request).dev_mode,
        htmx=request.headers.get("hx-request") == "true",
    )
    return templates().TemplateResponse(request, template, context, status_code=status)


def redirect(url: str, request: Request | None = None) -> Response:
    """303 See Other; for an htmx request a full-page ``HX-Redirect`` instead."""
    if request is not None and request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def with_query(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


async def form(request: Request) -> FormData:
    """The submitted form, once its CSRF token and origin checked out."""
    data = await request.form()
    submitted = data.get("csrf_token") or request.headers.get("x-csrf-token")
    cookie = request.cookies.get(CSRF_COOKIE)
    secret = web_deps(request).secret
    host = request.headers.get("host")
    if not domain.same_origin(request.headers.get("origin"), host):
        raise CsrfRejected
    if not domain.csrf_accepts(secret, cookie, submitted if isinstance(submitted, str) else None):
        raise CsrfRejected
    return data


def text(data: FormData, name: str, default: str = "") -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else default


def number(data: FormData, name: str, default: int = 0) -> int:
    try:
        return int(text(data, name))
    except ValueError:
        return default
