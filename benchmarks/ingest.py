"""Ingest rate: decode -> normalise -> durable store of N blood-pressure readings, beside the SQLite floor.

The floor is plain `sqlite3` inserting the same Observation JSON texts, one commit per reading, in WAL mode
with synchronous=FULL: what durability alone costs on this disk. Target (issue 2): the pipeline costs at
most 3x the floor. Run: .venv/bin/python benchmarks/ingest.py [readings] (default 20,000)

Four loops run interleaved in chunks (rotating which goes first), so a disk or CPU that other work slows down
slows all of them alike:
- pipeline, one at a time: `Ingestor.ingest_frame`, one durable commit per reading: a live measurement;
- pipeline, burst: `Ingestor.ingest_frames` on each chunk of 100 frames, one durable group commit per chunk,
  each reading still atomic and de-duplicated on its own: what `healthhut replay` and stored-record downloads
  run, where readings arrive many at once;
- staged: the same steps called one by one into a second store, each timed (decode, normalise-build,
  serialise, validate, store), to show where the time goes; its total should match the pipeline's;
- floor: the staged run's JSON texts, plain sqlite3, one commit per reading.
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

from healthhut.drivers.codecs.base import Codec, ReadingContext
from healthhut.drivers.codecs.registry import get_codec
from healthhut.gateway.ingest import IncomingFrame, Ingestor, IngestStatus
from healthhut.readings import DeviceIdentity, Transport
from healthhut.records import fhir_json
from healthhut.records.drafts import PatientRef
from healthhut.records.normalise import (
    NormaliseSettings,
    assemble_draft,
    build_observations,
    device_resource,
    patient_resource,
)
from healthhut.records.store import RecordStore, StoreOutcome

SITE_TZ = ZoneInfo("Asia/Shanghai")
SITE_ID = "bench-hut"
PATIENT = PatientRef(system="urn:oid:2.999.1", value="bench-resident")
CHUNK = 100
STAGES = ("decode", "normalise-build", "serialise", "validate", "store")


def bp_frame(index: int) -> bytes:
    """A Blood Pressure Measurement with time stamp and pulse; a new minute for every reading."""
    at = datetime(2024, 1, 1, 8, 0) + timedelta(minutes=index)
    systolic, diastolic, mean = 110 + index % 60, 70 + index % 30, 90 + index % 20
    return (bytes([0x06]) + struct.pack("<hhh", systolic, diastolic, mean)
            + struct.pack("<HBBBBB", at.year, at.month, at.day, at.hour, at.minute, at.second)
            + struct.pack("<h", 60 + index % 40))


class Pipeline:
    """The real path: one Ingestor over its own store; `burst` stores each chunk with one group commit."""

    def __init__(self, db: Path, codec: Codec, context: ReadingContext, *, burst: bool) -> None:
        self.store = RecordStore.open(db)
        self.ingestor = Ingestor(self.store, NormaliseSettings(site_id=SITE_ID))
        self.codec, self.context, self.burst, self.seconds, self.cpu_seconds = codec, context, burst, 0.0, 0.0

    def run(self, frames: list[bytes]) -> None:
        start, cpu_start = time.perf_counter(), time.process_time()
        if self.burst:
            per_frame = self.ingestor.ingest_frames(
                self.codec, [IncomingFrame(frame, self.context) for frame in frames], PATIENT)
        else:
            per_frame = [self.ingestor.ingest_frame(self.codec, frame, self.context, PATIENT) for frame in frames]
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu_start
        for outcomes in per_frame:
            if outcomes[0].status is not IngestStatus.STORED:
                raise SystemExit(f"unexpected outcome {outcomes[0]}")


class Staged:
    """The same steps as `Ingestor.ingest_frame` + `observations_for`, called one by one and timed each."""

    def __init__(self, db: Path, codec: Codec, context: ReadingContext) -> None:
        self.store = RecordStore.open(db)
        self.settings = NormaliseSettings(site_id=SITE_ID)
        # what the Ingestor does once, at start-up
        Ingestor(self.store, self.settings)
        self.codec, self.context = codec, context
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def run(self, frames: list[bytes]) -> list[list[str]]:
        clock, spent, texts_per_reading = time.perf_counter, self.seconds, []
        validate = self.settings.validator.validate  # what observations_for does: the full model once per shape
        for frame in frames:
            t0 = clock()
            (reading,) = self.codec.readings(self.codec.decode(frame), self.context)
            t1 = clock()
            pending = build_observations(reading, PATIENT, self.settings)
            t2 = clock()
            texts = [fhir_json.dumps(p.resource) for p in pending]
            t3 = clock()
            for text in texts:
                validate(text)
            t4 = clock()
            drafts = [assemble_draft(p, reading, text) for p, text in zip(pending, texts, strict=True)]
            result = self.store.save_reading(
                reading, drafts, patient=PATIENT, patient_resource=patient_resource(PATIENT),
                device_resource=device_resource(reading.device, kinds=[reading.kind]), now=datetime.now(UTC))
            t5 = clock()
            if result.outcome is not StoreOutcome.STORED:
                raise SystemExit(f"unexpected outcome {result.outcome}")
            for stage, began, ended in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
                spent[stage] += ended - began
            texts_per_reading.append(texts)
        return texts_per_reading


class Floor:
    """Plain sqlite3: the same texts, one durable commit per reading."""

    def __init__(self, db: Path) -> None:
        self.connection = sqlite3.connect(db, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute("CREATE TABLE observations (id INTEGER PRIMARY KEY, json TEXT NOT NULL)")
        self.seconds = self.cpu_seconds = 0.0

    def run(self, per_reading: list[list[str]]) -> None:
        execute, executemany = self.connection.execute, self.connection.executemany
        start, cpu_start = time.perf_counter(), time.process_time()
        for texts in per_reading:
            execute("BEGIN")
            executemany("INSERT INTO observations (json) VALUES (?)", [(t,) for t in texts])
            execute("COMMIT")
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu_start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    frames = [bp_frame(i) for i in range(count)]
    codec = get_codec("bls.measurement")
    context = ReadingContext(device=DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74"),
                             received_at=datetime.now(UTC), timezone=SITE_TZ)
    with tempfile.TemporaryDirectory() as tmp:
        one_by_one = Pipeline(Path(tmp) / "pipeline.db", codec, context, burst=False)
        burst = Pipeline(Path(tmp) / "burst.db", codec, context, burst=True)
        staged = Staged(Path(tmp) / "staged.db", codec, context)
        floor = Floor(Path(tmp) / "floor.db")
        staged_texts: list[str] = []
        for number, start in enumerate(range(0, count, CHUNK)):
            chunk = frames[start:start + CHUNK]
            # the floor needs the staged texts, so it never goes first; the other three rotate every chunk
            order: list[Pipeline | Staged] = [one_by_one, burst, staged]
            shift = number % len(order)
            texts: list[list[str]] = []
            for loop in order[shift:] + order[:shift]:
                if isinstance(loop, Staged):
                    texts = loop.run(chunk)
                else:
                    loop.run(chunk)
            floor.run(texts)
            staged_texts.extend(text for reading_texts in texts for text in reading_texts)
        for pipeline in (one_by_one, burst):
            if list(pipeline.store.iter_observation_json()) != staged_texts:
                raise SystemExit("a pipeline stored other JSON than the staged run: the breakdown would be wrong")
        for store in (one_by_one.store, burst.store, staged.store):
            store.close()
        floor.connection.close()

    def per_reading(seconds: float) -> str:
        return f"{seconds / count * 1e6:8,.0f} us/reading"

    def rate(loop: Pipeline | Floor) -> str:
        return (f"{per_reading(loop.seconds)} = {count / loop.seconds:7,.0f} readings/s   "
                f"(CPU {per_reading(loop.cpu_seconds)})")

    staged_total = sum(staged.seconds.values())
    print(f"{count:,} blood-pressure readings, {len(staged_texts):,} observations; chunks of {CHUNK}, interleaved")
    print(f"pipeline, one at a time (Ingestor.ingest_frame, a commit each):   {rate(one_by_one)}")
    print(f"pipeline, burst (Ingestor.ingest_frames, a group commit per {CHUNK}): {rate(burst)}")
    print(f"floor (same JSON, plain sqlite3, a commit per reading, WAL + FULL):  {rate(floor)}")
    print("staged breakdown of the one-at-a-time path (the same steps one by one):")
    for stage in STAGES:
        print(f"  {stage:16s} {per_reading(staged.seconds[stage])}")
    print(f"  {'total':16s} {per_reading(staged_total)}")
    print(f"  store - floor    {per_reading(staged.seconds['store'] - floor.seconds)}  (the store's cost above bare "
          "durability)")
    print(f"ratio to the floor (target <= 3x): burst {burst.seconds / floor.seconds:.2f}x, one at a time "
          f"{one_by_one.seconds / floor.seconds:.2f}x, staged {staged_total / floor.seconds:.2f}x")

if __name__ == "__main__":
    main()
