"""``boxoffice package-lambda OUT.zip``: the ticket-generator bundle runs on its own. The zip is unpacked into
an empty folder and the handler imported from there alone (``python -I -S``: no site-packages, no
PYTHONPATH, no user site), then run on S3 events against moto's S3 server and a migrated tickets database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from boxoffice.platform.migrate import upgrade
from tests.harness.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_server
from tests.integration.test_tickets import ELF, PDF
from tests.integration.test_tickets_function import aws_event

BUCKET = "ticket-booking-raw-data-lambda"
RUN = """
import json, sys
from boxoffice.tickets.functions import handle
result = handle(json.loads(sys.argv[1]), None)
outside = sorted({
    m.__file__ for m in list(sys.modules.values())
    if getattr(m, "__file__", None) and not m.__file__.startswith((sys.argv[2], sys.base_prefix))
})
print(json.dumps({"result": result, "outside": outside, "path": sys.path}))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "ticket-generator.zip"
    boxoffice = Path(sys.executable).parent / "boxoffice"
    done = subprocess.run([str(boxoffice), "package-lambda", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "boxoffice.tickets.functions.handle" in done.stdout
    folder = tmp_path_factory.mktemp("lambda-task-root")
    with zipfile.ZipFile(out) as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        boto3.client("s3", endpoint_url=server.endpoint_url, region_name=REGION,
                     aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=BUCKET)
        yield server


def invoke(folder: Path, env: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    """As Lambda does: a Python with the task root on its path, the handler's module imported from it."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(folder)!r})\n{RUN}",
         json.dumps(event), str(folder)],
        capture_output=True, text=True, timeout=120, env=env, cwd=folder,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_bundle_holds_the_handler_and_no_bytecode_or_build_tools(bundle: Path) -> None:
    assert (bundle / "boxoffice" / "tickets" / "functions.py").is_file()
    assert not list(bundle.rglob("*.pyc"))
    top = {p.name for p in bundle.iterdir()}
    assert {"boxoffice", "sqlalchemy", "boto3", "botocore", "aiosqlite", "asyncpg", "pydantic", "structlog"} <= top
    assert not top & {"setuptools", "pip", "pytest", "moto", "fastapi", "uvicorn"}  # only what the function imports
    assert not (bundle / "boxoffice" / "booking").exists()


def test_the_unpacked_bundle_runs_the_handler_on_s3_events(bundle: Path, s3: S3Server, tmp_path: Path) -> None:
    database = tmp_path / "tickets.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade("tickets", url)  # the tickets service's schema, as the service's migrations make it
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **s3.env(BUCKET),
        "BOXOFFICE_S3_CREATE_BUCKET": "0",
        "BOXOFFICE_TICKETS_DATABASE_URL": url,
        "BOXOFFICE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join(sys.path),  # ignored under -I: the bundle alone must suffice
    }
    client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=REGION,
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    client.put_object(Bucket=BUCKET, Key="uploads/walk-in/passport scan.pdf", Body=PDF)
    client.put_object(Bucket=BUCKET, Key="uploads/walk-in/disguised.pdf", Body=ELF)

    verified = invoke(bundle, env, aws_event(BUCKET, "uploads/walk-in/passport scan.pdf", len(PDF)))
    assert verified["outside"] == [], "imported from outside the bundle"
    assert not [p for p in verified["path"] if "site-packages" in p]
    (outcome,) = verified["result"]["results"]
    assert outcome["status"] == "verified" and outcome["receipt_key"] == "tickets/passport scan.pdf_TICKET.txt"
    receipt = client.get_object(Bucket=BUCKET, Key=outcome["receipt_key"])["Body"].read().decode()
    assert "VERIFIED" in receipt

    rejected = invoke(bundle, env, aws_event(BUCKET, "uploads/walk-in/disguised.pdf", len(ELF)))
    assert rejected["result"]["results"][0]["status"] == "rejected"
    skipped = invoke(bundle, env, aws_event(BUCKET, outcome["receipt_key"], len(receipt)))
    assert skipped["result"]["results"][0]["status"] == "skipped"  # its own output never triggers work

    # The receipts were announced through the tickets database's outbox, in the same transaction.
    with sqlite3.connect(database) as conn:
        (announced,) = conn.execute("select count(*) from outbox").fetchone()
    assert announced == 2
