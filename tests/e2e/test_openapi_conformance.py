"""schemathesis over every service's OpenAPI document: no 5xx, and every answer is one the document declares.

The whole runtime runs in this process (every service of ``cli.SERVICES``, so a service added later is
covered without a change here), reached through its ASGI app. Each operation gets a bounded number of
generated requests (deterministic: the same requests every run) from a signed-in customer, or from an
admin where the operation declares 403 (it needs a role). The checks: not a server error, the status code
and content type are declared, and the body conforms to the declared schema.

Defects found in services are listed in ``KNOWN_DEFECTS`` (operation -> what is wrong); such an operation
may fail in that way without failing the test (the service's test is then an expected failure, with the
defects as its reason); any other failure fails it.
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from boxoffice.cli import SERVICES, Runtime, migrate_all
from boxoffice.platform.settings import Settings

pytestmark = pytest.mark.timeout(300)

MAX_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

UNDOCUMENTED = "Undocumented status code"

KNOWN_DEFECTS: dict[str, tuple[int, ...]] = {
    # Found on 2026-11-28 (issue 8), before the services declared their errors: every entry is fixed now (each
    # route declares its problems). A new defect goes here with its statuses until its route declares them.
}
"""Operations (``"<service> <METHOD> <path>"``) -> the problem statuses they answer without declaring them
(a defect of the service: its route lacks ``responses=problem_responses(...)``). Only "undocumented status
code" with one of these statuses is expected of them; anything else (a 5xx, a body or content type that
does not conform) fails the test."""


@dataclass
class Embedded:
    gateway: Any
    runtime: Runtime
    customer: dict[str, str]
    admin: dict[str, str]


@pytest.fixture(scope="module")
def embedded() -> Iterator[Embedded]:
    with tempfile.TemporaryDirectory() as data_dir, pytest.MonkeyPatch.context() as env:
        # A live stream answers until it ends: each generated request to one would otherwise take minutes.
        env.setenv("BOXOFFICE_ANALYTICS_STREAM_MAX_SECONDS", "0.3")
        app_settings = Settings(data_dir=Path(data_dir), demo=True)
        migrate_all(app_settings)
        runtime = Runtime(app_settings, list(SERVICES), run_workers=True)
        gateway = runtime.gateway()
        # Loading a document starts the gateway's lifespan (the runtime) in schemathesis's event loop thread;
        # schemathesis's pytest plugin ends it after each test, and the next test's loading starts it again.
        schemathesis.openapi.from_asgi("/api/identity/openapi.json", gateway)  # identity's keys, for tokens
        try:
            yield Embedded(gateway, runtime, token(runtime, ("customer",)), token(runtime, ("customer", "admin")))
        finally:
            asgi.shutdown_lifespans()


def token(runtime: Runtime, roles: tuple[str, ...]) -> dict[str, str]:
    identity = next(s for s in runtime.services if s.name == "identity")
    user_id = str(uuid.uuid4())
    signed = identity.keyring().issue_access_token(
        user_id=user_id,
        email=f"{user_id[:8]}@example.com",
        name="Schemathesis",
        roles=list(roles),
        now=datetime.now(UTC),
        ttl=timedelta(hours=2),
    )
    return {"Authorization": f"Bearer {signed}"}


def check_operation(operation: Any, headers: dict[str, str], statuses: Counter[int]) -> dict[str, str]:
    """Every distinct failure of the operation's generated requests: ``"<status> <check>"`` -> details.

    ``statuses`` counts the answers by status code (the run's summary).

    Failures are collected rather than raised, so every example runs: an undocumented 404 found first does
    not hide a 500 that a later request would find.
    """
    found: dict[str, str] = {}

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)))
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                found.setdefault(f"{response.status_code} {failure.title}", describe(case, response, failure.message))

    run()
    return found


def describe(case: Any, response: Any, message: str) -> str:
    body = response.content[:500].decode(errors="replace")
    return f"{message.strip()[:300]}\n    request: {case.as_curl_command()}\n    answer: {body}"


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_operation_conforms_to_its_document(service: str, embedded: Embedded) -> None:
    schema = schemathesis.openapi.from_asgi(f"/api/{service}/openapi.json", embedded.gateway)
    unexpected: list[str] = []
    known: list[str] = []
    checked = 0
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{service} {operation.method.upper()} {operation.path}"
        needs_role = "403" in operation.definition.raw.get("responses", {})
        checked += 1
        found = check_operation(operation, embedded.admin if needs_role else embedded.customer, statuses)
        allowed = KNOWN_DEFECTS.get(label, ())
        for kind, detail in found.items():
            status, _, check = kind.partition(" ")
            if check == UNDOCUMENTED and int(status) in allowed:
                known.append(f"{label} answers {status} without declaring it")
            else:
                unexpected.append(f"{label}: {kind}\n    {detail}")
        declared = {int(code) for code in operation.definition.raw.get("responses", {}) if code.isdigit()}
        if allowed and declared.issuperset(allowed):
            warnings.warn(f"{label} declares {allowed} now: remove it from KNOWN_DEFECTS", stacklevel=1)
    answers = ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    print(f"schemathesis {service}: {checked} operations, {statuses.total()} requests ({answers})")
    assert not unexpected, "\n".join(unexpected)
    assert not any(code >= 500 for code in statuses), statuses  # not_a_server_error already, said once more
    if service != "web":  # web serves pages; its JSON API is for its own browser code and not documented
        assert checked > 0, f"{service} documents no operation"
    if known:
        pytest.xfail("known defects of the service (KNOWN_DEFECTS): " + "; ".join(sorted(set(known))))
