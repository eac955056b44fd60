"""Group commit (`RecordStore.save_readings`) on real SQLite files: same rows as one-by-one saves, all or nothing."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from healthhut.errors import StoreError
from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.store import OutboxState, ReadingToSave, RecordStore, StoreOutcome, StoreResult

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HUT = timezone(timedelta(hours=8))
RESIDENT = PatientRef("urn:oid:2.16.840.1.113883.2.4.6.3", "ID-SECRET-0815")
OTHER = PatientRef("urn:oid:2.16.840.1.113883.2.4.6.3", "ID-SECRET-0816")
SECRET_VALUE = "187"  # a systolic value that must never reach a log line
TABLES = ("readings", "observations", "outbox", "patients", "devices", "audit")


def patient_resource(patient: PatientRef) -> dict[str, object]:
    return {"resourceType": "Patient", "identifier": [{"system": patient.system, "value": patient.value}]}


def device_resource(address: str) -> dict[str, object]:
    return {"resourceType": "Device", "identifier": [{"value": address}]}


def bp_reading(minute: int = 0, *, address: str = "AA:BB:CC:DD:EE:01") -> Reading:
    measured = datetime(2026, 3, 1, 8, minute, tzinfo=HUT)
    return Reading(
        kind=ReadingKind.BLOOD_PRESSURE,
        device=DeviceIdentity(Transport.BLE, address=address, model="UA-651BLE"),
        received_at=NOW, measured_at=measured, time_source=TimeSource.DEVICE,
        values={Metric.SYSTOLIC: Quantity.of(SECRET_VALUE, Unit.MMHG),
                Metric.DIASTOLIC: Quantity.of("91", Unit.MMHG)},
        raw=bytes.fromhex("1ebb00" + "5b00"),
    )


def drafts_for(reading: Reading, patient: PatientRef | None,
               codes: Sequence[str] = ("85354-9", "8867-4")) -> list[ObservationDraft]:
    """What the normaliser would hand over, built by hand: one draft per code."""
    stamp = reading.effective_at.isoformat()
    drafts = []
    for code in codes:
        local_key = f"{reading.device.key}|{code}|{stamp}"
        identifier = None if patient is None else f"{patient.value}|{local_key}"
        resource = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": code}]},
                    "valueQuantity": {"value": int(SECRET_VALUE)}}
        drafts.append(ObservationDraft(local_key=local_key, identifier=identifier, code=code, mdc_code=None,
                                       effective_at=reading.effective_at, interpretation="H",
                                       resource=resource, json=json.dumps(resource, separators=(",", ":"))))
    return drafts


def item(minute: int = 0, patient: PatientRef | None = RESIDENT, *, seconds: int = 0,
         address: str = "AA:BB:CC:DD:EE:01", codes: Sequence[str] = ("85354-9", "8867-4"),
         with_resource: bool = True) -> ReadingToSave:
    reading = bp_reading(minute, address=address)
    return ReadingToSave(reading=reading, drafts=drafts_for(reading, patient, codes), patient=patient,
                         patient_resource=patient_resource(patient) if patient and with_resource else None,
                         device_resource=device_resource(address), now=NOW + timedelta(seconds=seconds))


def one_by_one(store: RecordStore, items: Sequence[ReadingToSave]) -> list[StoreResult]:
    return [store.save_reading(i.reading, i.drafts, patient=i.patient, patient_resource=i.patient_resource,
                               device_resource=i.device_resource, now=i.now) for i in items]


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the ingest tables, ids and times included (both stores start empty with the same `now`s)."""
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(tmp_path / "batch" / "records.db")
    yield s
    s.close()


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(tmp_path / "single" / "records.db")
    yield s
    s.close()


SECOND = "AA:BB:CC:DD:EE:02"
RENAMED = {**patient_resource(RESIDENT), "name": [{"text": "renamed"}]}

