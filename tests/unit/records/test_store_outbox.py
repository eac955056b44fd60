"""Outbox transitions on a real SQLite file: claim with lease, sent, retry, dead, manual retry, recovery."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.store import OutboxState, RecordStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
RESIDENT = PatientRef("urn:oid:2.999.7", "R-0099")
PATIENT = {"resourceType": "Patient", "id": "p-uuid"}
DEVICE = {"resourceType": "Device", "id": "d-uuid"}


def spo2(i: int) -> tuple[Reading, list[ObservationDraft]]:
    at = T0 + timedelta(minutes=i)
    reading = Reading(kind=ReadingKind.SPO2, device=DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0"),
                      received_at=at, measured_at=at, time_source=TimeSource.RECEIPT, sequence=i,
                      values={Metric.SPO2: Quantity.of(97, Unit.PERCENT)})
    key = f"/DEV/TTYUSB0|59408-5|s{i}"
    text = json.dumps({"resourceType": "Observation", "n": i})
    return reading, [ObservationDraft(key, f"{RESIDENT.value}|{key}", "59408-5", "150456", at, "N",
                                      json.loads(text), text)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(tmp_path / "records.db")
    for i in range(5):
        reading, drafts = spo2(i)
        s.save_reading(reading, drafts, patient=RESIDENT, patient_resource=PATIENT, device_resource=DEVICE,
                       now=T0 + timedelta(minutes=i))
    yield s
    s.close()


def claim(store: RecordStore, now: datetime, limit: int = 10, worker: str = "w1") -> list[int]:
    return [item.outbox_id for item in store.claim_batch(limit=limit, now=now, lease=LEASE, worker=worker)]


def test_claim_returns_oldest_first_with_everything_a_bundle_needs(store: RecordStore) -> None:
    items = store.claim_batch(limit=2, now=T0 + timedelta(hours=1), lease=LEASE, worker="w1")
    assert [json.loads(i.observation_json)["n"] for i in items] == [0, 1]
    assert all(i.patient_json == json.dumps(PATIENT, separators=(",", ":")) for i in items)
    assert all(json.loads(i.device_json) == DEVICE and i.gateway_json is None for i in items)
    assert items[0].identifier.startswith(RESIDENT.value) and items[0].attempts == 0
    assert RESIDENT.value not in repr(items[0])
    assert store.outbox_counts()[OutboxState.SENDING] == 2


def test_two_claims_never_return_the_same_row(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    first, second = claim(store, now, limit=3), claim(store, now, limit=3, worker="w2")
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert claim(store, now) == []


def test_concurrent_claims_from_threads_partition_the_rows(tmp_path: Path, store: RecordStore) -> None:
    stores = [RecordStore.open(store.path) for _ in range(4)]
    got: list[list[int]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def worker(n: int) -> None:
        barrier.wait()
        for _ in range(5):
            got[n] += claim(stores[n], T0 + timedelta(hours=1), limit=1, worker=f"w{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    everything = [i for ids in got for i in ids]
    assert sorted(everything) == sorted(set(everything)) and len(everything) == 5


def test_due_time_is_respected(store: RecordStore) -> None:
    assert claim(store, T0 + timedelta(minutes=1, seconds=30)) == [1, 2]  # queued at T0 and T0+1min


def test_an_expired_lease_returns_the_row_to_claims(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    ids = claim(store, now, limit=1)
    assert claim(store, now + LEASE, limit=1) != ids  # lease_until == now: still held
    again = store.claim_batch(limit=10, now=now + LEASE + timedelta(seconds=1), lease=LEASE, worker="w2")
    assert ids[0] in [i.outbox_id for i in again]


def test_release_expired_leases_recovers_a_crash_in_sending(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    ids = claim(store, now)
    assert store.release_expired_leases(now=now) == 0
    assert store.release_expired_leases(now=now + LEASE + timedelta(seconds=1)) == len(ids)
    assert store.outbox_counts()[OutboxState.PENDING] == 5 and store.outbox_counts()[OutboxState.SENDING] == 0


def test_mark_sent_is_final(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    ids = claim(store, now, limit=2)
    store.mark_sent(ids, now=now)
    store.schedule_retry(ids, now=now, next_attempt_at=now, error="late 503")  # a slower worker's verdict
    counts = store.outbox_counts()
    assert counts[OutboxState.SENT] == 2 and counts[OutboxState.PENDING] == 3
    assert set(ids).isdisjoint(claim(store, now + timedelta(days=1)))


def test_schedule_retry_counts_attempts_and_waits(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    [first] = claim(store, now, limit=1)
    store.schedule_retry([first], now=now, next_attempt_at=now + timedelta(minutes=5), error="timeout")
    assert first not in claim(store, now + timedelta(minutes=4))
    items = store.claim_batch(limit=10, now=now + timedelta(minutes=5), lease=LEASE, worker="w")
    assert [(i.outbox_id, i.attempts) for i in items] == [(first, 1)]


def test_dead_letters_and_manual_retry(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    a, b = claim(store, now, limit=2)
    store.mark_dead(a, now=now, reason="422 unprocessable", outcome_json='{"resourceType":"OperationOutcome"}')
    store.mark_dead(b, now=now, reason="400 bad", outcome_json=None)
    letters = store.dead_letters()
    assert [(d.outbox_id, d.code, d.reason, d.dead_at) for d in letters] == [
        (a, "59408-5", "422 unprocessable", now), (b, "59408-5", "400 bad", now)]
    assert letters[0].outcome_json == '{"resourceType":"OperationOutcome"}'
    assert store.retry_dead([a], now=now) == 1
    assert [d.outbox_id for d in store.dead_letters()] == [b]
    assert store.retry_dead(None, now=now) == 1
    assert store.dead_letters() == [] and store.outbox_counts()[OutboxState.PENDING] == 5
    assert [i.attempts for i in store.claim_batch(limit=10, now=now, lease=LEASE, worker="w")] == [0] * 5


def test_counts_and_oldest_pending(store: RecordStore) -> None:
    assert store.outbox_counts() == {OutboxState.HELD: 0, OutboxState.PENDING: 5, OutboxState.SENDING: 0,
                                     OutboxState.SENT: 0, OutboxState.DEAD: 0}
    assert store.oldest_pending_at() == T0
    store.mark_sent(claim(store, T0 + timedelta(hours=1)), now=T0)
    assert store.oldest_pending_at() is None
