"""initial tracking schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 08:00:00

On PostgreSQL ``tracking_events`` is partitioned by day of ``ts`` (its key must then hold ``ts``); the
processor creates the day partitions. On SQLite it is one table keyed by ``event_id``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import boxoffice.platform.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "inbox",
        sa.Column("consumer_group", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id"),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tracking_events",
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
        sa.PrimaryKeyConstraint(*(["event_id", "ts"] if postgres else ["event_id"])),
        postgresql_partition_by="RANGE (ts)",
    )
    for name, columns in [
        ("ix_tracking_events_ts", ["ts", "event_id"]),
        ("ix_tracking_events_user", ["user_id", "ts", "event_id"]),
        ("ix_tracking_events_session", ["session_id", "ts", "event_id"]),
        ("ix_tracking_events_anonymous", ["anonymous_id", "ts", "event_id"]),
        ("ix_tracking_events_type", ["type", "ts", "event_id"]),
    ]:
        op.create_index(name, "tracking_events", columns, unique=False)
    op.create_table(
        "tracking_failed_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("failed_at", boxoffice.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tracking_failed_events_failed_at", "tracking_failed_events", ["failed_at"], unique=False)


def downgrade() -> None:
    op.drop_table("tracking_failed_events")
    op.drop_table("tracking_events")
    op.drop_table("outbox")
    op.drop_table("inbox")
