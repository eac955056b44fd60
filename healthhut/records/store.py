"""RecordStore: the only code that touches the database (readings, observations, outbox, audit, state).

Every write is one transaction. `save_reading` is the hot path (every measurement of every device passes
through it), so it speaks plain SQL on the pooled sqlite3 connection with cached prepared statements and
stores the normaliser's JSON text untouched; everything else uses SQLAlchemy Core over the SQLModel tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from healthhut.errors import StoreError
from healthhut.readings import Reading, TimeSource
from healthhut.records import db, outbox, queries
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.outbox import DeadLetter, OutboxItem, OutboxState
from healthhut.records.queries import HeldReading, ObservationView, PatientSummary
from healthhut.records.reading_json import reading_from_json, reading_to_json
from healthhut.records.tables import (
    AuditRow,
    CheckinRow,
    ObservationRow,
    OutboxRow,
    PatientRow,
    ReadingRow,
    RejectionRow,
    StateRow,
    utc_text,
)

__all__ = ["DeadLetter", "HeldReading", "ObservationView", "OutboxItem", "OutboxState", "PatientSummary",
           "RecordStore", "StoreOutcome", "StoreResult", "reading_local_key"]

log = logging.getLogger(__name__)

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
OBSERVATIONS = ObservationRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
PATIENTS = PatientRow.__table__  # type: ignore[attr-defined]
READINGS = ReadingRow.__table__  # type: ignore[attr-defined]

INGEST_ACTOR = "ingest"


class StoreOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class StoreResult:
    outcome: StoreOutcome
    reading_id: int | None            # None when the whole reading was a duplicate
    observation_ids: tuple[int, ...]  # newly stored
    duplicates: int                   # drafts skipped: their local_key/identifier already existed


def reading_local_key(reading: Reading) -> str:
    """Device key + kind + the device's own time token: unique per measurement before any attribution."""
    if reading.time_source is TimeSource.DEVICE and reading.measured_at is not None:
        token = "t" + utc_text(reading.measured_at)
    elif reading.sequence is not None:
        token = f"s{reading.sequence}"
    else:
        token = "r" + utc_text(reading.received_at)
    return f"{reading.device.key}|{reading.kind.value}|{token}"


def _dumps(resource: dict[str, Any]) -> str:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


def _ref(resource: dict[str, Any] | None) -> str | None:
    rid = None if resource is None else resource.get("id")
    return None if rid is None else str(rid)


# --- the hot path's statements (sqlite3 caches them prepared, keyed by text) ---------------------------
_UPSERT_DEVICE = (
    "INSERT INTO devices (key, ref, resource_json, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET ref = excluded.ref, resource_json = excluded.resource_json, "
    "last_seen = excluded.last_seen RETURNING id")
_UPSERT_PATIENT = (
    "INSERT INTO patients (identifier_system, identifier_value, ref, resource_json, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(identifier_system, identifier_value) DO UPDATE SET "
    "ref = coalesce(excluded.ref, ref), resource_json = coalesce(excluded.resource_json, resource_json), "
    "updated_at = excluded.updated_at RETURNING id, resource_json")
_INSERT_READING = (
    "INSERT INTO readings (local_key, kind, device_key, patient_id, effective_at, received_at, reading_json, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(local_key) DO NOTHING RETURNING id")
_FIND_READING = "SELECT id FROM readings WHERE local_key = ?"
_INSERT_OBSERVATION = (  # no conflict target: a clash on local_key OR identifier makes it a duplicate
    "INSERT INTO observations (reading_id, local_key, identifier, code, mdc_code, patient_id, device_key, "
    "gateway_device_id, effective_at, interpretation, resource_json, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id")
_INSERT_OUTBOX = (
    "INSERT INTO outbox (observation_id, state, attempts, next_attempt_at, created_at, updated_at) "
    "VALUES (?, ?, 0, ?, ?, ?)")
_INSERT_AUDIT = "INSERT INTO audit (at, actor, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, ?, ?)"


