"""The ingest hot path: readings, their observations and outbox rows written in one transaction, fast.

Every measurement of every device passes through here, and the budget is a small multiple of what a bare
durable commit costs. So it keeps one dedicated connection (writers are serialised by SQLite anyway), speaks
plain SQL whose prepared statements sqlite3 caches, stores the normaliser's JSON text untouched, and skips
device/patient upserts whose rows it wrote itself a moment ago. A burst (a replayed capture, a device's
stored records) is written as one group commit: `save_many` puts each reading in its own SAVEPOINT inside one
BEGIN IMMEDIATE ... COMMIT, so the fsync is paid once per batch while each reading stays atomic and
de-duplicated on its own.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

from healthhut.errors import StoreError
from healthhut.readings import Reading, TimeSource
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.outbox import GATEWAY_STATE_KEY, OutboxState
from healthhut.records.reading_json import reading_to_json
from healthhut.records.references import device_reference, patient_reference
from healthhut.records.tables import utc_text

log = logging.getLogger(__name__)

INGEST_ACTOR = "ingest"
DEVICE_SEEN_RESOLUTION = timedelta(minutes=1)  # devices.last_seen is for staff screens: minutes suffice
CACHE_LIMIT = 4096  # remembered devices/residents; cleared when exceeded (a hut sees far fewer per day)


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


def dumps(resource: dict[str, Any]) -> str:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)




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
_FIND_STATE = "SELECT value FROM state WHERE key = ?"
_INSERT_OBSERVATION = (  # no conflict target: a clash on local_key OR identifier makes it a duplicate
    "INSERT INTO observations (reading_id, local_key, identifier, code, mdc_code, patient_id, device_key, "
    "gateway_device_id, effective_at, interpretation, resource_json, resource_type, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id")
_INSERT_OUTBOX = (
    "INSERT INTO outbox (observation_id, state, attempts, next_attempt_at, created_at, updated_at) "
    "VALUES (?, ?, 0, ?, ?, ?)")
_INSERT_AUDIT = "INSERT INTO audit (at, actor, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class ReadingToSave:
    """One reading for `ReadingWriter.save_many`: exactly the arguments of `ReadingWriter.save`."""

    reading: Reading
    drafts: Sequence[ObservationDraft]
    patient: PatientRef | None
    patient_resource: dict[str, Any] | None
    device_resource: dict[str, Any]
    now: datetime


@dataclass(slots=True)
class _Remembered:
    row_id: int
    resource: dict[str, Any] | None
    written_at: datetime


class _Written:
    """Device/patient rows this transaction wrote so far, in order.

    Later readings of the same batch reuse them (as they would reuse the caches had each reading been
    committed on its own); they reach the writer's caches only once the COMMIT has succeeded.
    """

    __slots__ = ("devices", "journal", "patients")

    def __init__(self) -> None:
        self.devices: dict[str, _Remembered] = {}
        self.patients: dict[tuple[str, str], _Remembered] = {}
        self.journal: list[tuple[bool, Any, _Remembered]] = []  # (is_device, key, entry)

    def add(self, is_device: bool, key: Any, entry: _Remembered) -> None:
        self.journal.append((is_device, key, entry))
        (self.devices if is_device else self.patients)[key] = entry

    def undo_to(self, mark: int) -> None:
        """Forget what was written after `mark` (a reading rolled back to its savepoint)."""
        if mark == len(self.journal):
            return
        del self.journal[mark:]
        self.devices.clear()
        self.patients.clear()
        for is_device, key, entry in self.journal:
            (self.devices if is_device else self.patients)[key] = entry


class ReadingWriter:
    """Owns the ingest connection of one RecordStore; thread-safe (one reading or batch at a time)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._raw: Any = None
        self._devices: dict[str, _Remembered] = {}
        self._patients: dict[tuple[str, str], _Remembered] = {}
        self._gateway_id: int | None = None
        self._gateway_known = False  # read from the state table by the first save
        self._journal_in_memory = False  # temp_store of the connection: MEMORY while batches are written

    def use_gateway(self, device_id: int) -> None:
        """Link observations saved from now on to this gateway device row (see RecordStore.set_gateway)."""
        with self._lock:
            self._gateway_id, self._gateway_known = device_id, True

    def close(self) -> None:
        with self._lock:
            if self._raw is not None:
                if self._journal_in_memory:
                    try:  # back to the pool as the engine made it
                        self._raw.driver_connection.execute("PRAGMA temp_store=DEFAULT")
                    except Exception:  # a broken connection: closing it is all that is left to do
                        log.debug("ingest connection could not reset temp_store")
                self._raw.close()
                self._raw = None

    def save(self, reading: Reading, drafts: Sequence[ObservationDraft], *, patient: PatientRef | None,
             patient_resource: dict[str, Any] | None, device_resource: dict[str, Any],
             now: datetime) -> StoreResult:
        """One reading in its own transaction (a batch of one: no savepoint, a duplicate rolls it all back)."""
        return self.save_many([ReadingToSave(reading, drafts, patient, patient_resource, device_resource, now)])[0]

    def save_many(self, items: Sequence[ReadingToSave]) -> list[StoreResult]:
        """Save readings in ONE transaction, each in its own savepoint; results in input order.

        Each reading gets the result `save` would have given it had the readings been saved one by one in
        this order (a copy of an earlier reading of the batch is DUPLICATE). If anything fails, the whole
        transaction is rolled back and StoreError raised: none of the batch is stored. The results are
        returned only after the COMMIT, i.e. once every reading of the batch is durable.
        """
        if not items:
            return []
        for item in items:  # refused before the database is touched, as `save` always did
            if item.patient is not None and any(d.identifier is None for d in item.drafts):
                raise StoreError("an attributed observation needs its identifier")
        texts = [reading_to_json(item.reading) for item in items]
        savepoints = len(items) > 1  # alone, a reading's savepoint would be its transaction
        written = _Written()
        with self._lock:
            if self._raw is None:
                self._raw = self._engine.raw_connection()
                self._journal_in_memory = False
            cur = self._raw.driver_connection.cursor()
            results: list[StoreResult] = []
            kept = False
            try:
                if savepoints is not self._journal_in_memory:
                    # Savepoints journal the pages they change: in a temporary file that cost ~10% of a
                    # batch, in memory nothing measurable; a lone reading (no savepoint) is ~2% faster with
                    # the file default (measured). Only rollbacks inside the transaction read it: durability
                    # is the WAL's.
                    cur.execute("PRAGMA temp_store=MEMORY" if savepoints else "PRAGMA temp_store=DEFAULT")
                    self._journal_in_memory = savepoints
                cur.execute("BEGIN IMMEDIATE")
                for item, text in zip(items, texts, strict=True):
                    mark = len(written.journal)
                    if savepoints:
                        cur.execute("SAVEPOINT reading")
                    result = self._write(cur, item, text, written)
                    if result.outcome is StoreOutcome.DUPLICATE:  # leave no trace, as a rolled-back `save`
                        written.undo_to(mark)
                        if savepoints:
                            cur.execute("ROLLBACK TO reading")
                    else:
                        kept = True
                    if savepoints:
                        cur.execute("RELEASE reading")
                    results.append(result)
                cur.execute("COMMIT" if kept else "ROLLBACK")
            except BaseException as exc:
                self._abandon(cur)
                if isinstance(exc, StoreError) or not isinstance(exc, Exception):
                    raise
                what = "a reading" if len(items) == 1 else f"a batch of {len(items)} readings"
                raise StoreError(f"saving {what} failed: {type(exc).__name__}",
                                 advice="check free disk space and the database file") from exc
            finally:
                cur.close()
            for is_device, key, entry in written.journal:  # only what is committed may be remembered
                cache: dict[Any, _Remembered] = self._devices if is_device else self._patients
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[key] = entry
        if log.isEnabledFor(logging.DEBUG):
            for result in results:
                log.debug("reading %s %s observations=%d duplicates=%d", result.reading_id,
                          result.outcome.value, len(result.observation_ids), result.duplicates)
        return results

    def _abandon(self, cur: Any) -> None:
        try:
            if self._raw.driver_connection.in_transaction:
                cur.execute("ROLLBACK")
        except Exception:  # the connection is broken: drop it, the next reading opens a fresh one
            log.warning("ingest connection discarded after a failed rollback")
            self._raw.invalidate()
            self._raw = None

    def _device_id(self, cur: Any, key: str, resource: dict[str, Any], now: datetime, at: str,
                   written: _Written) -> int:
        known = written.devices.get(key) or self._devices.get(key)
        if known is not None and known.resource == resource and abs(now - known.written_at) < DEVICE_SEEN_RESOLUTION:
            return known.row_id
        text = dumps(resource)
        cur.execute(_UPSERT_DEVICE, (key, device_reference(key), text, at, at))
        row_id = int(cur.fetchall()[0][0])
        written.add(True, key, _Remembered(row_id, json.loads(text), now))
        return row_id

    def _patient_id(self, cur: Any, patient: PatientRef, resource: dict[str, Any] | None, now: datetime,
                    at: str, written: _Written) -> int:
        key = (patient.system, patient.value)
        known = written.patients.get(key) or self._patients.get(key)
        if known is not None and (resource is None or resource == known.resource):
            return known.row_id
        text = None if resource is None else dumps(resource)
        cur.execute(_UPSERT_PATIENT, (patient.system, patient.value, patient_reference(patient), text, at, at))
        row_id, stored = cur.fetchall()[0]
        if stored is None:
            raise StoreError("no Patient resource is stored for this resident")
        written.add(False, key, _Remembered(int(row_id), json.loads(stored), now))
        return int(row_id)

    def _write(self, cur: Any, item: ReadingToSave, reading_json: str, written: _Written) -> StoreResult:
        reading, drafts, patient, now = item.reading, item.drafts, item.patient, item.now
        at = utc_text(now)
        device_key = reading.device.key
        self._device_id(cur, device_key, item.device_resource, now, at, written)
        if not self._gateway_known:
            cur.execute(_FIND_STATE, (GATEWAY_STATE_KEY,))
            found = cur.fetchall()
            self._gateway_id, self._gateway_known = (int(found[0][0]) if found else None), True
        gateway_id = self._gateway_id
        patient_id = None
        if patient is not None:
            patient_id = self._patient_id(cur, patient, item.patient_resource, now, at, written)
        local_key = reading_local_key(reading)
        cur.execute(_INSERT_READING, (local_key, reading.kind.value, device_key, patient_id,
                                      utc_text(reading.effective_at), utc_text(reading.received_at),
                                      reading_json, at))
        inserted = cur.fetchall()
        if inserted:
            reading_id = inserted[0][0]
        else:  # the reading is known: new observations of it (partial overlap) join the existing row
            cur.execute(_FIND_READING, (local_key,))
            reading_id = cur.fetchall()[0][0]
        state = OutboxState.PENDING.value if patient is not None else OutboxState.HELD.value
        observation_ids: list[int] = []
        for d in drafts:
            cur.execute(_INSERT_OBSERVATION, (
                reading_id, d.local_key, d.identifier, d.code, d.mdc_code, patient_id, device_key, gateway_id,
                utc_text(d.effective_at), d.interpretation, d.json, d.resource_type, at, at))
            row = cur.fetchall()
            if row:
                observation_ids.append(row[0][0])
                cur.execute(_INSERT_OUTBOX, (row[0][0], state, at, at, at))
        duplicates = len(drafts) - len(observation_ids)
        if not observation_ids and (drafts or not inserted):
            return StoreResult(StoreOutcome.DUPLICATE, None, (), duplicates)
        outcome = StoreOutcome.STORED if patient is not None else StoreOutcome.HELD
        cur.execute(_INSERT_AUDIT, (at, INGEST_ACTOR, f"reading.{outcome.value}", "reading", reading_id,
                                    f"observations={len(observation_ids)} duplicates={duplicates}"))
        return StoreResult(outcome, reading_id, tuple(observation_ids), duplicates)
