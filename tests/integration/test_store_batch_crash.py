"""SIGKILL a process writing group commits (`save_readings`) at random points: a batch is all there or absent."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from healthhut.records.store import RecordStore

BATCH = 10  # new readings per batch; each batch also re-sends one known reading and copies one of its own

WRITER = r'''
import json, sys
from datetime import UTC, datetime, timedelta
from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.store import ReadingToSave, RecordStore

BATCH = int(sys.argv[3])
store = RecordStore.open(sys.argv[1])
first_batch = int(sys.argv[2])
resident = PatientRef("urn:oid:2.999.7", "R-78")
t0 = datetime(2026, 3, 1, tzinfo=UTC)
device = DeviceIdentity(Transport.BLE, address="AA:00:00:00:00:02")


def item(i):
    at = t0 + timedelta(seconds=i)
    reading = Reading(kind=ReadingKind.BLOOD_PRESSURE, device=device, received_at=at, measured_at=at,
                      time_source=TimeSource.DEVICE, values={Metric.SYSTOLIC: Quantity.of(120, Unit.MMHG)},
                      raw=bytes(40))
    patient = resident if i % 3 else None  # every third reading waits unassigned
    drafts = []
    for code in ("85354-9", "8867-4"):
        key = f"AA:00:00:00:00:02|{code}|{at.isoformat()}"
        body = {"resourceType": "Observation", "code": code, "i": i, "pad": "x" * 300}
        drafts.append(ObservationDraft(key, None if patient is None else f"R-78|{key}", code, None, at, "N",
                                       body, json.dumps(body)))
    return ReadingToSave(reading, drafts, patient,
                         None if patient is None else {"resourceType": "Patient", "id": "p"},
                         {"resourceType": "Device", "id": "d"}, at)


print("ready", flush=True)
for b in range(first_batch, first_batch + 100_000):
    new = [item(b * BATCH + k) for k in range(BATCH)]
    items = ([item(b * BATCH - 1)] if b else []) + new[:3] + [new[0]] + new[3:]
    results = store.save_readings(items)
    print(b, " ".join(r.outcome.value for r in results), flush=True)
'''


def spawn(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stored_readings(path: Path) -> list[int]:
    """Index i of every stored reading (its device time is t0 + i seconds)."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    with sqlite3.connect(path) as conn:
        keys = [row[0] for row in conn.execute("SELECT local_key FROM readings")]
    return [int((datetime.fromisoformat(k.rsplit("|t", 1)[1]) - t0) / timedelta(seconds=1)) for k in keys]


def check_invariants(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        per_reading = conn.execute("SELECT r.id, count(o.id), count(b.id) FROM readings r LEFT JOIN observations o "
                                   "ON o.reading_id = r.id LEFT JOIN outbox b ON b.observation_id = o.id "
                                   "GROUP BY r.id").fetchall()
        assert all(n == 2 and m == 2 for _, n, m in per_reading), "a half-written reading"
        audits = conn.execute("SELECT count(*) FROM audit WHERE entity = 'reading'").fetchone()[0]
        assert audits == len(per_reading), "an audit row of a rolled-back duplicate, or one missing"
        bad_state = conn.execute(
            "SELECT count(*) FROM outbox b JOIN observations o ON o.id = b.observation_id "
            "WHERE (o.patient_id IS NULL) != (b.state = 'held')").fetchone()[0]
        assert bad_state == 0


def test_sigkill_during_group_commits_leaves_whole_batches_or_none(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    RecordStore.open(path).close()
    rng = random.Random(20261129)
    acknowledged: set[int] = set()
    first_batch = 0
    for _round in range(4):
        writer = spawn(str(path), str(first_batch), str(BATCH))
        time.sleep(rng.uniform(0.3, 0.9))  # a random point in the write loop, not a backoff
        writer.send_signal(signal.SIGKILL)
        lines = [line.split() for line in writer.communicate()[0].splitlines() if line.strip()]
        assert lines, "the writer should have acknowledged some batches"
        for index, (number, *outcomes) in enumerate(lines):
            batch = int(number)
            acknowledged.add(batch)
            copy_at = 3 if batch == 0 else 4
            assert outcomes[copy_at] == "duplicate", "a copy inside the batch stored twice"
            if batch and index:  # the reading re-sent from the batch before, committed by this writer
                assert outcomes[0] == "duplicate"
        check_invariants(path)
        per_batch: dict[int, int] = {}
        for i in stored_readings(path):
            per_batch[i // BATCH] = per_batch.get(i // BATCH, 0) + 1
        assert {b: n for b, n in per_batch.items() if n != BATCH} == {}, "half a batch committed"
        assert sorted(acknowledged - set(per_batch)) == [], "a batch reported stored is missing"
        # overlap the next run with this one: re-sent batches must come back as duplicates only
        first_batch = max(acknowledged) - 2
    assert len(acknowledged) > 4
