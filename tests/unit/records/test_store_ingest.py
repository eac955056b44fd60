"""RecordStore ingest on real SQLite files: one transaction per reading, duplicates, held -> assigned."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from healthhut.errors import StoreError
from healthhut.readings import DeviceIdentity, Metric, Quantity, Reading, ReadingKind, TimeSource, Transport, Unit
from healthhut.records.drafts import ObservationDraft, PatientRef
from healthhut.records.references import device_reference, gateway_reference, patient_reference
from healthhut.records.store import OutboxState, RecordStore, StoreOutcome

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HUT = timezone(timedelta(hours=8))
RESIDENT = PatientRef("urn:oid:2.16.840.1.113883.2.4.6.3", "ID-SECRET-4711")
SECRET_VALUE = "173"  # a systolic value that must never reach a log line


def bp_reading(minute: int = 0, *, systolic: str = SECRET_VALUE, address: str = "AA:BB:CC:DD:EE:01") -> Reading:
    measured = datetime(2026, 3, 1, 8, minute, tzinfo=HUT)
    return Reading(
        kind=ReadingKind.BLOOD_PRESSURE,
        device=DeviceIdentity(Transport.BLE, address=address, model="UA-651BLE"),
        received_at=NOW,
        measured_at=measured,
        time_source=TimeSource.DEVICE,
        values={Metric.SYSTOLIC: Quantity.of(systolic, Unit.MMHG), Metric.DIASTOLIC: Quantity.of("91", Unit.MMHG),
                Metric.PULSE_RATE: Quantity.of(Decimal("72"), Unit.PER_MINUTE)},
        raw=bytes.fromhex("1eab00" + "5b00"),
    )


def drafts_for(reading: Reading, patient: PatientRef | None, codes: Sequence[str] = ("85354-9", "8867-4"),
               interpretation: str | None = "H") -> list[ObservationDraft]:
    """What the normaliser would hand over, built by hand: one draft per code."""
    stamp = reading.measured_at.isoformat() if reading.measured_at else reading.received_at.isoformat()
    drafts = []
    for code in codes:
        local_key = f"{reading.device.key}|{code}|{stamp}"
        identifier = None if patient is None else f"{patient.value}|{local_key}"
        resource = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": code}]},
                    "valueQuantity": {"value": float(reading.values[Metric.SYSTOLIC].value or 0)},
                    "subject": None if patient is None else {"reference": "urn:uuid:1234"}}
        drafts.append(ObservationDraft(
            local_key=local_key, identifier=identifier, code=code, mdc_code="150020",
            effective_at=reading.effective_at, interpretation=interpretation if code == codes[0] else "N",
            resource=resource, json=json.dumps(resource, separators=(",", ":"))))
    return drafts


PATIENT_RESOURCE = {"resourceType": "Patient", "id": "5f0c0a34-0000-5000-8000-000000000001",
                    "identifier": [{"system": RESIDENT.system, "value": RESIDENT.value}]}
DEVICE_RESOURCE = {"resourceType": "Device", "id": "5f0c0a34-0000-5000-8000-0000000000d1"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(tmp_path / "state" / "records.db")
    yield s
    s.close()


def save(store: RecordStore, reading: Reading, patient: PatientRef | None = RESIDENT, **kw: object):
    drafts = kw.pop("drafts", None) or drafts_for(reading, patient)
    return store.save_reading(reading, drafts, patient=patient,
                              patient_resource=PATIENT_RESOURCE if patient else None,
                              device_resource=DEVICE_RESOURCE, now=NOW, **kw)  # type: ignore[arg-type]


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("readings", "observations", "outbox", "patients", "devices", "audit")}


def test_a_reading_with_a_resident_is_stored_with_one_pending_outbox_row_per_observation(store: RecordStore) -> None:
    result = save(store, bp_reading())
    assert result.outcome is StoreOutcome.STORED
    assert result.reading_id is not None and len(result.observation_ids) == 2 and result.duplicates == 0
    assert store.outbox_counts()[OutboxState.PENDING] == 2
    assert table_counts(store.path) == {"readings": 1, "observations": 2, "outbox": 2, "patients": 1,
                                        "devices": 1, "audit": 1}


def test_observation_json_is_stored_exactly_as_given(store: RecordStore) -> None:
    reading = bp_reading()
    drafts = drafts_for(reading, RESIDENT)
    save(store, reading, drafts=drafts)
    assert list(store.iter_observation_json()) == [d.json for d in drafts]


def test_the_same_reading_twice_is_a_duplicate_and_changes_nothing(store: RecordStore) -> None:
    save(store, bp_reading())
    before = table_counts(store.path)
    again = save(store, bp_reading())
    assert again.outcome is StoreOutcome.DUPLICATE
    assert again.reading_id is None and again.observation_ids == () and again.duplicates == 2
    assert table_counts(store.path) == before


def test_partial_overlap_stores_only_the_new_observation_under_the_existing_reading(store: RecordStore) -> None:
    reading = bp_reading()
    first = save(store, reading, drafts=drafts_for(reading, RESIDENT, codes=("85354-9",)))
    second = save(store, reading, drafts=drafts_for(reading, RESIDENT, codes=("85354-9", "8867-4")))
    assert second.outcome is StoreOutcome.STORED
    assert second.reading_id == first.reading_id
    assert len(second.observation_ids) == 1 and second.duplicates == 1
    assert table_counts(store.path)["observations"] == 2


def test_same_identifier_under_another_local_key_is_a_duplicate(store: RecordStore) -> None:
    reading = bp_reading()
    drafts = drafts_for(reading, RESIDENT, codes=("85354-9",))
    save(store, reading, drafts=drafts)
    other = drafts[0].__class__(**{**{f: getattr(drafts[0], f) for f in drafts[0].__slots__},
                                   "local_key": "another-key"})
    result = save(store, bp_reading(minute=5), drafts=[other])
    assert result.outcome is StoreOutcome.DUPLICATE


def test_a_reading_without_a_resident_is_held(store: RecordStore) -> None:
    result = save(store, bp_reading(), patient=None)
    assert result.outcome is StoreOutcome.HELD
    assert store.outbox_counts()[OutboxState.HELD] == 2
    assert store.claim_batch(limit=10, now=NOW, lease=timedelta(minutes=1), worker="w") == []
    held = store.unassigned()
    assert [h.reading_id for h in held] == [result.reading_id]
    assert held[0].observation_ids == result.observation_ids


def test_assign_patient_rebuilds_held_observations_and_makes_them_pending(store: RecordStore) -> None:
    held = save(store, bp_reading(), patient=None)
    assert held.reading_id is not None
    calls: list[Reading] = []

    def renormalise(reading: Reading, patient: PatientRef) -> list[ObservationDraft]:
        calls.append(reading)
        return drafts_for(reading, patient)

    released = store.assign_patient([held.reading_id], RESIDENT, PATIENT_RESOURCE, renormalise,
                                    actor="nurse-1", now=NOW + timedelta(minutes=3))
    assert released == 2
    assert calls == [bp_reading()]  # the stored Reading came back intact
    assert store.outbox_counts()[OutboxState.PENDING] == 2 and store.outbox_counts()[OutboxState.HELD] == 0
    assert store.unassigned() == []
    items = store.claim_batch(limit=10, now=NOW + timedelta(minutes=3), lease=timedelta(minutes=1), worker="w")
    assert sorted(i.identifier for i in items) == sorted(d.identifier or "" for d in drafts_for(bp_reading(), RESIDENT))
    assert all(json.loads(i.patient_json)["id"] == PATIENT_RESOURCE["id"] for i in items)
    assert all(json.loads(i.device_json)["id"] == DEVICE_RESOURCE["id"] for i in items)
    # a second assignment of the same reading changes nothing
    assert store.assign_patient([held.reading_id], RESIDENT, PATIENT_RESOURCE, renormalise,
                                actor="nurse-1", now=NOW) == 0
    with sqlite3.connect(store.path) as conn:
        actors = conn.execute("SELECT actor FROM audit WHERE action = 'reading.assigned'").fetchall()
    assert actors == [("nurse-1",)]


def test_an_attributed_draft_without_identifier_is_refused(store: RecordStore) -> None:
    reading = bp_reading()
    with pytest.raises(StoreError):
        store.save_reading(reading, drafts_for(reading, None), patient=RESIDENT,
                           patient_resource=PATIENT_RESOURCE, device_resource=DEVICE_RESOURCE, now=NOW)
    assert table_counts(store.path)["readings"] == 0


def test_a_new_resident_needs_a_patient_resource(store: RecordStore) -> None:
    reading = bp_reading()
    with pytest.raises(StoreError):
        store.save_reading(reading, drafts_for(reading, RESIDENT), patient=RESIDENT, patient_resource=None,
                           device_resource=DEVICE_RESOURCE, now=NOW)
    assert table_counts(store.path)["observations"] == 0
    # once the resource is stored, later readings may omit it
    save(store, reading)
    later = bp_reading(minute=9)
    result = store.save_reading(later, drafts_for(later, RESIDENT), patient=RESIDENT, patient_resource=None,
                                device_resource=DEVICE_RESOURCE, now=NOW)
    assert result.outcome is StoreOutcome.STORED


def test_registered_gateway_is_returned_with_claims_even_for_older_observations(store: RecordStore) -> None:
    save(store, bp_reading(0))  # before the gateway is registered
    gateway = {"resourceType": "Device", "identifier": [{"system": "urn:healthhut:gateway", "value": "hut-7"}]}
    assert store.claim_batch(limit=1, now=NOW, lease=timedelta(minutes=1), worker="w")[0].gateway_json is None
    device_id = store.set_gateway("hut-7", gateway, now=NOW)
    assert store.set_gateway("hut-7", gateway, now=NOW) == device_id
    save(store, bp_reading(1))
    items = store.claim_batch(limit=10, now=NOW + timedelta(minutes=2), lease=timedelta(minutes=1), worker="w")
    assert len(items) == 4 and all(i.gateway_json and json.loads(i.gateway_json) == gateway for i in items)
    with sqlite3.connect(store.path) as conn:
        linked = conn.execute("SELECT count(*) FROM observations WHERE gateway_device_id = ?", (device_id,))
        assert linked.fetchone() == (2,)
    other = RecordStore.open(store.path)  # another process: finds the registered gateway in the state table
    try:
        save(other, bp_reading(2))
    finally:
        other.close()
    with sqlite3.connect(store.path) as conn:
        linked = conn.execute("SELECT count(*) FROM observations WHERE gateway_device_id = ?", (device_id,))
        assert linked.fetchone() == (4,)
    assert (gateway_reference("hut-7"), json.dumps(gateway, separators=(",", ":"))) in store.referenced_resources()


def test_checkin_rejection_and_state(store: RecordStore) -> None:
    checkin = store.record_checkin(RESIDENT, station="bp-desk", now=NOW, source="kiosk")
    rejection = store.record_rejection(device_key="AA:BB", codec="bls.measurement", raw_hex="1e00",
                                       reason="truncated frame", now=NOW)
    assert checkin > 0 and rejection > 0
    assert store.find_patient(RESIDENT.system, RESIDENT.value) is not None
    assert store.get_state("ble:AA:BB:racp_seq") is None
    store.set_state("ble:AA:BB:racp_seq", "41")
    store.set_state("ble:AA:BB:racp_seq", "42")
    assert store.get_state("ble:AA:BB:racp_seq") == "42"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT station, source FROM checkins").fetchall() == [("bp-desk", "kiosk")]
        assert conn.execute("SELECT reason FROM rejections").fetchall() == [("truncated frame",)]


def test_clinician_queries(store: RecordStore) -> None:
    save(store, bp_reading(0))
    save(store, bp_reading(30))
    save(store, bp_reading(45, address="AA:BB:CC:DD:EE:02"), patient=None)
    [summary] = store.list_patients()
    assert (summary.identifier_value, summary.observation_count) == (RESIDENT.value, 4)
    assert summary.last_effective_at == bp_reading(30).effective_at
    assert store.find_patient(RESIDENT.system, "nobody") is None
    timeline = store.patient_timeline(RESIDENT)
    assert [v.effective_at for v in timeline] == sorted(v.effective_at for v in timeline)
    assert len(store.patient_timeline(summary.id, since=bp_reading(30).effective_at)) == 2
    assert {v.interpretation for v in store.flagged()} == {"H"} and len(store.flagged()) == 3
    assert len(store.flagged(since=bp_reading(30).effective_at)) == 2
    assert len(store.unassigned()) == 1
    assert len(list(store.iter_observation_json(batch_size=1))) == 6
    assert len(list(store.iter_observation_json(patient=RESIDENT, batch_size=2))) == 4
    assert store.get_reading(timeline[0].reading_id) == bp_reading(0)
    views = list(store.iter_observation_views(batch_size=4))
    assert [v.observation_id for v in views] == sorted(v.observation_id for v in views) and len(views) == 6
    assert {v.outbox_state for v in views} == {"pending", "held"}
    assert len(list(store.iter_observation_views(patient=RESIDENT, since=bp_reading(30).effective_at))) == 2
    assert store.referenced_resources(patient=RESIDENT) == [
        (patient_reference(RESIDENT), json.dumps(PATIENT_RESOURCE, separators=(",", ":"))),
        (device_reference("AA:BB:CC:DD:EE:01"), json.dumps(DEVICE_RESOURCE, separators=(",", ":")))]
    assert store.referenced_resources(patient=PatientRef("x", "nobody")) == []


def test_naive_datetimes_are_refused(store: RecordStore) -> None:
    with pytest.raises(StoreError):
        store.record_rejection(device_key=None, codec=None, raw_hex=None, reason="x", now=datetime(2026, 1, 1))


def test_logs_carry_no_identifiers_values_or_json(store: RecordStore, all_log_lines: list[str]) -> None:
    held = save(store, bp_reading(), patient=None)
    save(store, bp_reading(1))
    save(store, bp_reading(1))
    assert held.reading_id is not None
    store.assign_patient([held.reading_id], RESIDENT, PATIENT_RESOURCE, lambda r, p: drafts_for(r, p),
                         actor="nurse", now=NOW)
    store.record_checkin(RESIDENT, station=None, now=NOW, source="qr")
    items = store.claim_batch(limit=2, now=NOW, lease=timedelta(seconds=30), worker="w")
    store.schedule_retry([items[0].outbox_id], now=NOW, next_attempt_at=NOW, error="503")
    store.mark_dead(items[1].outbox_id, now=NOW, reason="422 invalid", outcome_json='{"resourceType":"x"}')
    assert all_log_lines, "the store should log what it did"
    text = "\n".join(all_log_lines)
    for secret in (RESIDENT.value, SECRET_VALUE, "valueQuantity", "resourceType", "urn:uuid"):
        assert secret not in text


async def test_saving_from_worker_threads_keeps_the_loop_free_and_serialises_writes(store: RecordStore) -> None:
    import asyncio

    results = await asyncio.gather(*(
        asyncio.to_thread(save, store, bp_reading(minute % 20)) for minute in range(40)))
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["duplicate"] * 20 + ["stored"] * 20  # each minute stored once, whichever thread won
    assert table_counts(store.path)["observations"] == 40
    counts = await asyncio.to_thread(store.outbox_counts)
    assert counts[OutboxState.PENDING] == 40


def test_a_failure_midway_leaves_no_rows_and_the_store_keeps_working(store: RecordStore) -> None:
    reading = bp_reading()
    good, bad = drafts_for(reading, RESIDENT)
    broken = ObservationDraft(bad.local_key, bad.identifier, None, None, bad.effective_at,  # type: ignore[arg-type]
                              None, bad.resource, bad.json)
    with pytest.raises(StoreError) as caught:
        store.save_reading(reading, [good, broken], patient=RESIDENT, patient_resource=PATIENT_RESOURCE,
                           device_resource=DEVICE_RESOURCE, now=NOW)
    assert RESIDENT.value not in str(caught.value) and "valueQuantity" not in str(caught.value)
    assert table_counts(store.path) == {"readings": 0, "observations": 0, "outbox": 0, "patients": 0,
                                        "devices": 0, "audit": 0}
    assert save(store, reading).outcome is StoreOutcome.STORED  # the device/patient caches were not poisoned
    assert table_counts(store.path)["devices"] == 1 and table_counts(store.path)["patients"] == 1
