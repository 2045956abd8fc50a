"""Fault injection at a service's ingress, like Istio's HTTPFaultInjection: delays and aborts on purpose.

A rule names a service (or ``*``), optionally a method, and a path prefix; a request it matches is delayed by
``delay_ms`` with probability ``delay_percent`` and then answered with ``abort_status`` with probability
``abort_percent`` (a problem+json of type ``/problems/injected-fault``), instead of reaching the service. The
first matching rule applies. Every injected fault is counted in ``boxoffice_faults_injected_total``.

Where the rules live:

- One ``FaultRegistry`` per process (``registry()``), read at start from ``BOXOFFICE_FAULTS`` (a JSON list of
  rules, or ``{"rules": [...]}``). In embedded mode every service runs in this one process, so the admin API
  (``/api/admin/faults``, served by the gateway) changes what every service injects at once.
- In distributed mode each service process has its own registry. The gateway that serves the admin API
  pushes the whole rule set to every service it knows with ``PUT /internal/faults`` (the internal token), so
  one call reaches every process. A service process started later begins with ``BOXOFFICE_FAULTS``; push the
  rules again (any PUT) to include it. (In Kubernetes the same faults are Istio ``VirtualService`` rules, see
  ``deploy/istio/``, and no Python is involved.)

The middleware never faults its own control paths (``/internal/faults``), health, readiness and metrics, or
the signing keys that every token check needs, so an operator can always take a fault away again.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Literal

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from boxoffice.platform.internal import INTERNAL_HEADER, internal_token
from boxoffice.platform.problem_http import problem_response
from boxoffice.platform.problems import BadRequest, Forbidden, Problem, Unprocessable

INJECTED = Counter("boxoffice_faults_injected_total", "Faults injected at a service's ingress", ["service", "kind"])
EXEMPT = ("/healthz", "/readyz", "/metrics", "/internal/faults", "/.well-known/jwks.json", "/api/admin/faults")
Percent = Annotated[float, Field(ge=0, le=100)]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(pattern=r"^(\*|[a-z][a-z0-9-]{0,39})$", description="a service name, or * for all")
    method: Method | None = None
    path_prefix: str = Field(default="/", pattern=r"^/", max_length=300)
    delay_ms: int = Field(default=0, ge=0, le=60_000)
    delay_percent: Percent = 0
    abort_status: int | None = Field(default=None, ge=400, le=599)
    abort_percent: Percent = 0

    @model_validator(mode="after")
    def _does_something(self) -> FaultRule:
        if self.abort_percent > 0 and self.abort_status is None:
            raise ValueError("abort_percent needs an abort_status")
        if self.delay_percent > 0 and self.delay_ms == 0:
            raise ValueError("delay_percent needs a delay_ms")
        return self

    def matches(self, service: str, method: str, path: str) -> bool:
        return (
            self.service in ("*", service)
            and (self.method is None or self.method == method)
            and path.startswith(self.path_prefix)
        )


class FaultRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(max_length=100)


class FaultSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOXOFFICE_", extra="ignore", frozen=True)

    faults_file: Path | None = None
    """``BOXOFFICE_FAULTS_FILE``: share the rules with the other processes that name the same file."""
    faults: str | None = None
    """``BOXOFFICE_FAULTS``: the rules to start with, as JSON. Checked when read, so rules that cannot work
    stop start-up with the reason (the CLI's ``invalid setting``), not a traceback."""

    @field_validator("faults")
    @classmethod
    def _rules(cls, value: str | None) -> str | None:
        if value and value.strip():
            try:
                parse_rules(value)
            except ValueError as exc:
                raise ValueError(f"BOXOFFICE_FAULTS: {exc}") from None
        return value


_RULE_LIST = TypeAdapter(list[FaultRule])


def parse_rules(raw: str | bytes) -> list[FaultRule]:
    """Rules from JSON: a list of rules or ``{"rules": [...]}``; ``ValueError`` saying what is wrong."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    try:
        if text.lstrip().startswith("["):
            return _RULE_LIST.validate_json(text)
        return FaultRules.model_validate_json(text).rules
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)[:3]
        )
        raise ValueError(f"invalid fault rules: {reasons}") from None


SHARED_CHECK_SECONDS = 1.0
"""How often a registry with a ``file`` looks whether another process changed the rules there."""


class FaultRegistry:
    """The rules this process applies; replaced whole, read on every request (no lock: one reference swap).

    With a ``file`` (``BOXOFFICE_FAULTS_FILE``, which ``run --processes`` sets for all its processes) the rules
    are also shared through it: every change is written there (atomically), and at most once a second a
    request looks whether another process wrote new ones. That reaches the processes a push cannot address:
    the replicas of a service that share one port, and a replacement started during a rolling update.
    """

    def __init__(
        self, rules: Sequence[FaultRule] = (), *, file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules: tuple[FaultRule, ...] = tuple(rules)
        self.file = file
        self._clock = clock
        self._checked = -math.inf
        self._seen: tuple[int, int, int] | None = None

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        if self.file is not None and (now := self._clock()) - self._checked >= SHARED_CHECK_SECONDS:
            self._checked = now
            self._read()
        return self._rules

    def replace(self, rules: Sequence[FaultRule]) -> None:
        self._rules = tuple(rules)
        self._write()

    def clear(self) -> None:
        self.replace(())

    def share(self, file: Path) -> None:
        """Share this process's rules through ``file`` from now on (writing them there first)."""
        file.parent.mkdir(parents=True, exist_ok=True)
        self.file = file
        self._write()

    @staticmethod
    def _identity(stat: os.stat_result) -> tuple[int, int, int]:
        return stat.st_ino, stat.st_mtime_ns, stat.st_size  # every write is a new file (os.replace)

    def _read(self) -> None:
        assert self.file is not None
        try:
            seen = self._identity(self.file.stat())
            if seen == self._seen:
                return
            rules = parse_rules(self.file.read_bytes())
        except (OSError, ValueError):
            return  # not written yet, or half a write on a file system without atomic rename: next time
        self._seen, self._rules = seen, tuple(rules)

    def _write(self) -> None:
        if self.file is None:
            return
        temporary = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(rules_document(self._rules)))
        os.replace(temporary, self.file)
        self._seen, self._checked = self._identity(self.file.stat()), self._clock()

    def rule_for(self, service: str, method: str, path: str) -> FaultRule | None:
        return next((r for r in self.rules if r.matches(service, method, path)), None)


