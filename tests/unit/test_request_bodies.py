"""Every JSON request body of every service is validated strictly: "5" is no number and true is no 1."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

import boxoffice
from boxoffice.booking.schemas import HoldIn
from boxoffice.catalog.schemas import EventIn, RunsIn
from boxoffice.platform.inspect import inspector_router


def routers() -> list[APIRouter]:
    found = [inspector_router("any")]
    for module in pkgutil.walk_packages(boxoffice.__path__, "boxoffice."):
        if module.name.rsplit(".", 1)[-1].startswith("api"):
            found += [v for v in vars(importlib.import_module(module.name)).values() if isinstance(v, APIRouter)]
    return found


def body_models() -> dict[str, type[BaseModel]]:
    models = {}
    for router in routers():
        for route in router.routes:
            if isinstance(route, APIRoute) and route.body_field is not None:
                model = route.body_field.field_info.annotation
                # FastAPI's own Body_* models are multipart forms (a file upload), not JSON
                if isinstance(model, type) and issubclass(model, BaseModel) and not model.__name__.startswith("Body_"):
                    models[f"{sorted(route.methods)[0]} {route.path}"] = model
    return models


def test_every_request_body_is_strict_and_refuses_unknown_fields() -> None:
    models = body_models()
    assert len(models) >= 20, sorted(models)  # the walk found the services' routes
    lax = {route: model.__name__ for route, model in models.items() if model.model_config.get("strict") is not True}
    open_ended = {route: m.__name__ for route, m in models.items() if m.model_config.get("extra") != "forbid"}
    assert lax == {} and open_ended == {}


@pytest.mark.parametrize("quantity", ["5", True, 5.0, "five"])
def test_a_hold_quantity_must_be_a_json_integer(quantity: object) -> None:
    with pytest.raises(ValidationError):
        HoldIn.model_validate({"event_id": "e", "section_id": "s", "quantity": quantity})
    assert HoldIn.model_validate({"event_id": "e", "section_id": "s", "quantity": 5}).quantity == 5


def test_times_and_days_still_arrive_as_json_strings() -> None:
    event = EventIn.model_validate({
        "name": "Night", "category": "concert", "venue": "Hall", "city": "Oslo", "starts_at": "2030-01-01T20:00:00Z",
        "currency": "EUR", "sections": [{"name": "Floor", "price": 1000, "capacity": 10}],
    })
    assert event.starts_at.year == 2030
    assert RunsIn.model_validate({"date": "2030-01-02"}).dates()[0].day == 2
    with pytest.raises(ValidationError):  # a time without its offset is still refused
        EventIn.model_validate({**event.model_dump(mode="json"), "starts_at": "2030-01-01T20:00:00"})
