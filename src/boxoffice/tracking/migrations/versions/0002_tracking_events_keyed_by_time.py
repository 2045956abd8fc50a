"""tracking_events keyed by (ts, event_id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:10:00

The key becomes ``(ts, event_id)`` on both databases, and the separate time index ``(ts, event_id)`` goes (the
key is that index). On SQLite the table is rebuilt as a ``WITHOUT ROWID`` table clustered on the key: a batch
of events appends near the end of the table instead of inserting into an index of random UUIDs, and each event
writes five B-trees instead of seven. PostgreSQL already had ``ts`` in its key (its partition key); the key's
columns swap, for the same reason (the primary key index of each partition is appended to, not scattered).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import boxoffice.platform.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_tracking_events_user", ["user_id", "ts", "event_id"]),
    ("ix_tracking_events_session", ["session_id", "ts", "event_id"]),
    ("ix_tracking_events_anonymous", ["anonymous_id", "ts", "event_id"]),
    ("ix_tracking_events_type", ["type", "ts", "event_id"]),
]
COLUMNS = (
    "event_id, ts, received_at, type, name, anonymous_id, session_id, user_id, url, path, referrer, title, element, "
    "props, browser, os, device, is_bot, subject_type, subject_id"
)


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("ts", boxoffice.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("received_at", boxoffice.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("anonymous_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("element", sa.Text(), nullable=True),
        sa.Column("props", sa.Text(), nullable=True),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("os", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
    ]


def _rebuild_sqlite(key: list[str], *, with_rowid: bool, time_index: bool) -> None:
    """SQLite cannot change a table's key: a new table, the rows copied over, the old one dropped."""
    op.create_table(
        "tracking_events_new",
        *_columns(),
        sa.PrimaryKeyConstraint(*key, name="tracking_events_pkey"),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(f"INSERT INTO tracking_events_new ({COLUMNS}) SELECT {COLUMNS} FROM tracking_events")  # noqa: S608
    op.drop_table("tracking_events")
    op.rename_table("tracking_events_new", "tracking_events")
    for name, columns in ([("ix_tracking_events_ts", ["ts", "event_id"])] if time_index else []) + INDEXES:
        op.create_index(name, "tracking_events", columns, unique=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tracking_events DROP CONSTRAINT tracking_events_pkey")
        op.execute("ALTER TABLE tracking_events ADD CONSTRAINT tracking_events_pkey PRIMARY KEY (ts, event_id)")
        op.drop_index("ix_tracking_events_ts", table_name="tracking_events")
        return
    _rebuild_sqlite(["ts", "event_id"], with_rowid=False, time_index=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tracking_events DROP CONSTRAINT tracking_events_pkey")
        op.execute("ALTER TABLE tracking_events ADD CONSTRAINT tracking_events_pkey PRIMARY KEY (event_id, ts)")
        op.create_index("ix_tracking_events_ts", "tracking_events", ["ts", "event_id"], unique=False)
        return
    _rebuild_sqlite(["event_id"], with_rowid=True, time_index=True)
