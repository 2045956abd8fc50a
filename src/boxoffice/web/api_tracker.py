"""``GET /tracker.js``: the clickstream tracker every page loads (public, cacheable).

Its settings (``BOXOFFICE_WEB_TRACKER_*``) are written into the script as it is served, so pages need no
inline script (the CSP allows none) and a deployment can ask for consent without a rebuild.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.responses import Response

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)


class TrackerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOXOFFICE_WEB_TRACKER_", extra="ignore", frozen=True)

    require_consent: bool = False
    """Send nothing until the visitor turns on the footer's analytics switch (default: on unless turned off)."""
    collect_url: str = "/collect"


@functools.cache
def tracker_script() -> tuple[bytes, str]:
    settings = TrackerSettings()
    server = {"collect": settings.collect_url, "consent": "required" if settings.require_consent else "optional"}
    source = (HERE / "static" / "tracker.js").read_text()
    body = source.replace("/*SERVER*/{}", json.dumps(server), 1).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get("/tracker.js")
async def tracker(request: Request) -> Response:
    body, etag = tracker_script()
    headers = {"cache-control": "public, max-age=3600", "etag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
