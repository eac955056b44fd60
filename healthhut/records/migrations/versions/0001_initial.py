"""Initial record store schema: patients, devices, readings, observations, outbox, rejections, checkins, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.String(32)  # fixed-width UTC ISO-8601 text, see healthhut.records.tables.utc_text


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("identifier_system", sa.String(255), nullable=False),
        sa.Column("identifier_value", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(64)),
        sa.Column("resource_json", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("identifier_system", "identifier_value", name="uq_patients_identifier"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("ref", sa.String(64)),
        sa.Column("resource_json", sa.Text, nullable=False),
        sa.Column("first_seen", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
    )
    op.create_table(
        "readings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("local_key", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("device_key", sa.String(128), nullable=False),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id")),
        sa.Column("effective_at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("reading_json", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    # only held readings are looked up by "no patient": a partial index costs attributed readings nothing
    op.create_index("ix_readings_held", "readings", ["id"], sqlite_where=sa.text("patient_id IS NULL"))
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reading_id", sa.Integer, sa.ForeignKey("readings.id"), nullable=False),
        sa.Column("local_key", sa.String(255), nullable=False, unique=True),
        sa.Column("identifier", sa.String(512), unique=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("mdc_code", sa.String(64)),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id")),
        sa.Column("device_key", sa.String(128), nullable=False),
        sa.Column("gateway_device_id", sa.Integer, sa.ForeignKey("devices.id")),
        sa.Column("effective_at", TIME, nullable=False),
        sa.Column("interpretation", sa.String(8)),
        sa.Column("resource_json", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("ix_observations_reading_id", "observations", ["reading_id"])
    op.create_index("ix_observations_patient_effective", "observations", ["patient_id", "effective_at"])
    op.create_index("ix_observations_effective_at", "observations", ["effective_at"])
    op.create_index("ix_observations_code", "observations", ["code"])
    op.create_index("ix_observations_flagged", "observations", ["interpretation", "effective_at"],
                    sqlite_where=sa.text("interpretation IS NOT NULL AND interpretation != 'N'"))
    op.create_index("ix_observations_device_key", "observations", ["device_key"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("observation_id", sa.Integer, sa.ForeignKey("observations.id"), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("lease_until", TIME),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("last_error", sa.Text),
        sa.Column("dead_reason", sa.Text),
        sa.Column("outcome_json", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("sent_at", TIME),
        sa.Column("dead_at", TIME),
    )
    op.create_index("ix_outbox_state_next_attempt", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("device_key", sa.String(128)),
        sa.Column("codec", sa.String(64)),
        sa.Column("raw_hex", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_rejections_received_at", "rejections", ["received_at"])
    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("station", sa.String(128)),
        sa.Column("at", TIME, nullable=False),
    )
    op.create_index("ix_checkins_patient_id", "checkins", ["patient_id"])
    op.create_index("ix_checkins_at", "checkins", ["at"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.Integer),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    for table in ("audit", "checkins", "rejections", "outbox", "observations", "readings", "devices", "patients"):
        op.drop_table(table)
