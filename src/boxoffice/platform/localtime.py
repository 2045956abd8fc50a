"""Local times: every time is stored and sent as UTC; people read it in the zone of the place.

Events carry their venue's IANA time zone and stations theirs (catalog). Pages, PDFs and e-mails show the
time where it happens, with the zone's abbreviation ("Tue 01 Dec 2026, 16:55 IST"); the API keeps RFC 3339
UTC and adds the zone's name. Zone data comes from the system or, where it has none, the ``tzdata`` package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "UTC"
LONG = "%a %d %b %Y, %H:%M %Z"
"""``Tue 01 Dec 2026, 16:55 IST``: the form a ticket, a page and an e-mail print."""


def is_zone(name: str) -> bool:
    """True for an IANA zone name this machine knows ("Asia/Kolkata"); never raises."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name or "\\" in name:
        return False
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(name: str | None) -> ZoneInfo:
    """The zone ``name``; UTC for None or a name this machine does not know (never fails a page)."""
    return _zone(name) if name and is_zone(name) else _zone(DEFAULT_ZONE)


def parse_utc(value: object) -> datetime | None:
    """A datetime or an RFC 3339 string as an aware datetime; None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local(when: datetime, zone_name: str | None) -> datetime:
    return when.astimezone(zone(zone_name))


def format_local(value: object, zone_name: str | None, fmt: str = LONG) -> str:
    """``value`` (a datetime or RFC 3339 text) in ``zone_name``, e.g. "Tue 01 Dec 2026, 16:55 IST"; "-" when
    there is no time."""
    moment = parse_utc(value)
    if moment is None:
        return "-" if not value else str(value)
    return local(moment, zone_name).strftime(fmt)