# A burst with everything that makes per-reading results differ: held and attributed readings, two devices,
# the same device seen again within and after the last_seen resolution (a skipped upsert shows in
# devices.last_seen), copies inside the batch whose device/patient upserts must be rolled back with them,
# a partial overlap, a known resident without resource.
MIXED = [
    item(0),
    item(1, None, seconds=20),
    item(0, seconds=30),                                     # copy of the first: DUPLICATE
    item(2, address=SECOND, seconds=40),
    item(3, codes=("85354-9",), seconds=70),                 # device seen again after a minute: upserted
    item(3, codes=("85354-9", "8867-4"), seconds=80),        # partial overlap: one new observation
    item(4, with_resource=False, seconds=90),                # resident known from earlier in the batch
    item(1, None, seconds=200),                              # held copy: DUPLICATE, its device upsert undone
    item(10, seconds=230),                                   # so this one upserts the device again
    item(5, OTHER, address=SECOND, seconds=240),
    item(6, None, address=SECOND, seconds=300),
    replace(item(0, seconds=400), patient_resource=RENAMED),  # DUPLICATE: neither upsert may survive
]


def test_a_batch_gives_the_same_results_and_rows_as_saving_one_by_one(store: RecordStore,
                                                                      twin: RecordStore) -> None:
    batch = store.save_readings(MIXED)
    single = one_by_one(twin, MIXED)
    assert batch == single
    stored, held, duplicate = StoreOutcome.STORED, StoreOutcome.HELD, StoreOutcome.DUPLICATE
    assert [r.outcome for r in batch] == [stored, held, duplicate, stored, stored, stored, stored, duplicate,
                                          stored, stored, held, duplicate]
    assert [r.duplicates for r in batch] == [0, 0, 2, 0, 0, 1, 0, 2, 0, 0, 0, 2]
    assert batch[5].reading_id == batch[4].reading_id  # the overlap joined the existing reading
    rows = dump(store.path)
    assert rows == dump(twin.path)
    assert len(rows["audit"]) == 9 and len(rows["devices"]) == 2
    assert [row[-1] for row in rows["devices"]] == ["2026-03-01T09:03:50.000000+00:00",  # not 09:06:40
                                                    "2026-03-01T09:05:00.000000+00:00"]
    assert all("renamed" not in str(row) for row in rows["patients"])


def test_a_batch_after_earlier_commits_matches_one_by_one(store: RecordStore, twin: RecordStore) -> None:
    earlier = [item(0), item(1, None), item(3, codes=("85354-9",))]
    store.save_readings(earlier)
    one_by_one(twin, earlier)
    later = [item(0, seconds=600), item(1, None, seconds=610), item(3, seconds=620), item(7, seconds=630),
             item(7, seconds=640), item(8, with_resource=False, seconds=650)]
    batch = store.save_readings(later)
    assert batch == one_by_one(twin, later)
    assert [r.outcome for r in batch] == [StoreOutcome.DUPLICATE, StoreOutcome.DUPLICATE, StoreOutcome.STORED,
                                          StoreOutcome.STORED, StoreOutcome.DUPLICATE, StoreOutcome.STORED]
    assert dump(store.path) == dump(twin.path)


def test_two_copies_in_one_batch_store_once(store: RecordStore) -> None:
    first, second = store.save_readings([item(0), item(0)])
    assert first.outcome is StoreOutcome.STORED and len(first.observation_ids) == 2
    assert second == StoreResult(StoreOutcome.DUPLICATE, None, (), 2)
    assert counts(store.path) == {"readings": 1, "observations": 2, "outbox": 2, "patients": 1, "devices": 1,
                                  "audit": 1}


def test_held_and_attributed_readings_in_one_batch_get_their_own_outbox_state(store: RecordStore) -> None:
    results = store.save_readings([item(0, None), item(1), item(2, None), item(3)])
    assert [r.outcome for r in results] == [StoreOutcome.HELD, StoreOutcome.STORED] * 2
    outbox = store.outbox_counts()
    assert outbox[OutboxState.HELD] == 4 and outbox[OutboxState.PENDING] == 4
    assert [h.reading_id for h in store.unassigned()] == [results[0].reading_id, results[2].reading_id]


