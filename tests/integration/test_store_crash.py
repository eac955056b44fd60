"""SIGKILL a writer (and a sync claimer) at random points: every committed reading is whole, nothing is half."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthhut.records.store import OutboxState, RecordStore

WRITER = r'''
import json, sys
from datetime import UTC, datetime, timedelta
from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.store import RecordStore

store = RecordStore.open(sys.argv[1])
start = int(sys.argv[2])
resident = PatientRef("urn:oid:2.999.7", "R-77")
t0 = datetime(2026, 3, 1, tzinfo=UTC)
print("ready", flush=True)
for i in range(start, start + 100_000):
    at = t0 + timedelta(seconds=i)
    device = DeviceIdentity(Transport.BLE, address="AA:00:00:00:00:01")
    reading = Reading(kind=ReadingKind.BLOOD_PRESSURE, device=device, received_at=at, measured_at=at,
                      time_source=TimeSource.DEVICE, values={Metric.SYSTOLIC: Quantity.of(120, Unit.MMHG)},
                      raw=bytes(40))
    patient = resident if i % 3 else None  # every third reading waits unassigned
    drafts = []
    for code in ("85354-9", "8867-4"):
        key = f"AA:00:00:00:00:01|{code}|{at.isoformat()}"
        body = {"resourceType": "Observation", "code": code, "i": i, "pad": "x" * 300}
        drafts.append(ObservationDraft(key, None if patient is None else f"R-77|{key}", code, None, at, "N",
                                       body, json.dumps(body)))
    result = store.save_reading(reading, drafts, patient=patient,
                                patient_resource=None if patient is None else {"resourceType": "Patient", "id": "p"},
                                device_resource={"resourceType": "Device", "id": "d"}, now=at)
    print(i, result.outcome.value, flush=True)
'''

CLAIMER = r'''
import sys
from datetime import UTC, datetime, timedelta
from healthhut.records.store import RecordStore

store = RecordStore.open(sys.argv[1])
now = datetime(2030, 1, 1, tzinfo=UTC)
print("ready", flush=True)
while True:
    items = store.claim_batch(limit=5, now=now, lease=timedelta(minutes=5), worker="crashy")
    if items:
        store.mark_sent([items[0].outbox_id], now=now)
'''


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def reading_key(i: int) -> str:
    at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=i)
    return f"AA:00:00:00:00:01|blood_pressure|t{at.isoformat(timespec='microseconds')}"


def check_invariants(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphans = conn.execute("SELECT count(*) FROM observations o LEFT JOIN outbox b ON b.observation_id = o.id "
                               "WHERE b.id IS NULL").fetchone()[0]
        assert orphans == 0, "an observation without its outbox row"
        per_reading = conn.execute("SELECT r.id, count(o.id) FROM readings r LEFT JOIN observations o "
                                   "ON o.reading_id = r.id GROUP BY r.id").fetchall()
        assert all(n == 2 for _, n in per_reading), "a half-written reading"
        audits = conn.execute("SELECT count(*) FROM audit WHERE entity = 'reading'").fetchone()[0]
        assert audits == len(per_reading)
        bad_state = conn.execute(
            "SELECT count(*) FROM outbox b JOIN observations o ON o.id = b.observation_id "
            "WHERE (o.patient_id IS NULL) != (b.state = 'held')").fetchone()[0]
        assert bad_state == 0
        return len(per_reading)


@pytest.mark.slow  # ~12 s on an idle machine: six rounds of two Python processes
def test_sigkill_at_random_points_never_leaves_a_half_written_reading(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    RecordStore.open(path).close()
    rng = random.Random(20260301)
    acknowledged: set[int] = set()
    start = 0
    for _round in range(6):
        writer = spawn(WRITER, str(path), str(start))
        claimer = spawn(CLAIMER, str(path))
        time.sleep(rng.uniform(0.2, 0.8))  # a random point in the write loop, not a backoff
        for proc in (writer, claimer):
            proc.send_signal(signal.SIGKILL)
        lines = writer.communicate()[0].splitlines()
        claimer.communicate()
        acknowledged |= {int(line.split()[0]) for line in lines if line.strip()}
        stored = check_invariants(path)
        assert stored > 0
        # every save_reading that returned is committed (acknowledged before the kill)
        with sqlite3.connect(path) as conn:
            keys = {row[0] for row in conn.execute("SELECT local_key FROM readings")}
        assert [i for i in acknowledged if reading_key(i) not in keys] == []
        # overlap the next run with the last one: re-delivered readings must come back as duplicates
        start = max(acknowledged) - 5 if acknowledged else 0
    store = RecordStore.open(path)
    try:
        # a claimer killed in SENDING: its rows come back at start-up once the lease is over
        store.release_expired_leases(now=datetime(2030, 1, 1, 1, tzinfo=UTC))
        counts = store.outbox_counts()
        assert counts[OutboxState.SENDING] == 0
        assert counts[OutboxState.SENT] > 0 and counts[OutboxState.HELD] > 0
    finally:
        store.close()
    check_invariants(path)
