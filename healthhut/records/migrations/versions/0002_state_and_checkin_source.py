"""Add the state key/value table and checkins.source (who checked the resident in: kiosk, staff, qr...).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    # check-ins recorded before this revision did not say where they came from: they were typed in by staff
    op.add_column("checkins", sa.Column("source", sa.String(32), nullable=False, server_default="manual"))


def downgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.drop_column("source")
    op.drop_table("state")
