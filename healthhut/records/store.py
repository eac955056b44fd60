"""RecordStore: the only code that touches the database (readings, observations, outbox, audit, state).

Every write is one transaction. The hot path, `save_reading` and its group commit `save_readings`, is
delegated to records.reading_writer; everything else uses SQLAlchemy Core over the SQLModel tables and the
query functions of records.queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from healthhut.records.backup import BackupResult

from healthhut.errors import StoreError
from healthhut.readings import Reading
from healthhut.records import db, outbox, queries
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.outbox import GATEWAY_STATE_KEY, DeadLetter, OutboxItem, OutboxState
from healthhut.records.queries import HeldReading, ObservationView, PatientSummary
from healthhut.records.reading_json import reading_from_json
from healthhut.records.reading_writer import (
    ReadingToSave,
    ReadingWriter,
    StoreOutcome,
    StoreResult,
    dumps,
    reading_local_key,
)
from healthhut.records.references import gateway_reference, patient_reference
from healthhut.records.tables import (
    AuditRow,
    CheckinRow,
    DeviceRow,
    ObservationRow,
    OutboxRow,
    PatientRow,
    ReadingRow,
    RejectionRow,
    StateRow,
)

__all__ = ["DeadLetter", "HeldReading", "ObservationView", "OutboxItem", "OutboxState", "PatientSummary",
           "ReadingToSave", "RecordStore", "StoreOutcome", "StoreResult", "reading_local_key"]

log = logging.getLogger(__name__)

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
DEVICES = DeviceRow.__table__  # type: ignore[attr-defined]
STATE = StateRow.__table__  # type: ignore[attr-defined]
OBSERVATIONS = ObservationRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
PATIENTS = PatientRow.__table__  # type: ignore[attr-defined]
READINGS = ReadingRow.__table__  # type: ignore[attr-defined]


class RecordStore:
    """The record store on one SQLite file. Synchronous: asyncio callers use `asyncio.to_thread`."""

    def __init__(self, path: Path, engine: Any) -> None:
        self.path = path
        self._engine = engine
        self._writer = ReadingWriter(engine)

    @classmethod
    def open(cls, path: str | Path, *, migrate: bool = True) -> RecordStore:
        """Open (creating it 0600, parent 0700, if new) the database at `path`: WAL, synchronous=FULL,
        foreign keys on, busy timeout; migrate to the newest schema, or with `migrate=False` refuse an old one."""
        resolved, engine = db.open_engine(path, create=True)
        try:
            if migrate:
                db.upgrade(engine)
            elif not db.is_current(engine):
                status = db.status(engine, resolved)
                raise StoreError(f"database schema is at {status.current}, this healthhut needs {status.head}",
                                 advice="run `healthhut db migrate`")
        except BaseException:
            engine.dispose()
            raise
        db.tighten_sidecars(resolved)
        return cls(resolved, engine)

    def close(self) -> None:
        self._writer.close()
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

    def connection_settings(self) -> dict[str, Any]:
        """The SQLite settings a connection of this store runs with (for `healthhut diagnose` and tests)."""
        def read(conn: Connection) -> dict[str, Any]:
            return {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}

        settings: dict[str, Any] = self._read(read)
        return settings

    # --- ingest ----------------------------------------------------------------------------------------
    def save_reading(self, reading: Reading, drafts: Sequence[ObservationDraft], *,
                     patient: PatientRef | None, patient_resource: dict[str, Any] | None,
                     device_resource: dict[str, Any], now: datetime) -> StoreResult:
        """Store the reading, its new observations and one outbox row each (PENDING with a resident, else
        HELD), the device and patient rows and an audit row, in one transaction; known ones are DUPLICATE."""
        return self._writer.save(reading, drafts, patient=patient, patient_resource=patient_resource,
                                 device_resource=device_resource, now=now)

    def save_readings(self, items: Sequence[ReadingToSave]) -> list[StoreResult]:
        """Group commit: `save_reading` for each item, all in ONE transaction (one fsync), each reading in
        its own savepoint; results in input order, exactly as one-by-one saves in that order would give.
        Any failure rolls the whole batch back and raises StoreError; nothing is reported stored before the
        COMMIT is durable. An empty batch returns [] without touching the database."""
        return self._writer.save_many(items)

    def set_gateway(self, site_id: str, resource: dict[str, Any], *, now: datetime | None = None) -> int:
        """Register this hut's gateway Device (PhgDevice) resource; observations link to it from now on.

        Every Observation references the gateway (`urn:uuid` of `references.gateway_reference(site_id)`), so
        claims return this text as `gateway_json`, also for observations stored before it was registered.
        """
        at = now or datetime.now(UTC)
        d = DEVICES.c
        upsert = sqlite_insert(DEVICES).values(
            key=f"gateway:{site_id}", ref=gateway_reference(site_id), resource_json=dumps(resource),
            first_seen=at, last_seen=at).on_conflict_do_update(
            index_elements=[d.key], set_={"resource_json": dumps(resource), "last_seen": at}).returning(d.id)

        def write(conn: Connection) -> int:
            device_id = int(conn.execute(upsert).scalar_one())
            self._put_state(conn, GATEWAY_STATE_KEY, str(device_id), at)
            return device_id

        device_id: int = self._write(write)
        self._writer.use_gateway(device_id)
        log.info("gateway device %d registered", device_id)
        return device_id

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
                                  "ref": patient_reference(patient), "created_at": now, "updated_at": now}
        changes: dict[str, Any] = {"updated_at": now}
        if resource is not None:
            changes.update(resource_json=dumps(resource))
            values.update(changes)
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
        registered = conn.execute(select(STATE.c.value).where(STATE.c.key == GATEWAY_STATE_KEY)).scalar()
        gateway_id = None if registered is None else int(registered)
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
                          "interpretation": d.interpretation, "resource_json": d.json,
                          "resource_type": d.resource_type, "updated_at": now}
                existing = conn.execute(select(obs.id).where(obs.local_key == d.local_key,
                                                             obs.reading_id == reading_id)).first()
                if existing is None:
                    observation_id = conn.execute(insert(OBSERVATIONS).values(
                        reading_id=reading_id, local_key=d.local_key, device_key=row.device_key,
                        gateway_device_id=gateway_id, created_at=now, **fields).returning(obs.id)).scalar_one()
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

    def next_due_at(self) -> datetime | None:
        """Earliest time an outbox row becomes claimable (retry time or lease expiry); None if none is left."""
        result: datetime | None = self._read(outbox.next_due_at)
        return result

    def dead_letters(self) -> list[DeadLetter]:
        result: list[DeadLetter] = self._read(outbox.dead_letters)
        return result

    def get_state(self, key: str) -> str | None:
        value: str | None = self._read(
            lambda conn: conn.execute(select(STATE.c.value).where(STATE.c.key == key)).scalar())
        return value

    @staticmethod
    def _put_state(conn: Connection, key: str, value: str, at: datetime) -> None:
        conn.execute(sqlite_insert(STATE).values(key=key, value=value, updated_at=at).on_conflict_do_update(
            index_elements=[STATE.c.key], set_={"value": value, "updated_at": at}))

    def set_state(self, key: str, value: str, *, now: datetime | None = None) -> None:
        self._write(lambda conn: self._put_state(conn, key, value, now or datetime.now(UTC)))

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

    def iter_observation_views(self, *, patient: PatientRef | int | None = None, since: datetime | None = None,
                               batch_size: int = 500) -> Iterator[ObservationView]:
        """Like `iter_observation_json`, with the index columns and outbox state (CSV export)."""
        after = 0
        while True:
            page: list[ObservationView] = self._read(partial(
                queries.observation_view_page, after=after, limit=batch_size, patient=patient, since=since))
            if not page:
                return
            yield from page
            after = page[-1].observation_id

    def referenced_resources(self, *, patient: PatientRef | int | None = None,
                             since: datetime | None = None) -> list[tuple[str, str]]:
        """(fullUrl, i.e. the `urn:uuid:` reference, stored text) of each Patient and Device the selection uses."""
        result: list[tuple[str, str]] = self._read(
            partial(queries.referenced_resources, patient=patient, since=since))
        return result

    def backup(self, dest: str | Path) -> BackupResult:
        """An online, consistent copy of the database at the new file `dest` (mode 0600); see records.backup."""
        from healthhut.records.backup import backup_database

        return backup_database(self.path, dest)
