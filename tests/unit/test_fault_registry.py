"""Fault rules shared through a file (``BOXOFFICE_FAULTS_FILE``) by the processes of ``run --processes``."""

from __future__ import annotations

from pathlib import Path

from boxoffice.platform.faults import SHARED_CHECK_SECONDS, FaultRegistry, FaultRule

ABORT = FaultRule(service="music", abort_status=503, abort_percent=100)
DELAY = FaultRule(service="booking", delay_ms=2000, delay_percent=50)


def test_a_change_in_one_process_reaches_the_others_within_a_check(tmp_path: Path) -> None:
    now = [100.0]
    file = tmp_path / "faults.json"
    gateway = FaultRegistry([ABORT])
    gateway.share(file)
    replica = FaultRegistry(file=file, clock=lambda: now[0])
    assert replica.rules == (ABORT,)  # a process started later reads what is there

    gateway.replace([DELAY])
    assert replica.rules == (ABORT,)  # not before its next look
    now[0] += SHARED_CHECK_SECONDS
    assert replica.rules == (DELAY,)
    assert replica.rule_for("booking", "GET", "/api/holds") == DELAY

    replica.clear()  # the replica that got a push writes it for the others
    assert FaultRegistry(file=file).rules == ()


def test_a_file_that_is_missing_or_broken_leaves_the_rules_as_they_were(tmp_path: Path) -> None:
    now = [0.0]
    file = tmp_path / "faults.json"
    registry = FaultRegistry([ABORT], file=file, clock=lambda: now[0])
    assert registry.rules == (ABORT,)
    file.write_text('{"rules": [{"service": "music", "abort_percent": 10}]}')
    now[0] += SHARED_CHECK_SECONDS
    assert registry.rules == (ABORT,)
    assert FaultRegistry().rules == ()  # no file: the rules are this process's own, as before
