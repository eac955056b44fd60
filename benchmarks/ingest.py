"""Ingest rate: decode -> normalise -> durable store of N blood-pressure readings, beside the SQLite floor.

The floor is plain `sqlite3` inserting the same Observation JSON texts, one commit per reading, in WAL mode
with synchronous=FULL: what durability alone costs on this disk. Target (issue 2): the pipeline costs at
most 3x the floor. Run: .venv/bin/python benchmarks/ingest.py [readings]
"""

from __future__ import annotations

import sqlite3
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.registry import get_codec
from healthhut.gateway.ingest import Ingestor, IngestStatus
from healthhut.readings import DeviceIdentity, Transport
from healthhut.records.drafts import PatientRef
from healthhut.records.normalise import NormaliseSettings
from healthhut.records.store import RecordStore

SITE_TZ = ZoneInfo("Asia/Shanghai")
PATIENT = PatientRef(system="urn:oid:2.999.1", value="bench-resident")


def bp_frame(index: int) -> bytes:
    """A Blood Pressure Measurement with time stamp and pulse; a new minute for every reading."""
    at = datetime(2024, 1, 1, 8, 0) + timedelta(minutes=index)
    systolic, diastolic, mean = 110 + index % 60, 70 + index % 30, 90 + index % 20
    return (bytes([0x06]) + struct.pack("<hhh", systolic, diastolic, mean)
            + struct.pack("<HBBBBB", at.year, at.month, at.day, at.hour, at.minute, at.second)
            + struct.pack("<h", 60 + index % 40))


def run_pipeline(db: Path, frames: list[bytes]) -> tuple[float, list[list[str]]]:
    store = RecordStore.open(db)
    codec = get_codec("bls.measurement")
    ingestor = Ingestor(store, NormaliseSettings(site_id="bench-hut"))
    context = ReadingContext(device=DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74"),
                             received_at=datetime.now(UTC), timezone=SITE_TZ)
    start = time.perf_counter()
    for frame in frames:
        outcomes = ingestor.ingest_frame(codec, frame, context, PATIENT)
        if outcomes[0].status is not IngestStatus.STORED:
            raise SystemExit(f"unexpected outcome {outcomes[0]}")
    elapsed = time.perf_counter() - start
    texts = [[row] for row in store.iter_observation_json()] if hasattr(store, "iter_observation_json") else []
    store.close()
    return elapsed, texts


def run_floor(db: Path, per_reading: list[list[str]]) -> float:
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE observations (id INTEGER PRIMARY KEY, json TEXT NOT NULL)")
    start = time.perf_counter()
    for texts in per_reading:
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO observations (json) VALUES (?)", [(t,) for t in texts])
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    frames = [bp_frame(i) for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_s, stored = run_pipeline(Path(tmp) / "pipeline.db", frames)
        texts = [row[0] for row in stored]
        per_reading = [texts[i:i + 2] for i in range(0, len(texts), 2)]
        floor_s = run_floor(Path(tmp) / "floor.db", per_reading)
    print(f"pipeline: {count} readings ({len(texts)} observations) in {pipeline_s:.2f} s "
          f"= {count / pipeline_s:,.0f} readings/s")
    print(f"floor:    same JSON, plain sqlite3, one commit per reading, WAL + synchronous=FULL: {floor_s:.2f} s "
          f"= {count / floor_s:,.0f} readings/s")
    print(f"ratio:    pipeline / floor = {pipeline_s / floor_s:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
