"""deploy/k8s: every overlay renders with ``kubectl kustomize`` and validates strictly, and the manifests say
what the issue asks (probes, resources, securityContext, autoscaling, disruption budgets, network policies,
secrets by reference, Istio, monitoring, Argo CD), generated from the same route table as the gateway."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from boxoffice.cli import SERVICES, gateway_routes, route_table
from boxoffice.platform.gateway import compile_pattern
from tests.deploy.conftest import DEPLOY, OVERLAYS

Rendered = dict[str, list[dict[str, Any]]]
SCHEMAS = DEPLOY / "k8s" / "schemas"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest minor EKS and GKE still run, and the newest known
CUSTOM_KINDS = {
    ("networking.istio.io/v1beta1", "VirtualService"),
    ("networking.istio.io/v1beta1", "DestinationRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("argoproj.io/v1alpha1", "ApplicationSet"),
    ("argoproj.io/v1alpha1", "AppProject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
OBJECT_META = {
    # The ObjectMeta fields a manifest may set (the CRD schemas' $ref to the Kubernetes type).
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Any:
    """kubernetes-validate reads its schema files (the definitions are megabytes) on every call: read each once."""
    import functools

    import kubernetes_validate.utils as utils

    original = utils.schema_contents
    utils.schema_contents = functools.lru_cache(maxsize=None)(original)
    yield
    utils.schema_contents = original


def strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: unknown fields are errors."""
    if isinstance(schema, dict):
        if schema.get("$ref", "").startswith("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"):
            return OBJECT_META
        found = {k: strict(v) for k, v in schema.items()}
        if found.get("properties") and "additionalProperties" not in found and not found.get("x-kubernetes-preserve-unknown-fields"):
            found["additionalProperties"] = False
        return found
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group_version = api_version.replace("/", "_")
    schema = json.loads((SCHEMAS / f"{group_version}_{kind}.json").read_text())
    schema.pop("$comment")
    return jsonschema.Draft7Validator(strict(schema))


def of_kind(docs: list[dict[str, Any]], kind: str, *, part_of: str | None = "boxoffice") -> dict[str, dict[str, Any]]:
    """The resources of a kind, by name; by default boxoffice's own (not minikube's development dependencies)."""
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == kind and (part_of is None or d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == part_of)
    }


# Generated from the route table.
def test_the_committed_manifests_are_what_the_generator_writes(generator: ModuleType) -> None:
    stale = generator.stale(generator.generate())
    assert stale == [], f"run `.venv/bin/python deploy/generate.py` and commit: {stale}"


def test_the_route_table_is_the_gateways() -> None:
    table = route_table()
    assert list(table) == list(SERVICES)
    for name, cls in SERVICES.items():
        assert table[name]["routes"] == gateway_routes(cls)
        assert table[name]["has_workers"] == cls.has_workers


def _ingress_choice(paths: list[dict[str, Any]], path: str) -> str | None:
    """Which backend ingress-nginx picks: with regular expressions on the host it tries the locations longest
    first; a Prefix path matches whole segments."""
    candidates = []
    for entry in paths:
        p = entry["path"]
        if entry["pathType"] == "Prefix":
            hit = path == p or path.startswith(p.rstrip("/") + "/") or p == "/"
        else:
            hit = re.match(p, path) is not None
        if hit:
            candidates.append((len(p), entry["backend"]["service"]["name"]))
    return max(candidates)[1] if candidates else None


def _gateway_choice(table: dict[str, list[str]], path: str) -> str:
    """The embedded gateway's choice (boxoffice.platform.gateway.Gateway): the most specific pattern, else web."""
    routes = sorted(
        ((p, n) for n, patterns in table.items() for p in patterns),
        key=lambda r: (len(r[0].replace("{}", "")), r[0].count("/")),
        reverse=True,
    )
    return next((f"{n}-api" for p, n in routes if compile_pattern(p).match(path)), "web-api")


