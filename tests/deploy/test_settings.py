"""Every ``BOXOFFICE_*`` setting the deployment files give a process (the ConfigMaps and container env of every
overlay, the compose file's environments, the image's ENV) is one the code reads: a name misspelt or left
behind by a rename would be ignored without a word, and the deployment would run on the default."""

from __future__ import annotations

import importlib
import re
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from boxoffice.cli import SERVICES
from tests.deploy.conftest import DEPLOY, OVERLAYS

Rendered = dict[str, list[dict[str, Any]]]
MODULES = ("boxoffice.cli", "boxoffice.platform.gateway", "boxoffice.platform.faults", "boxoffice.web.api_tracker",
           "boxoffice.web.api_db")


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def read_by_the_code() -> set[str]:
    """The environment variables boxoffice's settings classes read: prefix + field name, and their aliases."""
    for module in MODULES:
        importlib.import_module(module)
    for service in SERVICES.values():
        importlib.import_module(service.__module__.rsplit(".", 1)[0] + ".deps")
    names: set[str] = set()
    for cls in _subclasses(BaseSettings):
        if not cls.__module__.startswith("boxoffice."):
            continue
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names |= {str(choice).upper() for choice in alias.choices if isinstance(choice, str)}
            elif isinstance(alias, str):
                names.add(alias.upper())
            else:
                names.add(f"{prefix}{field_name}".upper())
    return {n for n in names if n.startswith("BOXOFFICE_")}


def test_the_code_reads_the_settings_the_issue_and_the_readme_name() -> None:
    """The collector is not blind: it finds platform, gateway and per-service settings and their aliases."""
    known = read_by_the_code()
    assert {"BOXOFFICE_HTTP_KEEP_ALIVE_SECONDS", "BOXOFFICE_API_PROCESSES", "BOXOFFICE_GATEWAY_RETRY_SECONDS",
            "BOXOFFICE_OTEL_ENDPOINT", "BOXOFFICE_TICKETS_PDF_NICE", "BOXOFFICE_TRACKING_PROCESSOR_HOLD_MS",
            "BOXOFFICE_BOOKING_DATABASE_URL", "BOXOFFICE_ADMIN_EMAIL"} <= known
    assert "BOXOFFICE_NO_SUCH_SETTING" not in known


def _container_env(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("boxoffice"):
            found[f"ConfigMap/{doc['metadata']['name']}"] = set(doc["data"])
        if doc["kind"] == "Deployment" and doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "boxoffice":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                found[f"Deployment/{doc['metadata']['name']}"] = {e["name"] for e in container.get("env", [])}
    return found


def test_every_setting_the_manifests_give_is_read_by_the_code(rendered: Rendered) -> None:
    known = read_by_the_code()
    for overlay in OVERLAYS:
        for where, names in _container_env(rendered[overlay]).items():
            unknown = {n for n in names if n.startswith("BOXOFFICE_")} - known
            assert not unknown, f"{overlay} {where}: {sorted(unknown)} are read by no settings class"


def test_every_setting_compose_and_the_image_give_is_read_by_the_code() -> None:
    known = read_by_the_code()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        keys = set(environment) if isinstance(environment, dict) else {e.split("=", 1)[0] for e in environment}
        unknown = {k for k in keys if k.startswith("BOXOFFICE_")} - known
        assert not unknown, f"compose {name}: {sorted(unknown)} are read by no settings class"
    image_env = set(re.findall(r"\b(BOXOFFICE_[A-Z0-9_]+)=", (DEPLOY / "Dockerfile").read_text()))
    assert image_env and image_env <= known, sorted(image_env - known)