def test_a_batch_of_only_known_readings_changes_nothing(store: RecordStore) -> None:
    store.save_readings([item(0), item(1)])
    before = dump(store.path)
    again = store.save_readings([item(1, seconds=300), item(0, seconds=300)])
    assert [r.outcome for r in again] == [StoreOutcome.DUPLICATE] * 2
    assert dump(store.path) == before  # not even devices.last_seen moved


@pytest.mark.parametrize("position", [0, 2, 4])
def test_a_failing_reading_rolls_back_the_whole_batch(store: RecordStore, position: int) -> None:
    store.save_readings([item(50, None, address="AA:BB:CC:DD:EE:09")])  # held: no resident row yet
    before = dump(store.path)
    batch = [item(0), item(1, None), item(2), item(3, OTHER), item(4)]
    batch.insert(position, item(9, PatientRef("urn:oid:2.999", "never-seen"), with_resource=False))
    with pytest.raises(StoreError, match="no Patient resource is stored"):
        store.save_readings(batch)
    assert dump(store.path) == before
    # nothing of the failed batch was remembered: the resident and device rows are written again
    with pytest.raises(StoreError, match="no Patient resource is stored"):
        store.save_readings([item(0, with_resource=False)])
    assert store.save_readings([item(0)])[0].outcome is StoreOutcome.STORED
    assert counts(store.path)["devices"] == 2 and counts(store.path)["patients"] == 1


def test_a_database_error_mid_batch_rolls_back_and_is_a_store_error(store: RecordStore) -> None:
    good = item(0)
    bad_draft = replace(good.drafts[1], code=None)  # type: ignore[arg-type]  # NOT NULL column
    broken = replace(item(1), drafts=[item(1).drafts[0], bad_draft])
    with pytest.raises(StoreError, match="saving a batch of 3 readings failed") as caught:
        store.save_readings([good, item(2, None), broken])
    assert RESIDENT.value not in str(caught.value) and SECRET_VALUE not in str(caught.value)
    assert counts(store.path) == dict.fromkeys(TABLES, 0)
    assert [r.outcome for r in store.save_readings([good, item(2, None)])] == [StoreOutcome.STORED,
                                                                                StoreOutcome.HELD]


def test_an_attributed_draft_without_identifier_refuses_the_batch(store: RecordStore) -> None:
    unidentified = replace(item(1), drafts=drafts_for(bp_reading(1), None))
    with pytest.raises(StoreError, match="needs its identifier"):
        store.save_readings([item(0), unidentified])
    assert counts(store.path) == dict.fromkeys(TABLES, 0)


def test_an_empty_batch_does_not_touch_the_database(store: RecordStore) -> None:
    blocker = sqlite3.connect(store.path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # any write transaction would now wait for the busy timeout
        began = time.monotonic()
        assert store.save_readings([]) == []
        assert time.monotonic() - began < 1.0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_save_reading_is_a_batch_of_one(store: RecordStore, twin: RecordStore) -> None:
    for i in MIXED:
        store.save_readings([i])
    one_by_one(twin, MIXED)
    assert dump(store.path) == dump(twin.path)


def test_batch_logs_carry_no_identifiers_values_or_json(store: RecordStore, all_log_lines: list[str]) -> None:
    store.save_readings(MIXED)
    with pytest.raises(StoreError):
        store.save_readings([item(20), item(21, PatientRef("urn:oid:2.999", "nobody"), with_resource=False)])
    text = "\n".join(all_log_lines)
    assert "reading" in text, "the writer should log what it did"
    for secret in (RESIDENT.value, OTHER.value, "nobody", SECRET_VALUE, "valueQuantity", "resourceType"):
        assert secret not in text


async def test_batches_from_worker_threads_are_serialised(store: RecordStore) -> None:
    import asyncio

    batches = [[item(m % 10, seconds=m), item((m + 1) % 10, None, address="AA:BB:CC:DD:EE:03", seconds=m)]
               for m in range(20)]
    results = await asyncio.gather(*(asyncio.to_thread(store.save_readings, b) for b in batches))
    outcomes = [r.outcome for batch in results for r in batch]
    assert outcomes.count(StoreOutcome.STORED) == 10 and outcomes.count(StoreOutcome.HELD) == 10
    assert (await asyncio.to_thread(counts, store.path))["readings"] == 20
