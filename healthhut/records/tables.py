"""SQLModel table classes of the record store: the persistence shape, distinct from Reading and FHIR.

The schema here is what the newest Alembic revision builds; a test compares the two so they cannot drift.
Times are stored as fixed-width UTC ISO-8601 text (`utc_text`), so text order is time order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from healthhut.errors import StoreError


def utc_text(value: datetime) -> str:
    """The stored form of an aware datetime: UTC, microseconds, fixed width ('2026-01-02T03:04:05.000000+00:00')."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError("the store only accepts timezone-aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as `utc_text`; read back as an aware UTC datetime."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else utc_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_utc_text(value)


def _time(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _text(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_type=Text, nullable=nullable)


def _fk(target: str, *, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Integer, ForeignKey(target), nullable=nullable))


class PatientRow(SQLModel, table=True):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("identifier_system", "identifier_value", name="uq_patients_identifier"),)

    id: int | None = Field(default=None, primary_key=True)
    identifier_system: str = Field(sa_type=String(255))
    identifier_value: str = Field(sa_type=String(255))  # personal data: never logged
    ref: str | None = Field(default=None, sa_type=String(64))  # pseudonymous urn:uuid used in references
    resource_json: str | None = _text(nullable=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class DeviceRow(SQLModel, table=True):
    __tablename__ = "devices"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_type=String(128), unique=True)
    ref: str | None = Field(default=None, sa_type=String(64))
    resource_json: str = _text()
    first_seen: datetime = _time()
    last_seen: datetime = _time()


class ReadingRow(SQLModel, table=True):
    __tablename__ = "readings"

    id: int | None = Field(default=None, primary_key=True)
    local_key: str = Field(sa_type=String(255), unique=True)  # device key + kind + device time/sequence
    kind: str = Field(sa_type=String(32))
    device_key: str = Field(sa_type=String(128))
    patient_id: int | None = _fk("patients.id")
    effective_at: datetime = _time()
    received_at: datetime = _time()
    reading_json: str = _text()
    created_at: datetime = _time()

    # every index is one more page per ingest commit: only held readings are found by "no patient"
    __table_args__ = (Index("ix_readings_held", "id", sqlite_where=text("patient_id IS NULL")),)


class ObservationRow(SQLModel, table=True):
    __tablename__ = "observations"

    id: int | None = Field(default=None, primary_key=True)
    reading_id: int = _fk("readings.id", nullable=False)
    local_key: str = Field(sa_type=String(255), unique=True)
    identifier: str | None = Field(default=None, sa_type=String(512), unique=True, nullable=True)
    code: str = Field(sa_type=String(64))  # not indexed (0004): nothing searches by code
    mdc_code: str | None = Field(default=None, sa_type=String(64), nullable=True)
    patient_id: int | None = _fk("patients.id")
    device_key: str = Field(sa_type=String(128))  # not indexed (0004): read back, never searched
    gateway_device_id: int | None = _fk("devices.id")
    effective_at: datetime = _time(index=True)
    interpretation: str | None = Field(default=None, sa_type=String(8), nullable=True)
    resource_json: str = _text()  # the resource text exactly as the normaliser serialised it
    # added in revision 0003: "Observation", or "DiagnosticReport" for a report grouping a reading's records
    resource_type: str = Field(default="Observation", sa_type=String(32),
                               sa_column_kwargs={"server_default": "Observation"})
    created_at: datetime = _time()
    updated_at: datetime = _time()

    __table_args__ = (
        Index("ix_observations_reading_id", "reading_id"),
        Index("ix_observations_patient_effective", "patient_id", "effective_at"),
        # flagged() lists the abnormal ones; normal readings (most) stay out of this index
        Index("ix_observations_flagged", "interpretation", "effective_at",
              sqlite_where=text("interpretation IS NOT NULL AND interpretation != 'N'")),
    )


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    observation_id: int = Field(sa_column=Column(Integer, ForeignKey("observations.id"), nullable=False,
                                                 unique=True))
    state: str = Field(sa_type=String(16))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _time()
    lease_until: datetime | None = _time(nullable=True)
    claimed_by: str | None = Field(default=None, sa_type=String(128), nullable=True)
    last_error: str | None = _text(nullable=True)
    dead_reason: str | None = _text(nullable=True)
    outcome_json: str | None = _text(nullable=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()
    sent_at: datetime | None = _time(nullable=True)
    dead_at: datetime | None = _time(nullable=True)

    __table_args__ = (Index("ix_outbox_state_next_attempt", "state", "next_attempt_at"),)


class RejectionRow(SQLModel, table=True):
    __tablename__ = "rejections"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _time(index=True)
    device_key: str | None = Field(default=None, sa_type=String(128), nullable=True)
    codec: str | None = Field(default=None, sa_type=String(64), nullable=True)
    raw_hex: str | None = _text(nullable=True)
    reason: str = _text()


class CheckinRow(SQLModel, table=True):
    __tablename__ = "checkins"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = _fk("patients.id", nullable=False)
    station: str | None = Field(default=None, sa_type=String(128), nullable=True)
    # added in revision 0002; rows from before it read "manual"
    source: str = Field(default="manual", sa_type=String(32), sa_column_kwargs={"server_default": "manual"})
    at: datetime = _time(index=True)

    __table_args__ = (Index("ix_checkins_patient_id", "patient_id"),)


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _time()  # no index: audit is read by id, which follows time
    actor: str = Field(sa_type=String(128))
    action: str = Field(sa_type=String(64))
    entity: str = Field(sa_type=String(64))
    entity_id: int | None = Field(default=None, nullable=True)
    detail: str | None = _text(nullable=True)  # counts and reasons only, never PHI


class StateRow(SQLModel, table=True):
    """Small key/value table (revision 0002): sync status, circuit state, device high-water marks."""

    __tablename__ = "state"

    key: str = Field(sa_type=String(255), primary_key=True)
    value: str = _text()
    updated_at: datetime = _time()


METADATA = SQLModel.metadata