class RecordStore:
    """The record store on one SQLite file. Synchronous: asyncio callers use `asyncio.to_thread`."""

    def __init__(self, path: Path, engine: Any) -> None:
        self.path = path
        self._engine = engine

    @classmethod
    def open(cls, path: str | Path, *, migrate: bool = True) -> RecordStore:
        resolved, engine = db.open_engine(path, create=True)
        try:
            if migrate:
                db.upgrade(engine)
            else:
                status = db.status(engine, resolved)
                if not status.up_to_date:
                    raise StoreError(f"database schema is at {status.current}, this healthhut needs {status.head}",
                                     advice="run `healthhut db migrate`")
        except BaseException:
            engine.dispose()
            raise
        db.tighten_sidecars(resolved)
        return cls(resolved, engine)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _write(self, action: Callable[[Connection], Any]) -> Any:
        try:
            with db.writing(self._engine) as conn:
                return action(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {type(exc).__name__}") from exc

    def _read(self, action: Callable[[Connection], Any]) -> Any:
        try:
            with db.reading(self._engine) as conn:
                return action(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {type(exc).__name__}") from exc

    # --- ingest ----------------------------------------------------------------------------------------
    def save_reading(self, reading: Reading, drafts: Sequence[ObservationDraft], *,
                     patient: PatientRef | None, patient_resource: dict[str, Any] | None,
                     device_resource: dict[str, Any], now: datetime,
                     gateway_resource: dict[str, Any] | None = None) -> StoreResult:
        """Store the reading, its observations and their outbox rows in one transaction (see STORE_API)."""
        if patient is not None and any(d.identifier is None for d in drafts):
            raise StoreError("an attributed observation needs its identifier")
        at = utc_text(now)
        device_key = reading.device.key
        reading_row = (reading_local_key(reading), reading.kind.value, device_key, None,
                       utc_text(reading.effective_at), utc_text(reading.received_at), reading_to_json(reading), at)
        state = OutboxState.PENDING.value if patient is not None else OutboxState.HELD.value
        raw = self._engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(_UPSERT_DEVICE, (device_key, _ref(device_resource), _dumps(device_resource), at, at))
                cur.fetchall()
                gateway_id = None
                if gateway_resource is not None:
                    cur.execute(_UPSERT_DEVICE, (f"gateway:{_ref(gateway_resource)}", _ref(gateway_resource),
                                                 _dumps(gateway_resource), at, at))
                    gateway_id = cur.fetchall()[0][0]
                patient_id = None
                if patient is not None:
                    cur.execute(_UPSERT_PATIENT, (patient.system, patient.value, _ref(patient_resource),
                                                  None if patient_resource is None else _dumps(patient_resource),
                                                  at, at))
                    patient_id, stored_resource = cur.fetchall()[0]
                    if stored_resource is None:
                        raise StoreError("no Patient resource is stored for this resident")
                    reading_row = (*reading_row[:3], patient_id, *reading_row[4:])
                cur.execute(_INSERT_READING, reading_row)
                inserted = cur.fetchall()
                new_reading = bool(inserted)
                if new_reading:
                    reading_id = inserted[0][0]
                else:
                    cur.execute(_FIND_READING, (reading_row[0],))
                    reading_id = cur.fetchall()[0][0]
                observation_ids: list[int] = []
                for d in drafts:
                    cur.execute(_INSERT_OBSERVATION, (
                        reading_id, d.local_key, d.identifier, d.code, d.mdc_code, patient_id, device_key,
                        gateway_id, utc_text(d.effective_at), d.interpretation, d.json, at, at))
                    row = cur.fetchall()
                    if row:
                        observation_ids.append(row[0][0])
                        cur.execute(_INSERT_OUTBOX, (row[0][0], state, at, at, at))
                duplicates = len(drafts) - len(observation_ids)
                if not observation_ids and (drafts or not new_reading):
                    cur.execute("ROLLBACK")
                    log.debug("reading duplicate device=%s drafts=%d", device_key, len(drafts))
                    return StoreResult(StoreOutcome.DUPLICATE, None, (), duplicates)
                outcome = StoreOutcome.STORED if patient is not None else StoreOutcome.HELD
                cur.execute(_INSERT_AUDIT, (at, INGEST_ACTOR, f"reading.{outcome.value}", "reading", reading_id,
                                            f"observations={len(observation_ids)} duplicates={duplicates}"))
                cur.execute("COMMIT")
            except BaseException:
                if raw.driver_connection.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
        except StoreError:
            raise
        except Exception as exc:  # sqlite3.Error and friends: our error, without the SQL parameters
            raise StoreError(f"saving a reading failed: {type(exc).__name__}") from exc
        finally:
            raw.close()
        log.debug("reading %d %s observations=%d duplicates=%d", reading_id, outcome.value,
                  len(observation_ids), duplicates)
        return StoreResult(outcome, reading_id, tuple(observation_ids), duplicates)

    def record_rejection(self, *, device_key: str | None, codec: str | None, raw_hex: str | None,
                         reason: str, now: datetime) -> int:
        table = RejectionRow.__table__  # type: ignore[attr-defined]
        rejection_id: int = self._write(lambda conn: conn.execute(insert(table).values(
            received_at=now, device_key=device_key, codec=codec, raw_hex=raw_hex, reason=reason
        ).returning(table.c.id)).scalar_one())
        log.info("rejection %d recorded device=%s codec=%s reason=%s", rejection_id, device_key, codec, reason)
        return rejection_id

    def _patient_id(self, conn: Connection, patient: PatientRef, resource: dict[str, Any] | None,
                    now: datetime) -> int:
        p = PATIENTS.c
        values: dict[str, Any] = {"identifier_system": patient.system, "identifier_value": patient.value,
                                  "created_at": now, "updated_at": now}
        changes: dict[str, Any] = {"updated_at": now}
        if resource is not None:
            values.update(ref=_ref(resource), resource_json=_dumps(resource))
            changes.update(ref=_ref(resource), resource_json=_dumps(resource))
        stmt = sqlite_insert(PATIENTS).values(**values).on_conflict_do_update(
            index_elements=[p.identifier_system, p.identifier_value], set_=changes).returning(p.id)
        return int(conn.execute(stmt).scalar_one())

    def _audit(self, conn: Connection, *, now: datetime, actor: str, action: str, entity: str,
               entity_id: int | None, detail: str | None) -> None:
        conn.execute(insert(AUDIT).values(at=now, actor=actor, action=action, entity=entity,
                                          entity_id=entity_id, detail=detail))

    def assign_patient(self, reading_ids: Sequence[int], patient: PatientRef, patient_resource: dict[str, Any],
                       renormalise: Callable[[Reading, PatientRef], Sequence[ObservationDraft]], *,
                       actor: str, now: datetime) -> int:
        """Attribute held readings to `patient`: rebuilt observations go HELD -> PENDING; returns how many."""
        held = self._read(lambda conn: queries.held_reading_json(conn, reading_ids))
        # FHIR validation takes about a millisecond a record: do it before taking the write lock
        rebuilt = {rid: list(renormalise(reading_from_json(text), patient)) for rid, text in held.items()}
        if any(d.identifier is None for drafts in rebuilt.values() for d in drafts):
            raise StoreError("an attributed observation needs its identifier")
        released = self._write(lambda conn: self._assign(conn, rebuilt, patient, patient_resource, actor, now))
        log.info("assigned readings=%d observations=%d", len(rebuilt), released)
        return int(released)

    def _assign(self, conn: Connection, rebuilt: dict[int, list[ObservationDraft]], patient: PatientRef,
                resource: dict[str, Any], actor: str, now: datetime) -> int:
        patient_id = self._patient_id(conn, patient, resource, now)
        r, obs, o = READINGS.c, OBSERVATIONS.c, OUTBOX.c
        released = 0
        for reading_id, drafts in rebuilt.items():
            row = conn.execute(select(r.patient_id, r.device_key).where(r.id == reading_id)).first()
            if row is None or row.patient_id is not None:
                continue  # assigned meanwhile by someone else: theirs stands
            conn.execute(update(READINGS).where(r.id == reading_id).values(patient_id=patient_id))
            count = 0
            for d in drafts:
                clash = conn.execute(select(obs.id).where(obs.identifier == d.identifier,
                                                          obs.local_key != d.local_key)).first()
                if clash is not None:
                    log.warning("reading %d: observation already stored as %d, left held", reading_id, clash.id)
                    continue
                fields = {"identifier": d.identifier, "code": d.code, "mdc_code": d.mdc_code,
                          "patient_id": patient_id, "effective_at": d.effective_at,
                          "interpretation": d.interpretation, "resource_json": d.json, "updated_at": now}
                existing = conn.execute(select(obs.id).where(obs.local_key == d.local_key,
                                                             obs.reading_id == reading_id)).first()
                if existing is None:
                    observation_id = conn.execute(insert(OBSERVATIONS).values(
                        reading_id=reading_id, local_key=d.local_key, device_key=row.device_key,
                        created_at=now, **fields).returning(obs.id)).scalar_one()
                    conn.execute(insert(OUTBOX).values(observation_id=observation_id, state=OutboxState.PENDING,
                                                       attempts=0, next_attempt_at=now, created_at=now,
                                                       updated_at=now))
                    count += 1
                    continue
                conn.execute(update(OBSERVATIONS).where(obs.id == existing.id).values(**fields))
                count += conn.execute(update(OUTBOX).where(
                    o.observation_id == existing.id, o.state == OutboxState.HELD.value).values(
                    state=OutboxState.PENDING.value, next_attempt_at=now, updated_at=now)).rowcount
            self._audit(conn, now=now, actor=actor, action="reading.assigned", entity="reading",
                        entity_id=reading_id, detail=f"observations={count}")
            released += count
        return released

    def record_checkin(self, patient: PatientRef, *, station: str | None, now: datetime, source: str) -> int:
        table = CheckinRow.__table__  # type: ignore[attr-defined]

        def write(conn: Connection) -> int:
            patient_id = self._patient_id(conn, patient, None, now)
            return int(conn.execute(insert(table).values(patient_id=patient_id, station=station, source=source,
                                                         at=now).returning(table.c.id)).scalar_one())

        checkin_id: int = self._write(write)
        log.info("checkin %d recorded station=%s source=%s", checkin_id, station, source)
        return checkin_id

    # --- sync ------------------------------------------------------------------------------------------
    def claim_batch(self, *, limit: int, now: datetime, lease: timedelta, worker: str) -> list[OutboxItem]:
        items: list[OutboxItem] = self._write(
            lambda conn: outbox.claim_batch(conn, limit=limit, now=now, lease=lease, worker=worker))
        if items:
            log.debug("claimed outbox=%s worker=%s", [i.outbox_id for i in items], worker)
        return items

    def mark_sent(self, outbox_ids: Sequence[int], *, now: datetime) -> None:
        changed = self._write(lambda conn: outbox.mark_sent(conn, outbox_ids, now=now))
        log.debug("marked sent outbox=%s changed=%d", list(outbox_ids), changed)

    def schedule_retry(self, outbox_ids: Sequence[int], *, now: datetime, next_attempt_at: datetime,
                       error: str) -> None:
        self._write(lambda conn: outbox.schedule_retry(conn, outbox_ids, now=now,
                                                       next_attempt_at=next_attempt_at, error=error))
        log.info("retry scheduled outbox=%s", list(outbox_ids))

    def mark_dead(self, outbox_id: int, *, now: datetime, reason: str, outcome_json: str | None) -> None:
        def write(conn: Connection) -> None:
            if outbox.mark_dead(conn, outbox_id, now=now, reason=reason, outcome_json=outcome_json):
                self._audit(conn, now=now, actor="sync", action="outbox.dead", entity="outbox",
                            entity_id=outbox_id, detail=None)

        self._write(write)
        log.warning("outbox %d dead-lettered", outbox_id)

    def retry_dead(self, outbox_ids: Sequence[int] | None, *, now: datetime, actor: str = "staff") -> int:
        def write(conn: Connection) -> int:
            ids = outbox.retry_dead(conn, outbox_ids, now=now)
            for outbox_id in ids:
                self._audit(conn, now=now, actor=actor, action="outbox.retry", entity="outbox",
                            entity_id=outbox_id, detail=None)
            return len(ids)

        count: int = self._write(write)
        log.info("dead letters requeued count=%d", count)
        return count

    def release_expired_leases(self, *, now: datetime) -> int:
        count: int = self._write(lambda conn: outbox.release_expired_leases(conn, now=now))
        if count:
            log.info("released expired outbox leases count=%d", count)
        return count

    def outbox_counts(self) -> dict[OutboxState, int]:
        result: dict[OutboxState, int] = self._read(outbox.counts)
        return result

    def oldest_pending_at(self) -> datetime | None:
        result: datetime | None = self._read(outbox.oldest_pending_at)
        return result

    def dead_letters(self) -> list[DeadLetter]:
        result: list[DeadLetter] = self._read(outbox.dead_letters)
        return result

    def get_state(self, key: str) -> str | None:
        table = StateRow.__table__  # type: ignore[attr-defined]
        value: str | None = self._read(
            lambda conn: conn.execute(select(table.c.value).where(table.c.key == key)).scalar())
        return value

    def set_state(self, key: str, value: str, *, now: datetime | None = None) -> None:
        table = StateRow.__table__  # type: ignore[attr-defined]
        at = now or datetime.now(UTC)
        stmt = sqlite_insert(table).values(key=key, value=value, updated_at=at).on_conflict_do_update(
            index_elements=[table.c.key], set_={"value": value, "updated_at": at})
        self._write(lambda conn: conn.execute(stmt))

    # --- clinician review and export -------------------------------------------------------------------
    def list_patients(self) -> list[PatientSummary]:
        result: list[PatientSummary] = self._read(queries.list_patients)
        return result

    def find_patient(self, system: str, value: str) -> PatientSummary | None:
        result: PatientSummary | None = self._read(lambda conn: queries.find_patient(conn, system, value))
        return result

    def patient_timeline(self, patient: PatientRef | int, since: datetime | None = None) -> list[ObservationView]:
        result: list[ObservationView] = self._read(lambda conn: queries.patient_timeline(conn, patient, since))
        return result

    def flagged(self, since: datetime | None = None) -> list[ObservationView]:
        result: list[ObservationView] = self._read(lambda conn: queries.flagged(conn, since))
        return result

    def unassigned(self) -> list[HeldReading]:
        result: list[HeldReading] = self._read(queries.unassigned)
        return result

    def get_reading(self, reading_id: int) -> Reading:
        """The stored Reading (for replaying, re-normalising or showing the raw bytes)."""
        text = self._read(lambda conn: queries.reading_json(conn, reading_id))
        if text is None:
            raise StoreError(f"no reading {reading_id}")
        return reading_from_json(text)

    def iter_observation_json(self, *, patient: PatientRef | int | None = None, since: datetime | None = None,
                              batch_size: int = 500) -> Iterator[str]:
        """Stored Observation texts in id order, fetched in batches (no transaction held between batches)."""
        after = 0
        while True:
            page: list[tuple[int, str]] = self._read(partial(
                queries.observation_json_page, after=after, limit=batch_size, patient=patient, since=since))
            if not page:
                return
            for _, text in page:
                yield text
            after = page[-1][0]

    def backup(self, dest: str | Path) -> Path:
        """An online, consistent copy of the database at `dest` (mode 0600); see records.backup."""
        from healthhut.records.backup import backup_database

        return backup_database(self.path, dest)