_registry: FaultRegistry | None = None


def registry() -> FaultRegistry:
    """This process's registry, made on first use from ``BOXOFFICE_FAULTS``."""
    global _registry
    if _registry is None:
        settings = FaultSettings()
        raw = settings.faults
        _registry = FaultRegistry(parse_rules(raw) if raw and raw.strip() else (), file=settings.faults_file)
    return _registry


def rules_document(rules: Sequence[FaultRule]) -> dict[str, object]:
    return {"rules": [r.model_dump(mode="json") for r in rules]}


class InjectedFault(Problem):
    slug, title = "injected-fault", "Injected fault"


def _chance(percent: float) -> bool:
    return percent > 0 and random.random() * 100 < percent  # noqa: S311 - a dice roll, not a secret


class FaultInjectionMiddleware:
    """Delays and aborts requests as this process's rules say; serves ``/internal/faults`` for the gateway."""

    def __init__(self, app: ASGIApp, *, service: str, secret: bytes, faults: FaultRegistry | None = None) -> None:
        self.app = app
        self.service = service
        self.token = internal_token(secret)
        self.faults = faults or registry()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not await self.intercept(scope, receive, send):
            await self.app(scope, receive, send)

    async def intercept(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Apply the rules to an HTTP request: True when it was answered here (``/internal/faults``, or an
        injected abort), False when it goes on to the service (after any injected delay)."""
        path: str = scope["path"]
        if path == "/internal/faults":
            await self._control(scope, receive, send)
            return True
        if not self.faults.rules or path.startswith(EXEMPT):
            return False
        rule = self.faults.rule_for(self.service, scope["method"], path)
        if rule is None:
            return False
        if _chance(rule.delay_percent):
            INJECTED.labels(self.service, "delay").inc()
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule.abort_status is not None and _chance(rule.abort_percent):
            INJECTED.labels(self.service, "abort").inc()
            problem = InjectedFault(f"{self.service} answered {rule.abort_status} on purpose (fault injection).")
            problem.status = rule.abort_status
            await problem_response(problem)(scope, receive, send)
            return True
        return False

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET|PUT|DELETE /internal/faults``: the gateway's push of the rule set (internal token only)."""
        presented = next((v.decode() for k, v in scope["headers"] if k == INTERNAL_HEADER.encode()), "")
        response: Response
        if not hmac.compare_digest(presented, self.token):
            response = problem_response(Forbidden("This endpoint is for boxoffice services only."))
        elif scope["method"] == "PUT":
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            try:
                self.faults.replace(parse_rules(body))
            except ValueError as exc:
                response = problem_response(Unprocessable(str(exc)))
            else:
                response = JSONResponse(rules_document(self.faults.rules))
        elif scope["method"] == "DELETE":
            self.faults.clear()
            response = Response(status_code=204)
        elif scope["method"] == "GET":
            response = JSONResponse(rules_document(self.faults.rules))
        else:
            response = problem_response(BadRequest("Use GET, PUT or DELETE."))
        await response(scope, receive, send)
