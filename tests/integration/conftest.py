"""Fixtures of the integration tests: real brokers on loopback, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.harness.tansu import Tansu, tansu_broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Tansu]:
    with tansu_broker() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Tansu) -> str:
    """``127.0.0.1:PORT`` of a Tansu broker shared by the session (tests use their own topics and groups)."""
    return kafka_broker.bootstrap


@pytest.fixture
def own_kafka_broker() -> Iterator[Tansu]:
    """A broker of this test alone, for tests that stop and restart it."""
    with tansu_broker() as broker:
        yield broker
