"""Opaque pagination cursors, one format for every list of every service.

A cursor holds the sort key of the last item of a page and that item's id, as unpadded base64url of a
JSON pair: ``encode_cursor(order.created_at, order.id)``. Clients treat it as opaque; the server checks
everything in it before it reaches a query, so a crafted cursor is a 400 ``invalid-cursor`` problem and
never a 500 (a naive timestamp, for one, used to fail only in the database driver).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Literal, TypeVar

from boxoffice.platform.problems import BadRequest

Key = TypeVar("Key", datetime, str, float)
IdKind = Literal["uuid", "none"]
"""What the id half holds: a UUID (in its canonical lower-case form), or nothing (the key alone is unique)."""

MAX_KEY_LENGTH = 500
MAX_CURSOR_LENGTH = 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidCursor(BadRequest):
    slug, title = "invalid-cursor", "Invalid cursor"

    def __init__(self, detail: str = "The cursor is not one this API gave out; start from the first page.") -> None:
        super().__init__(detail)


def encode_cursor(key: datetime | str | float, item_id: str = "") -> str:
    """The cursor for the page after the item with sort key ``key`` and id ``item_id``."""
    value = key.astimezone(UTC).isoformat() if isinstance(key, datetime) else key
    raw = json.dumps([value, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, key: type[Key], *, ids: IdKind = "uuid") -> tuple[Key, str]:
    """The (key, id) a cursor from ``encode_cursor`` holds; ``InvalidCursor`` for anything else."""
    raw_key, item_id = _pair(cursor)
    value = _key(raw_key, key)
    if not isinstance(value, key):
        raise InvalidCursor()
    return value, _item_id(item_id, ids)


def encode_id_cursor(item_id: str) -> str:
    """The cursor after the item ``item_id`` of a list sorted by id alone."""
    return encode_cursor(item_id)


def decode_id_cursor(cursor: str) -> str:
    item_id, _ = decode_cursor(cursor, str, ids="none")
    return _item_id(item_id, "uuid")


def _pair(cursor: str) -> tuple[object, object]:
    if len(cursor) > MAX_CURSOR_LENGTH or not _BASE64URL.fullmatch(cursor) or len(cursor) % 4 == 1:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        pair = json.loads(raw.decode(), parse_constant=_no_constant)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if not isinstance(pair, list) or len(pair) != 2:
        raise InvalidCursor()
    return pair[0], pair[1]


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a sort key")


def _key(value: object, kind: type[datetime | str | float]) -> datetime | str | float:
    if kind is datetime:
        if not isinstance(value, str) or len(value) > 64:
            raise InvalidCursor()
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidCursor() from None
        if when.tzinfo is None:
            raise InvalidCursor()
        return when.astimezone(UTC)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidCursor()
        return float(value)
    if not isinstance(value, str) or len(value) > MAX_KEY_LENGTH:
        raise InvalidCursor()
    return value


def _item_id(value: object, ids: IdKind) -> str:
    if not isinstance(value, str):
        raise InvalidCursor()
    if ids == "none":
        if value:
            raise InvalidCursor()
        return value
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidCursor() from None
    if str(parsed) != value:
        raise InvalidCursor()
    return value