def _sample_paths(table: dict[str, list[str]]) -> list[str]:
    paths = ["/", "/events/42", "/api/unknown"]
    for patterns in table.values():
        for p in patterns:
            concrete = p.replace("{}", "0193a2b4-c5d6")
            paths += [concrete, concrete + "/", concrete + "/x/y", concrete + "x"]
    return paths


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_sends_every_path_where_the_gateway_does(rendered: Rendered, generator: ModuleType, overlay: str) -> None:
    table = {name: svc["routes"] for name, svc in generator.load_services().items()}
    ingresses = of_kind(rendered[overlay], "Ingress").values()
    paths = [p for ing in ingresses for rule in ing["spec"]["rules"] for p in rule["http"]["paths"]]
    for path in _sample_paths(table):
        assert _ingress_choice(paths, path) == _gateway_choice(table, path), path
    backends = {p["backend"]["service"]["name"] for p in paths}
    assert backends == {f"{n}-api" for n in table}  # every service reachable, and no other


def test_the_compose_proxy_sends_every_path_where_the_gateway_does(generator: ModuleType) -> None:
    table = {name: svc["routes"] for name, svc in generator.load_services().items()}
    conf = (DEPLOY / "compose" / "nginx.conf").read_text()
    locations = re.findall(r"location ~ (\S+) \{ set \$upstream http://([a-z]+-api):", conf)
    assert locations
    for path in _sample_paths(table):
        # nginx tries regular-expression locations in the order of the file; `location /` is the fallback.
        chosen = next((upstream for regex, upstream in locations if re.search(regex, path)), "web-api")
        if path.startswith("/internal/"):
            continue
        assert chosen == _gateway_choice(table, path), path


# Validation.
@pytest.mark.parametrize("overlay", [*OVERLAYS, "argocd"])
def test_every_resource_validates_strictly(rendered: Rendered, overlay: str) -> None:
    counts: Counter[str] = Counter()
    for doc in rendered[overlay]:
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM_KINDS:
            errors = sorted(crd_validator(*key).iter_errors(doc), key=str)
            assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: {[e.message for e in errors][:5]}"
            counts["custom"] += 1
        else:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)
            counts["built-in"] += 1
    print(f"{overlay}: {counts['built-in']} built-in resources (kubernetes-validate, strict, {KUBERNETES_VERSIONS}), "
          f"{counts['custom']} custom resources (vendored CRD schemas, strict)")
    assert counts["built-in"] + counts["custom"] == len(rendered[overlay])


