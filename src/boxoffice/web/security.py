"""Headers and cookies on every page: CSP and friends, the CSRF cookie, the session cookie.

A pure ASGI middleware, so it also covers static files and error pages. Pages put the visitor into
``request.state.visitor``; when their session changed (logged in, refreshed, logged out) the cookie is
written here, on the way out, whatever kind of response the page returned.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.web.domain import CSRF_COOKIE, SESSION_COOKIE, csrf_token_is_ours, new_csrf_token

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}
SESSION_MAX_AGE = 30 * 24 * 3600


def cookie_header(name: str, value: str, *, max_age: int, secure: bool) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    morsel["max-age"] = max_age
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, secret: bytes, secure: bool) -> None:
        self.app = app
        self.secret = secret
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        presented = _cookies(scope).get(CSRF_COOKIE)
        new_csrf = None if csrf_token_is_ours(self.secret, presented) else new_csrf_token(self.secret)
        state["csrf_token"] = new_csrf or presented
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if static:
                    headers["cache-control"] = "public, max-age=3600"
                else:
                    headers.setdefault("cache-control", "no-store")
                    if new_csrf:
                        headers.append("set-cookie", cookie_header(CSRF_COOKIE, new_csrf, max_age=SESSION_MAX_AGE,
                                                                   secure=self.secure))
                    visitor = state.get("visitor")
                    if visitor is not None and visitor.cookie_changed:
                        value = visitor.tokens.encode() if visitor.tokens else ""
                        max_age = SESSION_MAX_AGE if visitor.tokens else 0
                        headers.append("set-cookie", cookie_header(SESSION_COOKIE, value, max_age=max_age,
                                                                   secure=self.secure))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookies(scope: Scope) -> dict[str, str]:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return {}
            return {k: m.value for k, m in jar.items()}
    return {}
