"""event details: description, image, doors time, venue address

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import boxoffice.platform.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('image_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('doors_at', boxoffice.platform.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('venue_address', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('venue_address')
        batch_op.drop_column('doors_at')
        batch_op.drop_column('image_url')
        batch_op.drop_column('description')
