"""deploy/terraform: formatted, parsed with python-hcl2, every variable used and every module's inputs and
outputs wired, least-privilege details checked, and checkov clean with each skip justified inline. Plans
cannot run here: the providers cannot be downloaded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from boxoffice.tickets import functions
from tests.deploy.conftest import DEPLOY

TERRAFORM = DEPLOY / "terraform"
ROOTS = [TERRAFORM / "aws", TERRAFORM / "gcp"]
META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def folders() -> list[Path]:
    return sorted({p.parent for p in TERRAFORM.rglob("*.tf")})


def parse(folder: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as f:
            for kind, blocks in hcl2.load(f).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def text(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.tf")))


def declared(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {unquote(name): body for block in parse(folder).get(kind, []) for name, body in block.items()}


def module_calls(folder: Path) -> dict[str, dict[str, Any]]:
    return declared(folder, "module")


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (no Debian or PyPI package ships it); the HCL checks below still run")
    done = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("folder", folders(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_variable_is_used_and_described(folder: Path) -> None:
    source = text(folder)
    for name, body in declared(folder, "variable").items():
        assert re.search(rf"\bvar\.{name}\b", source), f"{folder.name}: variable {name} is never used"
        assert unquote(body.get("description", "")), f"{folder.name}: variable {name} has no description"
    for name, body in declared(folder, "output").items():
        assert unquote(body.get("description", "")), f"{folder.name}: output {name} has no description"


@pytest.mark.parametrize("folder", folders(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_module_call_is_wired(folder: Path) -> None:
    caller = text(folder)
    for call, body in module_calls(folder).items():
        target = (folder / unquote(body["source"])).resolve()
        assert target.is_dir(), f"module {call}: no folder {target}"
        variables = declared(target, "variable")
        passed = set(body) - META_ARGUMENTS - {"__is_block__"}
        assert passed <= set(variables), f"module {call}: unknown inputs {passed - set(variables)}"
        required = {n for n, v in variables.items() if "default" not in v}
        assert required <= passed, f"module {call}: missing inputs {required - passed}"
        for output in declared(target, "output"):
            assert re.search(rf"\bmodule\.{call}\.{output}\b", caller), f"output {output} of module {call} is never used"


def test_the_wiring_check_catches_an_unused_output(tmp_path: Path) -> None:
    (tmp_path / "child").mkdir()
    (tmp_path / "child" / "main.tf").write_text('output "a" {\n  value = 1\n}\noutput "b" {\n  value = 2\n}\n')
    (tmp_path / "main.tf").write_text('module "c" {\n  source = "./child"\n}\noutput "x" {\n  value = module.c.a\n}\n')
    caller = text(tmp_path)
    unused = [o for o in declared(tmp_path / "child", "output") if not re.search(rf"\bmodule\.c\.{o}\b", caller)]
    assert unused == ["b"]


def test_the_bucket_triggers_the_ticket_generator_on_id_proofs() -> None:
    storage = TERRAFORM / "aws" / "modules" / "storage"
    resources = {(unquote(k), unquote(n)): b for block in parse(storage)["resource"] for k, v in block.items() for n, b in v.items()}
    function = resources[("aws_lambda_function", "ticket_generator")]
    handler = unquote(function["handler"])
    module, _, name = handler.rpartition(".")
    assert module == functions.__name__ and callable(getattr(functions, name))
    assert unquote(function["runtime"]) == "python3.11"
    notification = resources[("aws_s3_bucket_notification", "objects")]["lambda_function"][0]
    assert [unquote(e) for e in notification["events"]] == ["s3:ObjectCreated:*"]
    # The handler reads ID proofs under uploads/ and writes its receipts under tickets/ (which must not
    # trigger it): the filter is the handler's own prefix.
    assert unquote(notification["filter_prefix"]) == functions.ID_PROOF_PREFIX
    env = function["environment"][0]["variables"]
    assert {"BOXOFFICE_OBJECT_STORE", "BOXOFFICE_S3_BUCKET", "BOXOFFICE_TICKETS_DATABASE_URL"} <= set(env)


def test_iam_grants_no_wildcard_actions_outside_key_policies() -> None:
    for folder in folders():
        if folder.name == "kms":
            continue  # a key policy's administrator statement (kms:* on the key itself), justified there
        for block in parse(folder).get("data", []):
            for kind, named in block.items():
                if unquote(kind) != "aws_iam_policy_document":
                    continue
                for name, body in named.items():
                    for statement in body.get("statement", []):
                        actions = [unquote(a) for a in statement.get("actions", [])]
                        assert not [a for a in actions if a == "*" or a.endswith(":*")], (folder.name, name, actions)


def test_gcp_runs_the_analytics_job_on_a_dataproc_flink_cluster() -> None:
    resources = {(unquote(k), unquote(n)): b for block in parse(TERRAFORM / "gcp")["resource"] for k, v in block.items() for n, b in v.items()}
    cluster = resources[("google_dataproc_cluster", "flink")]["cluster_config"][0]
    assert [unquote(c) for c in cluster["software_config"][0]["optional_components"]] == ["FLINK"]
    assert cluster["gce_cluster_config"][0]["internal_ip_only"] is True
    job = text(TERRAFORM / "gcp")
    assert "gcloud dataproc jobs submit flink" in job and "analytics_sql" in job
    assert ("google_storage_bucket", "jobs") in resources and ("google_storage_bucket", "objects") in resources


def test_checkov_finds_nothing_unjustified_in_terraform_or_the_dockerfile(checkov_report: dict[str, Any]) -> None:
    for kind in ("terraform", "dockerfile"):
        report = checkov_report[kind]
        failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
        assert failed == [], kind
        for check in report["results"]["skipped_checks"]:
            assert len(check["check_result"].get("suppress_comment") or "") > 30, check["check_id"]
        assert report["summary"]["passed"] > (300 if kind == "terraform" else 10)
