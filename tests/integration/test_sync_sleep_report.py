"""An imported night reaches the real (Medplum) FHIR server: its Observations and one DiagnosticReport, once.

The report's `result` references the Observations by identifier, so it resolves even when the sync worker
puts the report and its Observations in different bundles (small bundles here force that).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_support import PHD_SYSTEM, FakeClock, FhirTestServer, platform_config

from healthhut.gateway.ingest import Ingestor, IngestStatus
from healthhut.readings import DeviceIdentity, Transport
from healthhut.records.drafts import PatientRef
from healthhut.records.identity import REPORT_IDENTIFIER_SYSTEM
from healthhut.records.normalise import NormaliseSettings
from healthhut.records.sleep.fhir import night_builder
from healthhut.records.sleep.series import reading_from_night
from healthhut.records.sleep.synthetic import osa_night, synthetic_night
from healthhut.records.store import OutboxState, RecordStore
from healthhut.sync.bundles import BundleType
from healthhut.sync.fhir_client import FhirClient
from healthhut.sync.worker import SyncSettings, SyncWorker

RESIDENT = PatientRef("urn:oid:2.999.1", "R-NIGHT-7")
RECEIVED = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)


def import_night(store: RecordStore) -> None:
    spec, _, _ = osa_night(1.5, flow_hz=5.0)
    reading = reading_from_night(synthetic_night(spec), DeviceIdentity(Transport.FILE, model="HSAT", serial="N7"),
                                 RECEIVED)
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)   # the plot travels inside the report (presentedForm)
    settings = NormaliseSettings(site_id="hut-sync", builders={reading.kind: night_builder(png=png)})
    outcome = Ingestor(store, settings).ingest_reading(reading, RESIDENT, now=RECEIVED)
    assert outcome.status is IngestStatus.STORED


async def drain(store: RecordStore, server: FhirTestServer, *, bundle_type: BundleType, batch_size: int) -> None:
    clock = FakeClock(RECEIVED + timedelta(days=1))  # the outbox rows are due from the import on
    settings = SyncSettings(batch_size=batch_size, concurrency=1, lease=timedelta(minutes=5), idle_poll=5.0,
                            bundle_type=bundle_type)
    async with FhirClient(platform_config(server.base_url), sleep=clock.sleep) as client:
        worker = SyncWorker(store, client, settings, now=clock, sleep=clock.sleep, rand=lambda: 0.5)

        async def remaining() -> int:
            counts = await asyncio.to_thread(store.outbox_counts)
            return counts[OutboxState.PENDING] + counts[OutboxState.SENDING]

        await worker.drain(until_empty=True, remaining=remaining, max_wait=600.0)


def search(server: FhirTestServer, resource_type: str, system: str, value: str) -> dict[str, Any]:
    query = urllib.parse.quote(f"{system}|{value}", safe=":/|")
    with urllib.request.urlopen(f"{server.base_url}/{resource_type}?identifier={query}", timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def stored(path: Path) -> tuple[list[str], str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT resource_type, identifier FROM observations ORDER BY id").fetchall()
    observations = [identifier for kind, identifier in rows if kind == "Observation"]
    (report,) = [identifier for kind, identifier in rows if kind == "DiagnosticReport"]
    return observations, report


def assert_server_holds_the_night_once(server: FhirTestServer, observations: list[str], report_id: str) -> None:
    assert server.stored_identifiers() == {i: 1 for i in observations}
    assert server._admin("GET", f"/identifiers?type=DiagnosticReport&system={REPORT_IDENTIFIER_SYSTEM}") == {
        report_id: 1}
    assert server.stats()["resources"]["DiagnosticReport"] == 1
    found = search(server, "DiagnosticReport", REPORT_IDENTIFIER_SYSTEM, report_id)
    assert found["total"] == 1
    report = found["entry"][0]["resource"]
    assert report["subject"]["reference"].startswith("Patient/")   # the urn was resolved by the transaction
    assert report["presentedForm"][0]["contentType"] == "image/png"
    results = [r["identifier"] for r in report["result"]]
    assert [r["value"] for r in results] == observations and {r["system"] for r in results} == {PHD_SYSTEM}
    for ident in results:  # every result resolves to exactly one Observation on the server
        assert server.search_total("Observation", f"{ident['system']}|{ident['value']}") == 1


@pytest.mark.parametrize(("bundle_type", "batch_size"), [("transaction", 4), ("batch", 50)])
async def test_an_imported_night_is_delivered_with_one_report(fhir: FhirTestServer, store: RecordStore,
                                                              bundle_type: BundleType, batch_size: int) -> None:
    await asyncio.to_thread(import_night, store)
    observations, report_id = await asyncio.to_thread(stored, store.path)
    await drain(store, fhir, bundle_type=bundle_type, batch_size=batch_size)
    counts = await asyncio.to_thread(store.outbox_counts)
    assert counts[OutboxState.SENT] == len(observations) + 1 and counts[OutboxState.DEAD] == 0
    assert_server_holds_the_night_once(fhir, observations, report_id)

    # a lost acknowledgement: everything is sent again; conditional creates keep one of each on the server
    def resend() -> None:
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE outbox SET state = 'pending', sent_at = NULL")

    await asyncio.to_thread(resend)
    await drain(store, fhir, bundle_type=bundle_type, batch_size=batch_size)
    assert_server_holds_the_night_once(fhir, observations, report_id)
