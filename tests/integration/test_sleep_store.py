"""A night through the normal ingest path on real SQLite: Observations + DiagnosticReport, one transaction."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from healthhut.errors import StoreError
from healthhut.gateway.ingest import Ingestor, IngestStatus
from healthhut.readings import DeviceIdentity, Reading, Transport
from healthhut.records import db, fhir_json
from healthhut.records.drafts import PatientRef
from healthhut.records.identity import IDENTIFIER_SYSTEM, REPORT_IDENTIFIER_SYSTEM
from healthhut.records.normalise import NormaliseSettings, observations_for
from healthhut.records.resources import patient_resource
from healthhut.records.sleep.fhir import night_builder
from healthhut.records.sleep.series import reading_from_night
from healthhut.records.sleep.synthetic import osa_night, synthetic_night
from healthhut.records.store import RecordStore

RESIDENT = PatientRef("urn:oid:2.999.1", "SLEEPER-0042")
SETTINGS = NormaliseSettings(site_id="hut-sleep")
NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
DEVICE = DeviceIdentity(transport=Transport.FILE, model="HSAT", serial="S-9")


def night_reading(hours: float = 1.5) -> Reading:
    spec, _, _ = osa_night(hours, flow_hz=5.0)
    return reading_from_night(synthetic_night(spec), DEVICE, NOW)


@pytest.fixture(scope="module")
def reading() -> Reading:
    return night_reading()


def rows(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        return {
            "readings": conn.execute("SELECT count(*) FROM readings").fetchone()[0],
            "types": dict(conn.execute("SELECT resource_type, count(*) FROM observations GROUP BY resource_type")),
            "outbox": dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state")),
        }


def stored_report(path: Path) -> tuple[str | None, dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        identifier, text = conn.execute("SELECT identifier, resource_json FROM observations "
                                        "WHERE resource_type = 'DiagnosticReport'").fetchone()
    return identifier, fhir_json.loads(text)


def observation_identifiers(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT identifier FROM observations "
                                           "WHERE resource_type = 'Observation' ORDER BY id")]


def test_night_summaries_and_report_are_stored_once_through_the_ingestor(store: RecordStore,
                                                                         reading: Reading) -> None:
    ingestor = Ingestor(store, SETTINGS)
    first = ingestor.ingest_reading(reading, RESIDENT, now=NOW)
    assert first.status is IngestStatus.STORED
    counted = rows(store.path)
    summaries = counted["types"]["Observation"] - 1
    assert summaries >= 8 and counted["types"]["DiagnosticReport"] == 1
    assert counted["readings"] == 1 and len(first.observation_ids) == summaries + 2
    assert counted["outbox"] == {"pending": summaries + 2}

    identifier, report = stored_report(store.path)
    DiagnosticReport.model_validate(report)
    assert report["identifier"] == [{"system": REPORT_IDENTIFIER_SYSTEM, "value": identifier}]
    assert identifier is not None and RESIDENT.value in identifier and "sleep-screening-report" in identifier
    # the report groups exactly the stored Observations, by their PHD identifiers
    assert [r["identifier"] for r in report["result"]] == [
        {"system": IDENTIFIER_SYSTEM, "value": v} for v in observation_identifiers(store.path)]
    assert report["issued"] == NOW.isoformat() and report["subject"]["reference"].startswith("urn:uuid:")

    again = ingestor.ingest_reading(reading, RESIDENT, now=NOW + timedelta(hours=1))
    assert again.status is IngestStatus.DUPLICATE and again.observation_ids == ()
    assert rows(store.path) == counted   # the second import stored nothing at all


def test_a_failure_on_the_report_row_rolls_back_the_whole_night(store: RecordStore, reading: Reading) -> None:
    # a real SQLite failure on the last row of the transaction (the report), not a mock
    with sqlite3.connect(store.path) as conn:
        conn.execute("CREATE TRIGGER refuse_reports BEFORE INSERT ON observations "
                     "WHEN NEW.resource_type = 'DiagnosticReport' BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    drafts = observations_for(reading, RESIDENT, SETTINGS)
    assert drafts[-1].resource_type == "DiagnosticReport"
    with pytest.raises(StoreError):
        store.save_reading(reading, drafts, patient=RESIDENT, patient_resource=patient_resource(RESIDENT),
                           device_resource={"resourceType": "Device"}, now=NOW)
    assert rows(store.path) == {"readings": 0, "types": {}, "outbox": {}}


def test_a_held_night_is_assigned_with_its_report(store: RecordStore, reading: Reading) -> None:
    held = Ingestor(store, SETTINGS).ingest_reading(reading, None, now=NOW)
    assert held.status is IngestStatus.HELD and held.reading_id is not None
    assert rows(store.path)["outbox"] == {"held": len(held.observation_ids)}
    identifier, report = stored_report(store.path)
    assert identifier is None and "subject" not in report and "identifier" not in report
    assert {r["identifier"]["system"] for r in report["result"]} == {
        "https://healthhut.example/fhir/sid/local-observation-key"}

    released = store.assign_patient([held.reading_id], RESIDENT, patient_resource(RESIDENT),
                                    lambda r, p: observations_for(r, p, SETTINGS), actor="staff", now=NOW)
    assert released == len(held.observation_ids)
    assert rows(store.path)["outbox"] == {"pending": released}
    identifier, report = stored_report(store.path)
    assert identifier is not None and report["identifier"][0]["value"] == identifier
    assert [r["identifier"]["value"] for r in report["result"]] == observation_identifiers(store.path)
    claimed = store.claim_batch(limit=100, now=NOW, lease=timedelta(minutes=5), worker="t")
    assert sorted(i.resource_type for i in claimed) == ["DiagnosticReport"] + ["Observation"] * (released - 1)
    (report_item,) = [i for i in claimed if i.resource_type == "DiagnosticReport"]
    assert report_item.identifier == identifier and json.loads(report_item.patient_json)["resourceType"] == "Patient"


def test_the_plot_goes_into_the_report_only_when_rendered(reading: Reading) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    with_plot = NormaliseSettings(site_id="hut-sleep", builders={reading.kind: night_builder(png=png)})
    without = NormaliseSettings(site_id="hut-sleep", builders={reading.kind: night_builder(plot=False)})
    assert observations_for(reading, RESIDENT, with_plot)[-1].resource["presentedForm"][0]["contentType"] == \
        "image/png"
    assert "presentedForm" not in observations_for(reading, RESIDENT, without)[-1].resource


def test_listings_show_the_reports_conclusion(store: RecordStore, reading: Reading) -> None:
    from healthhut.cli.export import _write_csv
    from healthhut.cli.views import observation_entry

    Ingestor(store, SETTINGS).ingest_reading(reading, RESIDENT, now=NOW)
    entries = [observation_entry(v) for v in store.patient_timeline(RESIDENT)]
    (report,) = [e for e in entries if e["code"] == "sleep-screening-report"]
    assert report["display"] == "Overnight sleep apnea screening report"
    assert "REI" in report["values"][0]["conclusion"] and report["sync"] == "pending"
    out = io.StringIO()
    _write_csv(store, out, None, None)
    assert "sleep-screening-report: REI" in out.getvalue()


def test_migration_0002_to_0003_keeps_observation_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _, engine = db.open_engine(path, create=True)
    db.upgrade(engine, "0002")
    engine.dispose()
    at = "2025-01-01T00:00:00.000000+00:00"
    with sqlite3.connect(path) as old:
        old.execute("INSERT INTO readings (local_key, kind, device_key, effective_at, received_at, reading_json, "
                    "created_at) VALUES ('r1', 'spo2', 'dev', ?, ?, '{}', ?)", (at, at, at))
        old.execute("INSERT INTO observations (reading_id, local_key, identifier, code, device_key, effective_at, "
                    "resource_json, created_at, updated_at) VALUES (1, 'k1', 'i1', '2708-6', 'dev', ?, "
                    "'{\"resourceType\":\"Observation\"}', ?, ?)", (at, at, at))
        old.execute("INSERT INTO outbox (observation_id, state, attempts, next_attempt_at, created_at, updated_at) "
                    "VALUES (1, 'sent', 1, ?, ?, ?)", (at, at, at))
    assert db.check_database(path).current == "0002"
    RecordStore.open(path).close()   # migrates to head
    assert db.check_database(path).current == db.SCHEMA_HEAD
    with sqlite3.connect(path) as new:
        assert new.execute("SELECT id, identifier, code, resource_type FROM observations").fetchall() == [
            (1, "i1", "2708-6", "Observation")]
        assert new.execute("SELECT observation_id, state FROM outbox").fetchall() == [(1, "sent")]
