"""Every paginated list of every service refuses a crafted cursor with a 400 problem, on SQLite and PostgreSQL.

Cursors are opaque (``platform.pagination``): a cursor the API did not give out must never reach a query.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from boxoffice.cli import SERVICES
from boxoffice.platform.pagination import encode_cursor
from boxoffice.platform.settings import Settings
from tests.harness.app import Running, running
from tests.harness.booking import token_for

pytestmark = pytest.mark.timeout(180)

LISTS = (
    ("/api/orders", "customer"),
    ("/api/events", None),
    ("/api/tickets", "customer"),
    ("/api/artists", None),  # sorted by name: a text key (a name may look like a date)
    ("/api/artists?q=rock", None),
    ("/api/tracks", None),  # by title
    ("/api/tracks?q=love", None),
    ("/api/playlists", "customer"),
    ("/api/tracking/events", "admin"),
    ("/api/analytics/sales?event_id=e-1", "admin"),
)
SERVED = ("identity", "catalog", "booking", "payments", "tickets", "music", "tracking", "analytics")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


UUID = "0190f1c2-8a7b-7c3d-9e4f-5a6b7c8d9e0f"
BAD_CURSORS = (
    b64("2020-01-01|x"),  # the one from the report: a naive timestamp and an id that is no UUID
    "garbage!",  # not base64url
    "a",  # impossible base64 length
    b64("\xff\xfe"),  # not UTF-8 once decoded... as latin-1 bytes it is valid UTF-8; still not JSON
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # bytes that are not UTF-8
    b64("{}"),
    b64("[]"),
    b64(json.dumps(["2020-01-01T00:00:00+00:00", UUID, "extra"])),
    b64(json.dumps(["2020-01-01T00:00:00+00:00", "x"])),  # no UUID
    b64(json.dumps(["2020-01-01T00:00:00+00:00", UUID.upper()])),  # not a canonical UUID
    b64(json.dumps([1, UUID])),
    b64(json.dumps([None, None])),
    b64("[NaN, \"" + UUID + "\"]"),
    encode_cursor("x" * 600, UUID),  # a key longer than any sort key
    "A" * 5000,  # longer than any cursor
)

BAD_TIMES = (
    b64(json.dumps(["2020-01-01", UUID])),  # no time zone
    b64(json.dumps(["2020-13-01T00:00:00+00:00", UUID])),  # no such month
)
TEXT_KEYED = ("/api/artists", "/api/tracks")


@pytest.fixture
async def app(tmp_path: Path, db_factory: Callable[[str], str]) -> AsyncIterator[Running]:
    configs = {name: SERVICES[name].settings_class(database_url=db_factory(name)) for name in SERVED}
    async with running(Settings(data_dir=tmp_path, demo=False), SERVED, configs=configs, workers=False) as app:
        yield app


async def test_every_list_answers_a_crafted_cursor_with_a_400_problem(app: Running) -> None:
    headers = {"customer": token_for(app), "admin": token_for(app, roles=("customer", "admin")), None: {}}
    wrong: list[tuple[str, str, int, str]] = []
    for path, role in LISTS:
        sep = "&" if "?" in path else "?"
        first = await app.client.get(path, headers=headers[role])
        assert first.status_code == 200, (path, first.text)
        for cursor in BAD_CURSORS + (() if path in TEXT_KEYED else BAD_TIMES):
            response = await app.client.get(f"{path}{sep}cursor={cursor}", headers=headers[role])
            is_problem = response.headers["content-type"].startswith("application/problem+json")
            if not (response.status_code == 400 and is_problem and response.json()["type"] == "/problems/invalid-cursor"):
                wrong.append((path, cursor[:40], response.status_code, response.text[:200]))
    assert wrong == []
