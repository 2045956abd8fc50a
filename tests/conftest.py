"""Fixtures shared by every test: real servers on loopback, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.postgres import create_database, postgres_server
from tests.harness.smtp import Inbox, smtp_server


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
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return create_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def smtp() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on loopback; ``smtp.messages`` is what it received."""
    with smtp_server() as inbox:
        yield inbox
