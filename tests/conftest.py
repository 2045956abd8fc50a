"""Fixtures shared by every test: real servers on loopback, started once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.postgres import create_database, postgres_server
from tests.harness.smtp import Inbox, smtp_server
from tests.harness.tansu import Tansu, tansu_broker


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(postgres_admin_url: str) -> str:
    """A fresh PostgreSQL database for this test (``postgresql+asyncpg://...``)."""
    return create_database(postgres_admin_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes databases for one test, once on SQLite and once on PostgreSQL: ``db_factory("booking")``."""
    if request.param == "sqlite":
        return lambda name: f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    admin_url = request.getfixturevalue("postgres_admin_url")
    return lambda name: create_database(admin_url, prefix=name)


@pytest.fixture
def db_url(db_factory: Callable[[str], str]) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return db_factory("test")


@pytest.fixture
def smtp() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on loopback; ``smtp.messages`` is what it received."""
    with smtp_server() as inbox:
        yield inbox


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
