"""Structured JSON logs (structlog) with the request id of the request being served, and the access log."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _merge_contextvars(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``structlog.contextvars.merge_contextvars``, reading only structlog's own context variables.

    structlog's copies the whole context and looks at every variable in it, structlog's or not: a request's
    context holds dozens (asyncio, SQLAlchemy, OpenTelemetry, ours), so each log line (the access log: one
    per request) paid for all of them. The variables ``bind_contextvars`` makes are kept in one registry;
    only they are read, with the same result (an unbound or cleared one, ``...``, is left out).
    """
    registry: dict[str, ContextVar[Any]] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    if registry is None:  # a structlog without the registry: its own way
        return structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    for name, var in tuple(registry.items()):
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(name[_PREFIX_LENGTH:], value)
    return event_dict


_PREFIX_LENGTH = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)


def _render_json(event_dict: Any, **_: Any) -> str:
    return orjson.dumps(event_dict, default=repr, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC).decode()


QUIET = ("uvicorn.access", "aiokafka", "aiosqlite", "sqlalchemy.engine", "httpx", "httpcore", "fontTools")
"""Libraries whose INFO lines say nothing an operator needs (requests are in the access log and metrics)."""


def configure_logging(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    """One JSON object per line on stderr, from structlog and from the standard ``logging`` module alike.

    Libraries that log with ``logging`` (alembic, uvicorn, httpx, fpdf, aiokafka) go through structlog's
    ``ProcessorFormatter``, so their lines have the same fields as ours; a traceback is the one field
    ``exception``, never lines of its own. Warnings and an uncaught exception are logged the same way.
    """
    out = stream if stream is not None else sys.stderr
    shared: list[structlog.types.Processor] = [
        _merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_render_json) if json else structlog.dev.ConsoleRenderer()
    )
    tracebacks: list[structlog.types.Processor] = (
        [structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info] if json else []
    )
    structlog.configure(
        processors=[*shared, *tracebacks, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.excepthook = _log_uncaught


def configure_worker_logging(level: str = "INFO", json: bool = True) -> None:
    """``configure_logging`` for a process pool's ``initializer`` (positional arguments, importable by name):
    a spawned process starts with Python's default logging, whose warnings are plain text."""
    configure_logging(level, json=json)


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    structlog.get_logger("boxoffice").critical("uncaught exception", exc_info=(kind, exc, tb))


access_log = structlog.get_logger("boxoffice.access")

