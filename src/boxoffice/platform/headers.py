"""Headers every service's responses carry, and a last line of defence for unexpected errors.

``SecurityHeadersMiddleware``: ``X-Content-Type-Options: nosniff`` on every response (a JSON body must
never be sniffed into HTML), and in production ``Strict-Transport-Security`` (browsers then refuse plain
HTTP for the site). Pages add their own CSP and frame rules on top (web).

``UnexpectedErrorMiddleware`` sits innermost, so that the answer to an unexpected exception passes
through every other middleware (request id, metrics, web's security headers) like any other response.
Starlette would otherwise answer it from its outermost ``ServerErrorMiddleware``, past all of them. It asks
the app's own handler for ``Exception`` (problem+json for APIs, web's HTML error page) for the answer.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=63072000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if self.production:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            handler = getattr(scope.get("app"), "exception_handlers", {}).get(Exception)
            if started or handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
