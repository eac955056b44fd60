"""Add observations.resource_type: a stored record may be another FHIR resource (a night's DiagnosticReport).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every record stored before this revision is an Observation
    op.add_column("observations", sa.Column("resource_type", sa.String(32), nullable=False,
                                            server_default="Observation"))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("resource_type")
