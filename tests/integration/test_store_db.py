"""The database file itself: private modes, WAL + synchronous=FULL, Alembic migrations, online backup."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthhut.errors import StoreError
from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records import db
from healthhut.records.backup import backup_database
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.store import OutboxState, RecordStore

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RESIDENT = PatientRef("urn:oid:2.999.7", "R-1234")


def weight(i: int) -> tuple[Reading, list[ObservationDraft]]:
    at = NOW + timedelta(minutes=i)
    reading = Reading(kind=ReadingKind.BODY_WEIGHT, device=DeviceIdentity(Transport.BLE, address="11:22:33:44:55:66"),
                      received_at=at, measured_at=at, time_source=TimeSource.DEVICE,
                      values={Metric.BODY_WEIGHT: Quantity.of("70.5", Unit.KILOGRAM)})
    key = f"11:22:33:44:55:66|29463-7|{at.isoformat()}"
    body = {"resourceType": "Observation", "i": i}
    return reading, [ObservationDraft(key, f"{RESIDENT.value}|{key}", "29463-7", "188736", at, None, body,
                                      json.dumps(body))]


def save(store: RecordStore, i: int) -> None:
    reading, drafts = weight(i)
    store.save_reading(reading, drafts, patient=RESIDENT, patient_resource={"resourceType": "Patient", "id": "p"},
                       device_resource={"resourceType": "Device", "id": "d"}, now=NOW)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)  # the worst case: files would be world-writable unless the store takes care
    try:
        yield
    finally:
        os.umask(old)


def test_database_wal_and_shm_are_private_even_with_a_permissive_umask(tmp_path: Path,
                                                                       permissive_umask: None) -> None:
    path = tmp_path / "var" / "lib" / "healthhut" / "records.db"
    store = RecordStore.open(path)
    try:
        for i in range(3):
            save(store, i)
        assert path.with_name("records.db-wal").exists() and path.with_name("records.db-shm").exists()
        for name in ("records.db", "records.db-wal", "records.db-shm"):
            assert mode(path.with_name(name)) == 0o600, name
        assert mode(path.parent) == 0o700
    finally:
        store.close()


def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    RecordStore.open(path).close()
    path.chmod(0o644)
    RecordStore.open(path).close()
    assert mode(path) == 0o600


def test_connections_run_wal_with_synchronous_full_and_foreign_keys(tmp_path: Path) -> None:
    store = RecordStore.open(tmp_path / "records.db")
    try:
        save(store, 0)
        settings = store.connection_settings()
        assert settings["journal_mode"] == "wal"
        assert settings["synchronous"] == 2  # FULL
        assert settings["foreign_keys"] == 1
        assert settings["busy_timeout"] >= 1000
        writer = store._writer._raw.driver_connection  # the ingest connection, the one that matters most
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "records.db") as plain:  # WAL is a property of the file: it persists
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrating_from_empty_builds_exactly_the_tables_of_tables_py(tmp_path: Path) -> None:
    status = db.migrate_database(tmp_path / "new.db")
    assert status.current == status.head == db.head_revision() and status.up_to_date
    _, engine = db.open_engine(tmp_path / "new.db", create=False)
    try:
        with engine.connect() as conn:
            assert db.schema_matches_tables(conn) == []
    finally:
        engine.dispose()


def test_a_database_at_the_previous_revision_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _, engine = db.open_engine(path, create=True)
    db.upgrade(engine, "0001")
    engine.dispose()
    with sqlite3.connect(path) as old:
        assert old.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        old.execute("INSERT INTO patients (identifier_system, identifier_value, created_at, updated_at) "
                    "VALUES ('urn:oid:2.999.7', 'R-1234', '2025-01-01T00:00:00.000000+00:00', "
                    "'2025-01-01T00:00:00.000000+00:00')")
        old.execute("INSERT INTO checkins (patient_id, station, at) VALUES (1, 'desk', "
                    "'2025-01-01T08:00:00.000000+00:00')")
    old_status = db.check_database(path)
    assert (old_status.current, old_status.up_to_date, old_status.integrity) == ("0001", False, "ok")
    with pytest.raises(StoreError, match="migrate"):
        RecordStore.open(path, migrate=False)

    store = RecordStore.open(path)  # migrates to head
    try:
        assert db.check_database(path).up_to_date
        assert store.find_patient("urn:oid:2.999.7", "R-1234") is not None
        store.record_checkin(RESIDENT, station="kiosk-1", now=NOW, source="kiosk")
        store.set_state("sync:last_success", "yes")  # the table 0002 added
        assert store.get_state("sync:last_success") == "yes"
    finally:
        store.close()
    with sqlite3.connect(path) as new:
        rows = new.execute("SELECT patient_id, station, source FROM checkins ORDER BY id").fetchall()
    assert rows == [(1, "desk", "manual"), (1, "kiosk-1", "kiosk")]


def test_a_database_from_a_newer_healthhut_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db.migrate_database(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError):
        RecordStore.open(path)


def test_check_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        db.check_database(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_online_backup_is_private_complete_and_excludes_uncommitted_rows(tmp_path: Path) -> None:
    store = RecordStore.open(tmp_path / "records.db")
    try:
        for i in range(20):
            save(store, i)
        busy = sqlite3.connect(tmp_path / "records.db", isolation_level=None)
        busy.execute("BEGIN IMMEDIATE")  # another process is mid-write while the backup runs
        busy.execute("INSERT INTO audit (at, actor, action, entity) VALUES ('x', 'x', 'uncommitted', 'x')")
        result = store.backup(tmp_path / "backups" / "records-2026-03-01.db")
        busy.execute("ROLLBACK")
        busy.close()
        with pytest.raises(StoreError):
            backup_database(tmp_path / "records.db", result.path)  # never overwrites
    finally:
        store.close()
    assert result.pages > 0 and result.size == result.path.stat().st_size
    assert mode(result.path) == 0o600
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["records-2026-03-01.db"]
    copy = RecordStore.open(result.path, migrate=False)
    try:
        assert copy.outbox_counts()[OutboxState.PENDING] == 20
        assert len(list(copy.iter_observation_json())) == 20
    finally:
        copy.close()
    with sqlite3.connect(result.path) as conn:
        assert conn.execute("SELECT count(*) FROM audit WHERE action = 'uncommitted'").fetchone() == (0,)
    for suffix in ("-wal", "-shm"):
        sidecar = result.path.with_name(result.path.name + suffix)
        assert not sidecar.exists() or mode(sidecar) == 0o600


def test_the_schema_head_constant_matches_the_newest_migration() -> None:
    assert db.head_revision() == db.SCHEMA_HEAD


def test_services_starting_together_on_a_new_database_all_open_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "fresh" / "records.db"
    script = ("import sys; from healthhut.records.store import RecordStore; s = RecordStore.open(sys.argv[1]); "
              "s.set_state('opened', 'yes'); s.close()")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    status = db.check_database(path)
    assert status.up_to_date and status.integrity == "ok"


def test_a_directory_in_place_of_the_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "records.db").mkdir()
    with pytest.raises(StoreError):
        RecordStore.open(tmp_path / "records.db")
    assert mode(tmp_path / "records.db") != 0o600


def test_migration_0003_to_0004_drops_the_unused_indexes_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _, engine = db.open_engine(path, create=True)
    db.upgrade(engine, "0003")
    engine.dispose()
    at = "2025-01-01T00:00:00.000000+00:00"
    with sqlite3.connect(path) as old:
        old.execute("INSERT INTO readings (local_key, kind, device_key, effective_at, received_at, reading_json, "
                    "created_at) VALUES ('r1', 'spo2', 'dev', ?, ?, '{}', ?)", (at, at, at))
        old.execute("INSERT INTO observations (reading_id, local_key, identifier, code, device_key, effective_at, "
                    "resource_json, created_at, updated_at) VALUES (1, 'k1', 'i1', '2708-6', 'dev', ?, '{}', ?, ?)",
                    (at, at, at))
        indexes = {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_observations_code", "ix_observations_device_key"} <= indexes
    RecordStore.open(path).close()  # migrates to head
    with sqlite3.connect(path) as new:
        indexes = {row[0] for row in new.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        rows = new.execute("SELECT local_key, code, device_key FROM observations").fetchall()
    assert {"ix_observations_code", "ix_observations_device_key"}.isdisjoint(indexes)
    assert {"ix_observations_patient_effective", "ix_observations_flagged", "ix_observations_reading_id"} <= indexes
    assert rows == [("k1", "2708-6", "dev")]
    _, engine = db.open_engine(path, create=False)
    try:
        with engine.connect() as conn:
            assert db.schema_matches_tables(conn) == []
    finally:
        engine.dispose()
