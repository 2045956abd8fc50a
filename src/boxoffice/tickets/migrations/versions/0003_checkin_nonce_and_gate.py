"""check-in: the gate's name and the scan's client nonce (a retried scan is the same admission)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkin_gate', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('checkin_nonce', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('checkin_nonce')
        batch_op.drop_column('checkin_gate')
