"""Alembic migrations, one history per service (``boxoffice/<service>/migrations``).

A service's ``migrations/env.py`` is two lines: it hands its metadata to ``run_migrations``.

The platform keeps tables of its own in every service database (the bus's dead letters), with a history
of its own (``boxoffice/platform/migrations``, version table ``alembic_version_platform``) that
``upgrade`` applies after the service's. Each history compares only its own tables, so ``alembic check``
of a service does not see the platform's tables, and the other way round.
"""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from boxoffice.platform.bus import deadletters
from boxoffice.platform.db import Database

PLATFORM = "platform"
PLATFORM_TABLES = frozenset(deadletters.metadata.tables)


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"boxoffice.{service}:migrations")
    config.attributes["url"] = url
    config.attributes["service"] = service
    return config


def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Bring one service's database to ``revision`` (blocking; run it before serving, or in a thread)."""
    Database(url, name=service)  # creates the data dir for a SQLite file
    command.upgrade(alembic_config(service, url), revision)
    if revision == "head" and service != PLATFORM:
        command.upgrade(alembic_config(PLATFORM, url), "head")


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's env.py."""
    url: str = context.config.attributes["url"]
    platform = context.config.attributes["service"] == PLATFORM

    def include_name(name: str | None, type_: str, _parents: object) -> bool:
        if type_ != "table" or name is None:
            return True
        if platform:
            return name in PLATFORM_TABLES
        return name not in PLATFORM_TABLES and not name.startswith("alembic_version")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            version_table=f"alembic_version_{context.config.attributes['service']}",
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=metadata,
            literal_binds=True,
            version_table=f"alembic_version_{context.config.attributes['service']}",
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())
