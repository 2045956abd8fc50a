"""Every service's OpenAPI document answers every error as problem+json, with one registered schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from boxoffice.cli import SERVICES, Runtime
from boxoffice.platform.app import Service
from boxoffice.platform.auth import CurrentUser, require_role
from boxoffice.platform.bus.factory import build_bus
from boxoffice.platform.clients import ServiceClients
from boxoffice.platform.problem_http import problem_responses
from boxoffice.platform.problems import PROBLEM_CONTENT_TYPE
from boxoffice.platform.settings import Settings

PROBLEM = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def assert_problem_errors(document: dict[str, Any]) -> None:
    assert "ProblemDocument" in document["components"]["schemas"]
    assert "HTTPValidationError" not in str(document)
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"] == PROBLEM, (method, path, status, response)


@pytest.mark.parametrize("name", list(SERVICES))
async def test_every_service_declares_its_errors_as_problem_json(name: str, tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path), [name], run_workers=False)
    transport = httpx.ASGITransport(app=runtime.apps[name])
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        response = await client.get(f"/api/{name}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert_problem_errors(document)
    for path, method, operation in operations(document):
        if any(p.get("in") in ("query", "path") for p in operation.get("parameters", [])) or "requestBody" in operation:
            assert "422" in operation["responses"], (method, path)  # FastAPI's validation answer, as a problem
        assert_success_schema(method, path, operation)


UNTYPED = ({}, {"type": "object"}, {"type": "object", "additionalProperties": True})


def assert_success_schema(method: str, path: str, operation: dict[str, Any]) -> None:
    """Every 2xx answer with a body declares what the body is: a JSON answer a schema that says more than
    "any value" or "any object" (a route returning ``dict[str, Any]`` declares nothing a client can use)."""
    successes = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
    assert successes, (method, path)
    for status, response in successes.items():
        if status == "204":
            continue
        content = response.get("content", {})
        assert content, (method, path, status)
        for media_type, body in content.items():
            if media_type.endswith("json"):
                schema = {k: v for k, v in body.get("schema", {}).items() if k not in ("title", "description")}
                assert schema not in UNTYPED, (method, path, status, media_type, body)


class ThingOut(BaseModel):
    id: str


router = APIRouter()


@router.get("/api/things/{thing_id}", responses=problem_responses(404, 409))
async def get_thing(thing_id: str, user: CurrentUser) -> ThingOut:
    return ThingOut(id=thing_id)


@router.delete("/api/things/{thing_id}", status_code=204, dependencies=[Depends(require_role("admin"))])
async def delete_thing(thing_id: str) -> None:
    return None


@router.post("/api/things", status_code=201)
async def make_thing(body: ThingOut) -> ThingOut:
    return body


@router.get("/api/open")
async def open_route() -> ThingOut:
    return ThingOut(id="x")


class ThingService(Service):
    name = "things"

    def routers(self) -> list[APIRouter]:
        return [router]


def test_declared_problems_and_those_of_dependencies_are_problem_json_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    service = ThingService(settings, bus=build_bus(settings), clients=ServiceClients(settings))
    document = service.create_app().openapi()

    assert_problem_errors(document)
    for path, method, operation in operations(document):
        assert_success_schema(method, path, operation)
    get = document["paths"]["/api/things/{thing_id}"]["get"]["responses"]
    assert set(get) == {"200", "401", "404", "409", "422"}  # 401: it needs a user (CurrentUser)
    assert get["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingOut"}
    delete = document["paths"]["/api/things/{thing_id}"]["delete"]["responses"]
    assert {"401", "403"} <= set(delete)  # needs the admin role
    assert set(document["paths"]["/api/open"]["get"]["responses"]) == {"200"}
    # A body may be malformed JSON (400) or too large (413): the platform answers those for every route.
    assert set(document["paths"]["/api/things"]["post"]["responses"]) == {"201", "400", "413", "422"}
    problem = document["components"]["schemas"]["ProblemDocument"]
    assert set(problem["required"]) == {"type", "title", "status"}


untyped_router = APIRouter()


@untyped_router.get("/api/loose")
async def loose_route() -> dict[str, Any]:
    return {"anything": True}


def test_a_route_returning_an_untyped_dict_is_caught(tmp_path: Path) -> None:
    class LooseService(Service):
        name = "loose"

        def routers(self) -> list[APIRouter]:
            return [untyped_router]

    settings = Settings(data_dir=tmp_path)
    service = LooseService(settings, bus=build_bus(settings), clients=ServiceClients(settings))
    operation = service.create_app().openapi()["paths"]["/api/loose"]["get"]
    with pytest.raises(AssertionError):
        assert_success_schema("get", "/api/loose", operation)
