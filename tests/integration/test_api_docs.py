"""API docs work offline: every service serves Swagger UI from the package, and /api/docs lists them all."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from boxoffice.cli import SERVICES, Runtime
from boxoffice.platform.problems import PROBLEM_CONTENT_TYPE
from boxoffice.platform.settings import Settings


@pytest.mark.parametrize("name", ["catalog", "booking"])
async def test_a_service_docs_page_loads_only_files_the_service_serves(name: str, tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path), [name], run_workers=False)
    transport = httpx.ASGITransport(app=runtime.apps[name])
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        page = await client.get(f"/api/{name}/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        # Every script, stylesheet and icon is ours (no CDN), and no inline script (a strict CSP allows it).
        # (The one other link goes to the gateway's list of every service's docs.)
        loaded = [u for u in re.findall(r'(?:src|href)="([^"]+)"', page.text) if u != "/api/docs"]
        assert loaded and all(url.startswith(f"/api/{name}/") for url in loaded), loaded
        assert "<script>" not in page.text
        for url in loaded:
            answer = await client.get(url)
            assert answer.status_code == 200, url
        bundle = await client.get(f"/api/{name}/docs/assets/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert len(bundle.content) > 100_000 and b"SwaggerUIBundle" in bundle.content
        spec = re.search(r'data-spec-url="([^"]+)"', page.text)
        assert spec and (await client.get(spec.group(1))).json()["openapi"].startswith("3.1")
        # Only the files the page needs: nothing else of the package, no path tricks.
        for other in ("index.html", "swagger-ui.js.map", "..%2F..%2F__init__.py", "%2e%2e"):
            missing = await client.get(f"/api/{name}/docs/assets/{other}")
            assert missing.status_code == 404, other
            assert missing.headers["content-type"] == PROBLEM_CONTENT_TYPE


async def test_the_docs_index_is_a_page_linking_every_service(tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path), list(SERVICES), run_workers=False)
    transport = httpx.ASGITransport(app=runtime.gateway())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        page = await client.get("/api/docs", headers={"accept": "text/html,*/*"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        links = set(re.findall(r'href="(/api/[a-z]+/docs)"', page.text))
        assert links == {f"/api/{name}/docs" for name in SERVICES}
        for link in sorted(links):
            assert (await client.get(link)).status_code == 200, link
        # A client that asks for JSON still gets the list as JSON.
        listed = await client.get("/api/docs", headers={"accept": "application/json"})
        assert {s["name"] for s in listed.json()["services"]} == set(SERVICES)
