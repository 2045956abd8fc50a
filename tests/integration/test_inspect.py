"""The read-only database inspector every service mounts (/api/<service>/db), on SQLite and PostgreSQL.

The console's promise is that the database refuses writes: these tests send writes in every disguise (plain,
inside a CTE, through a function, DDL, ATTACH) and check both the refusal's origin and that nothing changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from boxoffice.identity.deps import IdentitySettings
from boxoffice.platform.bus.tables import OUTBOX
from boxoffice.platform.settings import Settings
from boxoffice.tracking import store
from boxoffice.tracking.deps import TrackingSettings
from tests.harness.app import Running, running

pytestmark = pytest.mark.timeout(120)
ADMIN = {"email": "boss@example.com", "password": "boss-password-2026"}


@pytest.fixture
async def app(tmp_path: Path, db_factory: Any) -> AsyncIterator[Running]:
    configs = {
        "identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"],
                                     database_url=db_factory("identity")),
        "tracking": TrackingSettings(database_url=db_factory("tracking")),
    }
    # No workers: the outbox keeps the audit events, so the test can read them where they were written.
    async with running(Settings(data_dir=tmp_path), ["identity", "tracking"], configs=configs, workers=False) as app:
        yield app


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    tokens = (await client.post("/api/auth/login", json=ADMIN)).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def console(client: httpx.AsyncClient, headers: dict[str, str], service: str, sql: str) -> httpx.Response:
    return await client.post(f"/api/{service}/db/query", json={"sql": sql}, headers=headers)


async def test_tables_rows_and_masked_secrets(app: Running) -> None:
    headers = await admin_headers(app.client)
    described = await app.client.get("/api/identity/db", headers=headers)
    assert described.status_code == 200, described.text
    tables = {t["name"]: t for t in described.json()["tables"]}
    users = tables["users"]
    assert users["rows"] == 1
    columns = {c["name"]: c for c in users["columns"]}
    assert columns["password_hash"]["masked"] and not columns["email"]["masked"] and columns["id"]["primary_key"]
    assert any(i["unique"] and i["columns"] == ["email"] for i in users["indexes"]) or any(
        c["name"] == "email" for c in users["columns"]
    )
    events = {t["name"]: t for t in (await app.client.get("/api/tracking/db", headers=headers)).json()["tables"]}
    index_names = {i["name"] for i in events["tracking_events"]["indexes"]}
    assert {"ix_tracking_events_user", "ix_tracking_events_session", "ix_tracking_events_type"} <= index_names

    rows = await app.client.get("/api/identity/db/tables/users/rows", headers=headers,
                                params={"where_column": "email", "where_value": "boss@", "sort": "email"})
    assert rows.status_code == 200, rows.text
    body = rows.json()
    row = dict(zip(body["columns"], body["rows"][0], strict=True))
    assert body["total"] == 1 and row["email"] == ADMIN["email"] and row["password_hash"] == "••••••"
    selected = await console(app.client, headers, "identity", "SELECT email, password_hash FROM users")
    assert selected.status_code == 200, selected.text
    assert selected.json()["rows"] == [[ADMIN["email"], "••••••"]]
    if app.service("identity").db.is_sqlite:  # SQLite's authorizer withholds the column whatever its alias
        aliased = await console(app.client, headers, "identity", "SELECT password_hash AS plain FROM users")
        assert aliased.json()["rows"] == [[None]]

    nothing = await app.client.get("/api/identity/db/tables/users/rows", headers=headers,
                                   params={"where_column": "email", "where_value": "%"})
    assert nothing.json()["total"] == 0  # the filter is a literal substring, not a pattern
    assert (await app.client.get("/api/identity/db/tables/nope/rows", headers=headers)).status_code == 404
    bad_sort = await app.client.get("/api/identity/db/tables/users/rows", headers=headers,
                                    params={"sort": "email; DROP TABLE users"})
    assert bad_sort.status_code == 400


async def test_only_admins_may_look(app: Running) -> None:
    assert (await app.client.get("/api/tracking/db")).status_code == 401
    assert (await app.client.post("/api/tracking/db/query", json={"sql": "SELECT 1"})).status_code == 401
    email, password = "fan@example.com", "a-long-ticket-password"
    await app.client.post("/api/auth/register", json={"email": email, "password": password, "name": "Fan"})
    identity = app.service("identity")
    async with identity.db.uow() as uow:  # verified without the mailbox round trip: only the role matters here
        await uow.conn.exec_driver_sql(f"UPDATE users SET verified = true WHERE email = '{email}'")
        await uow.commit()
    login = await app.client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    fan = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await app.client.get("/api/tracking/db", headers=fan)).status_code == 403
    assert (await console(app.client, fan, "tracking", "SELECT 1")).status_code == 403


def writes(dialect: str) -> list[str]:
    common = [
        "INSERT INTO tracking_failed_events (reason, payload, failed_at) VALUES ('x', 'y', '2026-01-01')",
        "UPDATE tracking_failed_events SET reason = 'changed'",
        "DELETE FROM tracking_failed_events",
        "CREATE TABLE sneaky (id integer)",
        "DROP TABLE tracking_failed_events",
        "CREATE INDEX sneaky_ix ON tracking_failed_events (reason)",
    ]
    if dialect == "postgresql":
        return [
            *common,
            "WITH gone AS (DELETE FROM tracking_failed_events RETURNING id) SELECT count(*) FROM gone",
            "SELECT sneaky_write()",
            "SELECT nextval('tracking_failed_events_id_seq')",
            "TRUNCATE tracking_failed_events",
        ]
    return [
        *common,
        "WITH x AS (SELECT 1) INSERT INTO tracking_failed_events (reason, payload, failed_at) "
        "SELECT 'x', 'y', '2026-01-01' FROM x",
        "WITH x AS (SELECT 1) DELETE FROM tracking_failed_events",
        "ATTACH DATABASE 'elsewhere.db' AS other",
        "PRAGMA journal_mode = DELETE",
        "REPLACE INTO tracking_failed_events (id, reason, payload, failed_at) VALUES (1, 'x', 'y', '2026-01-01')",
    ]


async def test_the_database_refuses_every_write_the_console_is_sent(app: Running) -> None:
    headers = await admin_headers(app.client)
    tracking = app.service("tracking")
    db = tracking.db
    async with db.uow() as uow:
        await store.insert_failed(uow.conn, [("e-1", "why", "{}")], tracking.now())
        if db.dialect == "postgresql":
            await uow.conn.exec_driver_sql(
                "CREATE FUNCTION sneaky_write() RETURNS bigint LANGUAGE sql AS "
                "$$ INSERT INTO tracking_failed_events (reason, payload, failed_at) VALUES ('f', 'f', now()) "
                "RETURNING id $$"
            )
        await uow.commit()
    async with db.read() as conn:
        before = (await conn.execute(select(func.count()).select_from(store.failed_events))).scalar_one()
        outbox_before = (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar_one()

    statements = writes(db.dialect)
    for sql in statements:
        response = await console(app.client, headers, "tracking", sql)
        assert response.status_code == 400, (sql, response.text)
        detail = response.json()["detail"]
        # The refusal comes from the database (read-only transaction, mode=ro, the authorizer), not from us.
        assert detail.startswith("The database refused the statement"), (sql, detail)
        if db.dialect == "postgresql":
            assert "read-only transaction" in detail, (sql, detail)
        else:
            assert "not authorized" in detail or "readonly" in detail, (sql, detail)

    async with db.read() as conn:
        after = (await conn.execute(select(func.count()).select_from(store.failed_events))).scalar_one()
        reasons = (await conn.execute(select(store.failed_events.c.reason))).scalars().all()
        outbox_after = (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar_one()
        tables = await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync))
    assert after == before == 1 and reasons == ["why"]
    assert "sneaky" not in tables
    # Every statement was audited before it ran (stored through the outbox), refused or not.
    assert outbox_after - outbox_before == len(statements)

    for sql in ("COMMIT", "SET statement_timeout = 0", "BEGIN"):
        refused = await console(app.client, headers, "tracking", sql)
        assert refused.status_code == 400 and "transaction control" in refused.json()["detail"]


async def test_the_console_caps_rows_and_stops_slow_statements(app: Running) -> None:
    headers = await admin_headers(app.client)
    db = app.service("tracking").db
    many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n"
    capped = await console(app.client, headers, "tracking", many)
    assert capped.status_code == 200, capped.text
    assert len(capped.json()["rows"]) == 500 and capped.json()["truncated"] is True
    assert capped.json()["columns"] == ["i"]
    slow = (
        "SELECT pg_sleep(10)" if db.dialect == "postgresql"
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    )
    stopped = await console(app.client, headers, "tracking", slow)
    assert stopped.status_code == 400 and "was stopped" in stopped.json()["detail"], stopped.text
    broken = await console(app.client, headers, "tracking", "SELEC nonsense")
    assert broken.status_code == 400


async def test_every_service_with_a_database_answers_at_its_own_path(tmp_path: Path) -> None:
    """No route of a service may shadow its inspector (payments has /api/payments/{id}, for one)."""
    from boxoffice.cli import SERVICES

    names = [name for name, cls in SERVICES.items() if cls.has_database]
    configs = {"identity": IdentitySettings(admin_email=ADMIN["email"], admin_password=ADMIN["password"])}
    async with running(Settings(data_dir=tmp_path), names, configs=configs, workers=False) as app:
        headers = await admin_headers(app.client)
        for name in names:
            response = await app.client.get(f"/api/{name}/db", headers=headers)
            assert response.status_code == 200, (name, response.text)
            assert response.json()["service"] == name and response.json()["tables"]
