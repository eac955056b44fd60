"""Store-only ingest cost: RecordStore.save_reading of ready drafts beside the plain-sqlite3 durability floor.

Separates the store's share of the ingest budget from decoding and normalising (benchmarks/ingest.py measures
the whole path). The two loops run interleaved in chunks, so a busy disk slows both alike.
Run: .venv/bin/python benchmarks/store_ingest.py [readings]
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.store import RecordStore

PATIENT = PatientRef(system="urn:oid:2.999.1", value="bench-resident")
PATIENT_RESOURCE = {"resourceType": "Patient", "identifier": [{"system": PATIENT.system, "value": PATIENT.value}]}
DEVICE = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", model="bench-cuff")
DEVICE_RESOURCE = {"resourceType": "Device", "identifier": [{"system": "urn:ieee:mac", "value": DEVICE.address}]}
CHUNK = 50
# a realistic Observation body: a BP panel is about 1.2 kB of JSON
PADDING = "x" * 1000


def reading_and_drafts(index: int) -> tuple[Reading, list[ObservationDraft]]:
    at = datetime(2024, 1, 1, 8, tzinfo=UTC) + timedelta(minutes=index)
    reading = Reading(kind=ReadingKind.BLOOD_PRESSURE, device=DEVICE, received_at=at, measured_at=at,
                      time_source=TimeSource.DEVICE, raw=bytes(19),
                      values={Metric.SYSTOLIC: Quantity.of(110 + index % 60, Unit.MMHG),
                              Metric.DIASTOLIC: Quantity.of(70 + index % 30, Unit.MMHG),
                              Metric.PULSE_RATE: Quantity.of(60 + index % 40, Unit.PER_MINUTE)})
    drafts = []
    for code in ("85354-9", "8867-4"):
        key = f"{DEVICE.key}|{code}|{at.isoformat()}"
        body = {"resourceType": "Observation", "code": code, "effectiveDateTime": at.isoformat(), "pad": PADDING}
        drafts.append(ObservationDraft(key, f"{PATIENT.value}|{key}", code, None, at, "N", body, json.dumps(body)))
    return reading, drafts


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    work = [reading_and_drafts(i) for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore.open(Path(tmp) / "store.db")
        floor = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        floor.execute("PRAGMA journal_mode=WAL")
        floor.execute("PRAGMA synchronous=FULL")
        floor.execute("CREATE TABLE observations (id INTEGER PRIMARY KEY, json TEXT NOT NULL)")
        store_s = floor_s = 0.0
        for start in range(0, count, CHUNK):
            chunk = work[start:start + CHUNK]
            began = time.perf_counter()
            for reading, drafts in chunk:
                store.save_reading(reading, drafts, patient=PATIENT, patient_resource=PATIENT_RESOURCE,
                                   device_resource=DEVICE_RESOURCE, now=reading.received_at)
            store_s += time.perf_counter() - began
            began = time.perf_counter()
            for _, drafts in chunk:
                floor.execute("BEGIN")
                floor.executemany("INSERT INTO observations (json) VALUES (?)", [(d.json,) for d in drafts])
                floor.execute("COMMIT")
            floor_s += time.perf_counter() - began
        store.close()
        floor.close()
    print(f"store: {count} readings in {store_s:.2f} s = {store_s / count * 1e6:,.0f} us/reading")
    print(f"floor: {floor_s:.2f} s = {floor_s / count * 1e6:,.0f} us/reading")
    print(f"ratio: store / floor = {store_s / floor_s:.2f}x")


if __name__ == "__main__":
    main()