def test_the_strict_validation_rejects_what_the_cluster_would() -> None:
    """The validators are not lenient: an unknown field, a wrong type and a missing field all fail."""
    good = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "kafka", "metadata": {"topic": "t"}}]},
    }
    validator = crd_validator("keda.sh/v1alpha1", "ScaledObject")
    assert not list(validator.iter_errors(good))
    for broken in (
        {**good, "spec": {**good["spec"], "maxReplicas": 3}},  # the field is maxReplicaCount
        {**good, "spec": {**good["spec"], "pollingInterval": "15"}},
        {**good, "spec": {"triggers": good["spec"]["triggers"]}},
    ):
        assert list(validator.iter_errors(broken))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "x", "image": "x", "readOnly": True}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_checkov_finds_nothing_unjustified_in_the_manifests(checkov_report: dict[str, Any]) -> None:
    report = checkov_report["kubernetes"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 40, check["check_id"]  # a reason, not a shrug
    assert {c["check_id"] for c in skipped} <= {"CKV_K8S_43", "CKV_K8S_35", "CKV_K8S_15", "CKV_K8S_22", "CKV_K8S_40"}
    assert report["summary"]["passed"] > 1000


# What the manifests must say.
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down_probed_and_sized(rendered: Rendered, overlay: str) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
        mounts_by_volume = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert set(container["resources"]) == {"requests", "limits"}, name
            assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container), name
            # The only writable paths are volumes: /tmp and the data dir (the image's BOXOFFICE_DATA_DIR).
            writable = {m["mountPath"] for m in container["volumeMounts"]}
            assert writable == {"/tmp", "/var/lib/boxoffice"}, name
            assert all("emptyDir" in mounts_by_volume[m["name"]] for m in container["volumeMounts"])
            if name.endswith(("-api", "-api-v2")):
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert container["args"][0] == "serve"
            else:
                assert container["args"][:1] == ["worker"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grace_period_outlasts_every_drain(rendered: Rendered, overlay: str) -> None:
    """SIGKILL must never cut a drain short: an API's preStop pause, its drain and uvicorn's 5 s for requests
    in flight; a worker's drain (the batch in hand) and closing its clients."""
    for name, deployment in of_kind(rendered[overlay], "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        args = container["args"]
        drain = float(args[args.index("--drain-seconds") + 1])
        if args[0] == "serve":
            pause = container["lifecycle"]["preStop"]["exec"]["command"]
            assert pause[0] == "sleep", name
            needed = float(pause[1]) + drain + 5
        else:
            assert "lifecycle" not in container, name  # nothing routes to a worker: no pause before SIGTERM
            needed = drain + 5
        assert pod["terminationGracePeriodSeconds"] > needed, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_deployment_per_api_and_worker_with_budgets_and_autoscaling(rendered: Rendered, generator: ModuleType, overlay: str) -> None:
    docs = rendered[overlay]
    services = generator.load_services()
    deployments, pdbs = of_kind(docs, "Deployment"), of_kind(docs, "PodDisruptionBudget")
    hpas, scaled = of_kind(docs, "HorizontalPodAutoscaler"), of_kind(docs, "ScaledObject")
    for name, svc in services.items():
        assert f"{name}-api" in deployments and f"{name}-api" in pdbs
        assert (f"{name}-worker" in deployments) == svc["has_workers"], name
        if svc["consumers"]:
            triggers = scaled[f"{name}-worker"]["spec"]["triggers"]
            assert {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers} == {
                (g, t) for g, topics in svc["consumers"].items() for t in topics
            }
            assert all(t["type"] == "kafka" for t in triggers)
    assert "web-worker" not in deployments  # web has no workers
    assert {"booking-api", "identity-api", "catalog-api", "tracking-api"} <= set(hpas)
    assert all(h["apiVersion"] == "autoscaling/v2" for h in hpas.values())
    assert {"booking-worker", "payments-worker", "tickets-worker", "analytics-worker", "tracking-worker"} <= set(scaled)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_per_service(rendered: Rendered, generator: ModuleType, overlay: str) -> None:
    policies = of_kind(rendered[overlay], "NetworkPolicy", part_of=None)
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny
    services = generator.load_services()
    booking_from = policies["booking-api"]["spec"]["ingress"][0]["from"]
    callers = [e["values"] for f in booking_from for e in f.get("podSelector", {}).get("matchExpressions", [])]
    assert callers == [sorted(n for n, s in services.items() if "booking" in s.get("calls", []))]
    assert "payments" in callers[0] and "identity" not in callers[0]
    for name, svc in services.items():
        assert f"{name}-api" in policies
        assert (f"{name}-worker" in policies) == svc["has_workers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_defined(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    assert not [d for d in docs if d["kind"] == "Secret"]
    text = json.dumps(docs)
    assert "DATABASE_URL\", \"value\"" not in text and "SECRET_KEY\", \"value\"" not in text
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for d in of_kind(docs, "Deployment", part_of=None).values()
            for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", []) if "valueFrom" in e}
    assert refs == {"boxoffice-secrets", "boxoffice-databases", "boxoffice-smtp", "boxoffice-s3"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_music_shifts_traffic_and_injects_faults_through_istio(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    rule = of_kind(docs, "DestinationRule")["music-api"]
    assert {s["name"]: s["labels"] for s in rule["spec"]["subsets"]} == {"v1": {"version": "v1"}, "v2": {"version": "v2"}}
    deployments = of_kind(docs, "Deployment")
    assert deployments["music-api"]["spec"]["template"]["metadata"]["labels"]["version"] == "v1"
    assert deployments["music-api-v2"]["spec"]["template"]["metadata"]["labels"]["version"] == "v2"
    service = of_kind(docs, "Service")["music-api"]
    assert "version" not in service["spec"]["selector"]  # one Service in front of both versions
    for route in of_kind(docs, "VirtualService")["music-api"]["spec"]["http"]:
        assert sum(d["weight"] for d in route["route"]) == 100
    drill = of_kind(docs, "VirtualService")["music-api"]["spec"]["http"][0]
    assert drill["fault"]["delay"]["fixedDelay"] == "2s" and drill["fault"]["abort"]["httpStatus"] == 503


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_every_api_and_worker_and_gets_the_alert_rules(rendered: Rendered, overlay: str) -> None:
    import yaml

    docs = rendered[overlay]
    monitors = of_kind(docs, "ServiceMonitor")
    services = of_kind(docs, "Service")
    for monitor in monitors.values():
        selected = [s for s in services.values() if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert selected and all(s["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"] for s in selected)
    assert sum(len([s for s in services.values() if m["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()])
               for m in monitors.values()) == len(services)
    rules = of_kind(docs, "PrometheusRule")["boxoffice"]["spec"]
    assert rules == yaml.safe_load((DEPLOY / "observability" / "alerts.yaml").read_text())


def test_argo_cd_syncs_every_overlay(rendered: Rendered) -> None:
    appset = of_kind(rendered["argocd"], "ApplicationSet", part_of=None)["boxoffice"]
    elements = appset["spec"]["generators"][0]["list"]["elements"]
    assert sorted(e["overlay"] for e in elements) == sorted(OVERLAYS)
    assert appset["spec"]["template"]["spec"]["source"]["path"] == "deploy/k8s/overlays/{{.overlay}}"
    assert all((DEPLOY / "k8s" / "overlays" / o / "kustomization.yaml").is_file() for o in OVERLAYS)
    assert Path(DEPLOY / "k8s" / "argocd").is_dir()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_sets_its_own_image(rendered: Rendered, overlay: str) -> None:
    images = {c["image"] for d in of_kind(rendered[overlay], "Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1
    image = images.pop()
    assert {"minikube": image == "boxoffice:dev", "aws": ".dkr.ecr." in image, "gcp": "-docker.pkg.dev/" in image}[overlay]


def test_minikube_brings_its_development_dependencies_locked_down(rendered: Rendered) -> None:
    dependencies = of_kind(rendered["minikube"], "Deployment", part_of="boxoffice-dev")
    assert set(dependencies) == {"postgres", "kafka", "minio", "mailpit"}
    for name, deployment in dependencies.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["allowPrivilegeEscalation"] is False
            # Kafka's image writes its configuration at start; its annotation says so for checkov.
            assert ctx["readOnlyRootFilesystem"] is (name != "kafka")
    config = of_kind(rendered["minikube"], "ConfigMap")["boxoffice-config"]["data"]
    assert config["BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert config["BOXOFFICE_S3_ENDPOINT_URL"] == "http://minio:9000"
    init = of_kind(rendered["minikube"], "ConfigMap", part_of=None)["postgres-init"]["data"]["10-databases.sql"]
    assert init == (DEPLOY / "compose" / "postgres-init.sql").read_text()


def _cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_tickets_worker_renders_pdfs_within_its_cpu_and_below_its_consumers(rendered: Rendered, overlay: str) -> None:
    """The PDF renderer runs in the tickets worker: its processes fit the pod's CPU limit, niced below the relay
    and the consumers sharing the pod (BOXOFFICE_TICKETS_PDF_PROCESSES, BOXOFFICE_TICKETS_PDF_NICE)."""
    [container] = of_kind(rendered[overlay], "Deployment")["tickets-worker"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    processes = int(env["BOXOFFICE_TICKETS_PDF_PROCESSES"])
    assert 1 <= processes <= _cores(container["resources"]["limits"]["cpu"])
    assert int(env["BOXOFFICE_TICKETS_PDF_NICE"]) > 0
    [api] = of_kind(rendered[overlay], "Deployment")["tickets-api"]["spec"]["template"]["spec"]["containers"]
    assert "BOXOFFICE_TICKETS_PDF_PROCESSES" not in {e["name"] for e in api["env"]}  # the API renders none


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_keep_idle_connections_longer_than_the_ingress_does(rendered: Rendered, overlay: str) -> None:
    """ingress-nginx closes idle upstream connections after 60 s (upstream-keepalive-timeout): the services keep
    theirs longer (BOXOFFICE_HTTP_KEEP_ALIVE_SECONDS), so the proxy never sends on a connection being closed."""
    config = of_kind(rendered[overlay], "ConfigMap")["boxoffice-config"]["data"]
    assert int(config["BOXOFFICE_HTTP_KEEP_ALIVE_SECONDS"]) > 60
