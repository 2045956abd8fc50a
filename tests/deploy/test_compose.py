"""deploy/compose.yaml: valid under the Compose specification's schema, and complete: the infrastructure,
every service's API and worker from the route table, the ingress proxy, metrics, logs and traces."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, tool

COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DEPLOY / "compose" / "compose-spec.schema.json").read_text())
    schema.pop("$comment")
    return jsonschema.Draft7Validator(schema)


def test_compose_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(compose), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors][:5]


def test_the_schema_is_not_a_rubber_stamp(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["booking-api"]["restart_policy"] = "always"  # a Kubernetes-ism, not Compose
    assert list(validator().iter_errors(broken))
    broken = json.loads(json.dumps(compose))
    broken["services"]["booking-api"]["depends_on"]["postgres"] = {"condition": "ready"}
    assert list(validator().iter_errors(broken))


def test_the_infrastructure_and_the_observability_stack_are_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "kafka", "minio", "ingress", "prometheus", "grafana", "loki", "promtail", "otel-collector", "tempo"):
        assert name in services, name
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller" and "ZOOKEEPER" not in json.dumps(kafka)  # KRaft
    for service in services.values():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), image


def test_every_service_runs_its_api_and_its_workers(compose: dict[str, Any], generator: ModuleType) -> None:
    services = compose["services"]
    for name, svc in generator.load_services().items():
        api = services[f"{name}-api"]
        assert api["command"] == ["serve", name, "--drain-seconds", "5"]
        assert _seconds(api["stop_grace_period"]) > 5 + 5  # the drain, then uvicorn's 5 s for requests in flight
        assert api["read_only"] is True and api["tmpfs"] == ["/tmp"] and api["user"].startswith("10001")
        assert api["cap_drop"] == ["ALL"]
        assert ("profiles" in api) == svc["pending"]  # announced services start with `--profile pending`
        worker = services.get(f"{name}-worker")
        assert (worker is not None) == svc["has_workers"], name
        if worker is not None:
            assert worker["command"][:2] == ["worker", name]
            drain = float(worker["command"][worker["command"].index("--drain-seconds") + 1])
            assert _seconds(worker["stop_grace_period"]) > drain + 5  # a batch in hand is finished, not killed
        if svc["has_database"]:
            url = api["environment"][f"BOXOFFICE_{name.upper()}_DATABASE_URL"]
            assert url.startswith("postgresql+asyncpg://") and f"@postgres:5432/{name}" in url
    init = (DEPLOY / "compose" / "postgres-init.sql").read_text()
    assert all(f"CREATE DATABASE {n};" in init for n, s in generator.load_services().items() if s["has_database"])


def test_dependencies_exist_and_never_wait_for_an_inactive_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for other in depends:
            assert other in services, (name, other)
            if "profiles" not in service:
                assert "profiles" not in services[other], (name, other)


def test_nothing_secret_is_committed(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for variable in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "BOXOFFICE_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert f"${{{variable}:?" in text, variable  # required from the environment, no default
    for service in compose["services"].values():
        env = service.get("environment", {})
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET", key):
                assert str(value).startswith("${"), key


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    build = compose["services"]["migrate"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()


def test_prometheus_config_is_valid_and_scrapes_every_api_and_worker(compose: dict[str, Any], tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "observability" / "prometheus.yaml").read_text())
    config["rule_files"] = [str(DEPLOY / "observability" / "alerts.yaml")]  # where compose mounts it
    local = tmp_path / "prometheus.yaml"
    local.write_text(yaml.safe_dump(config))
    promtool = tool("promtool", where="Debian package prometheus (scripts/install-system-deps.sh)")
    done = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    for name, service in compose["services"].items():
        if name.endswith("-api"):
            assert f"{name}:8000" in targets
        if name.endswith("-worker"):
            assert f"{name}:9100" in targets and "--metrics-port" in service["command"]


def test_grafana_is_provisioned_with_the_dashboards_and_the_three_data_sources() -> None:
    provisioning = DEPLOY / "observability" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yaml").read_text())["datasources"]
    assert {s["type"] for s in sources} == {"prometheus", "loki", "tempo"}
    boards = sorted((DEPLOY / "observability" / "grafana" / "dashboards").glob("*.json"))
    assert {b.stem for b in boards} == {"red", "flash-sale", "bus", "autoscaling", "analytics"}
    collector = yaml.safe_load((DEPLOY / "observability" / "otel-collector.yaml").read_text())
    assert "otlp/tempo" in collector["service"]["pipelines"]["traces"]["exporters"]
    shipper = yaml.safe_load((DEPLOY / "observability" / "loki" / "promtail.yaml").read_text())
    assert shipper["clients"][0]["url"] == "http://loki:3100/loki/api/v1/push"


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])
