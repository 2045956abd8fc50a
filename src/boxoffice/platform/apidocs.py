"""API docs that work offline: Swagger UI served from the installed package, and an index of every service.

FastAPI's default docs page loads Swagger UI from a CDN, so without internet it is blank. Each service
serves ``/api/<service>/docs`` itself, with Swagger UI's files from ``swagger-ui-bundle-v2`` (Swagger UI 5,
which reads OpenAPI 3.1) under ``/api/<service>/docs/assets/``: the gateway already sends every path under
``/api/<service>`` to that service, in one process and in a cluster alike. The page has no inline script
(a strict CSP allows it): ``swagger-init.js`` reads the spec's address from the page.

``docs_index_page`` is the gateway's ``/api/docs``: an HTML page linking every service's docs and spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from boxoffice.platform.problems import NotFound

INIT_SCRIPT = Path(__file__).parent / "swagger-init.js"
# Only what the page loads; the package also ships source maps and other bundles we do not serve.
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (Path(str(swagger_ui_path)) / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (Path(str(swagger_ui_path)) / "swagger-ui-bundle.js", "text/javascript"),
    "favicon-32x32.png": (Path(str(swagger_ui_path)) / "favicon-32x32.png", "image/png"),
    "swagger-init.js": (INIT_SCRIPT, "text/javascript"),
}
ASSET_CACHE = "public, max-age=86400"


def docs_router(service: str) -> APIRouter:
    """``/api/<service>/docs`` and the files it loads."""
    router = APIRouter(include_in_schema=False)
    base = f"/api/{service}"

    @router.get(f"{base}/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(swagger_page(f"boxoffice {service} API", f"{base}/openapi.json", f"{base}/docs/assets"))

    @router.get(base + "/docs/assets/{name}")
    async def asset(name: str) -> Response:
        found = ASSETS.get(name)
        if found is None:
            raise NotFound("No such file of the API docs.")
        path, media_type = found
        return FileResponse(path, media_type=media_type, headers={"cache-control": ASSET_CACHE})

    return router


def swagger_page(title: str, spec_url: str, assets: str) -> str:
    title, spec_url, assets = escape(title), escape(spec_url), escape(assets)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<p style="font-family:sans-serif;margin:12px 20px"><a href="/api/docs">All boxoffice APIs</a></p>
<div id="swagger-ui" data-spec-url="{spec_url}"><noscript>This page needs JavaScript; the spec itself is at
<a href="{spec_url}">{spec_url}</a>.</noscript></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""


def docs_index_page(docs: Mapping[str, str]) -> str:
    """The list of every service's docs (``{service: docs path}``), with the OpenAPI spec next to each."""
    rows = "\n".join(
        f'<li data-service="{escape(name)}"><a href="{escape(path)}">{escape(name)}</a>'
        f' <span>· <a href="{escape(path.removesuffix("/docs"))}/openapi.json">OpenAPI spec (JSON)</a></span></li>'
        for name, path in sorted(docs.items())
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>boxoffice API docs</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; }}
li {{ margin: .4rem 0; }} span {{ color: #5b6478; font-size: .9em; }} a {{ color: #1f5fd1; }}
</style>
</head>
<body>
<h1>boxoffice API docs</h1>
<p>Each service documents its own API; every page works offline. The contract is summarised in
<code>docs/</code> of the repository; errors are <code>application/problem+json</code> (RFC 9457).</p>
<ul>
{rows}
</ul>
</body>
</html>
"""
