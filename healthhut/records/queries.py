"""Read-only queries for clinicians, the CLI `records` commands and export; RecordStore runs them in a snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from healthhut.records.drafts import PatientRef
from healthhut.records.tables import DeviceRow, ObservationRow, OutboxRow, PatientRow, ReadingRow

DEVICES = DeviceRow.__table__  # type: ignore[attr-defined]
OBSERVATIONS = ObservationRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
PATIENTS = PatientRow.__table__  # type: ignore[attr-defined]
READINGS = ReadingRow.__table__  # type: ignore[attr-defined]

NORMAL_INTERPRETATION = "N"


@dataclass(frozen=True, slots=True)
class PatientSummary:
    """A resident with their observation count; `identifier_value` is personal data (screens, not logs)."""

    id: int
    identifier_system: str
    identifier_value: str
    observation_count: int
    last_effective_at: datetime | None

    def __repr__(self) -> str:
        return f"PatientSummary(id={self.id}, observations={self.observation_count})"


@dataclass(frozen=True, slots=True)
class ObservationView:
    """One stored observation as listings show it; `json` is the stored FHIR text (values live there)."""

    observation_id: int
    reading_id: int
    patient_id: int | None
    device_key: str
    code: str
    mdc_code: str | None
    effective_at: datetime
    interpretation: str | None
    outbox_state: str | None
    json: str

    def __repr__(self) -> str:
        return f"ObservationView(observation_id={self.observation_id}, code={self.code!r})"


@dataclass(frozen=True, slots=True)
class HeldReading:
    """A reading waiting for a resident: what staff pick from before `assign_patient`."""

    reading_id: int
    device_key: str
    kind: str
    effective_at: datetime
    received_at: datetime
    observation_ids: tuple[int, ...]


def _summaries(conn: Connection, *where: Any) -> list[PatientSummary]:
    p, obs = PATIENTS.c, OBSERVATIONS.c
    query = (select(p.id, p.identifier_system, p.identifier_value, func.count(obs.id),
                    func.max(obs.effective_at))
             .select_from(PATIENTS).outerjoin(OBSERVATIONS, obs.patient_id == p.id)
             .where(*where).group_by(p.id).order_by(p.id))
    return [PatientSummary(row[0], row[1], row[2], int(row[3]), row[4]) for row in conn.execute(query)]


def list_patients(conn: Connection) -> list[PatientSummary]:
    return _summaries(conn)


def find_patient(conn: Connection, system: str, value: str) -> PatientSummary | None:
    p = PATIENTS.c
    found = _summaries(conn, p.identifier_system == system, p.identifier_value == value)
    return found[0] if found else None


def _patient_id(conn: Connection, patient: PatientRef | int) -> int | None:
    if isinstance(patient, int):
        return patient
    p = PATIENTS.c
    return conn.execute(select(p.id).where(p.identifier_system == patient.system,
                                           p.identifier_value == patient.value)).scalar()


def _views() -> Select[Any]:
    obs, o = OBSERVATIONS.c, OUTBOX.c
    return (select(obs.id, obs.reading_id, obs.patient_id, obs.device_key, obs.code, obs.mdc_code,
                   obs.effective_at, obs.interpretation, o.state, obs.resource_json)
            .select_from(OBSERVATIONS).outerjoin(OUTBOX, o.observation_id == obs.id))


def _run_views(conn: Connection, query: Select[Any]) -> list[ObservationView]:
    return [ObservationView(*row) for row in conn.execute(query)]


def patient_timeline(conn: Connection, patient: PatientRef | int, since: datetime | None) -> list[ObservationView]:
    patient_id = _patient_id(conn, patient)
    if patient_id is None:
        return []
    obs = OBSERVATIONS.c
    query = _views().where(obs.patient_id == patient_id)
    if since is not None:
        query = query.where(obs.effective_at >= since)
    return _run_views(conn, query.order_by(obs.effective_at, obs.id))


def flagged(conn: Connection, since: datetime | None) -> list[ObservationView]:
    obs = OBSERVATIONS.c
    # spelled like ix_observations_flagged's WHERE so SQLite can use that partial index
    query = _views().where(obs.interpretation.is_not(None), obs.interpretation != NORMAL_INTERPRETATION)
    if since is not None:
        query = query.where(obs.effective_at >= since)
    return _run_views(conn, query.order_by(obs.effective_at, obs.id))


def unassigned(conn: Connection) -> list[HeldReading]:
    r, obs = READINGS.c, OBSERVATIONS.c
    query = (select(r.id, r.device_key, r.kind, r.effective_at, r.received_at,
                    func.group_concat(obs.id))
             .select_from(READINGS).outerjoin(OBSERVATIONS, obs.reading_id == r.id)
             .where(r.patient_id.is_(None)).group_by(r.id).order_by(r.effective_at, r.id))
    return [HeldReading(row[0], row[1], row[2], row[3], row[4],
                        tuple(sorted(int(i) for i in row[5].split(","))) if row[5] else ())
            for row in conn.execute(query)]


def held_reading_json(conn: Connection, reading_ids: Sequence[int]) -> dict[int, str]:
    """Stored Reading JSON of those of `reading_ids` still without a resident."""
    r = READINGS.c
    query = select(r.id, r.reading_json).where(r.id.in_(list(reading_ids)), r.patient_id.is_(None))
    return {row[0]: row[1] for row in conn.execute(query.order_by(r.id))}


def reading_json(conn: Connection, reading_id: int) -> str | None:
    r = READINGS.c
    return conn.execute(select(r.reading_json).where(r.id == reading_id)).scalar()


def _selection(conn: Connection, query: Select[Any], patient: PatientRef | int | None,
               since: datetime | None) -> Select[Any] | None:
    """`query` narrowed to one resident and/or to observations effective since `since`; None: nothing matches."""
    obs = OBSERVATIONS.c
    if patient is not None:
        patient_id = _patient_id(conn, patient)
        if patient_id is None:
            return None
        query = query.where(obs.patient_id == patient_id)
    if since is not None:
        query = query.where(obs.effective_at >= since)
    return query


def observation_json_page(conn: Connection, *, after: int, limit: int, patient: PatientRef | int | None,
                          since: datetime | None) -> list[tuple[int, str]]:
    """One page of (id, Observation text) with id > `after`: keyset paging, so export streams."""
    obs = OBSERVATIONS.c
    query = _selection(conn, select(obs.id, obs.resource_json).where(obs.id > after), patient, since)
    if query is None:
        return []
    return [(row[0], row[1]) for row in conn.execute(query.order_by(obs.id).limit(limit))]


def observation_view_page(conn: Connection, *, after: int, limit: int, patient: PatientRef | int | None,
                          since: datetime | None) -> list[ObservationView]:
    """One page of ObservationViews with id > `after`, in id order."""
    obs = OBSERVATIONS.c
    query = _selection(conn, _views().where(obs.id > after), patient, since)
    return [] if query is None else _run_views(conn, query.order_by(obs.id).limit(limit))


def referenced_resources(conn: Connection, *, patient: PatientRef | int | None,
                         since: datetime | None) -> list[tuple[str, str]]:
    """(fullUrl, resource text) of the Patients and Devices the selected observations reference."""
    obs, p, d = OBSERVATIONS.c, PATIENTS.c, DEVICES.c
    patient_ids = _selection(conn, select(obs.patient_id).where(obs.patient_id.is_not(None)), patient, since)
    device_keys = _selection(conn, select(obs.device_key), patient, since)
    gateway_ids = _selection(conn, select(obs.gateway_device_id).where(obs.gateway_device_id.is_not(None)),
                             patient, since)
    if patient_ids is None or device_keys is None or gateway_ids is None:
        return []
    patients = select(p.ref, p.resource_json).where(p.id.in_(patient_ids.distinct()), p.ref.is_not(None),
                                                    p.resource_json.is_not(None)).order_by(p.id)
    devices = select(d.ref, d.resource_json).where(
        (d.key.in_(device_keys.distinct()) | d.id.in_(gateway_ids.distinct())), d.ref.is_not(None)).order_by(d.id)
    return [(ref, text) for query in (patients, devices) for ref, text in conn.execute(query)]
