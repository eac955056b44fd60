"""The shared ingest path on a real SQLite store: stored, duplicate, rejected (with the reason kept), held,
display-only. Every frame ends in exactly one of these; nothing is logged and dropped."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.cms50_v7 import V7LiveData, encode_live
from healthhut.drivers.codecs.pc300 import BpResult, encode_error, encode_result
from healthhut.drivers.codecs.registry import get_codec
from healthhut.gateway.ingest import Ingestor, IngestStatus
from healthhut.readings import DeviceIdentity, Transport
from healthhut.records.drafts import PatientRef
from healthhut.records.normalise import NormaliseSettings
from healthhut.records.store import RecordStore

PATIENT = PatientRef(system="urn:oid:2.999.1", value="7654321")
CUFF = DeviceIdentity(Transport.BLE, address="00:1c:05:ff:e8:74")
KIOSK = DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0", model="PC-300", serial="K-1")


def context(device: DeviceIdentity, minute: int = 40) -> ReadingContext:
    return ReadingContext(device=device, received_at=datetime(2024, 6, 23, 6, minute, tzinfo=UTC),
                          timezone=ZoneInfo("Asia/Shanghai"))


def count(store: RecordStore, table: str) -> int:
    with sqlite3.connect(store.path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_each_frame_has_exactly_one_fate(store: RecordStore) -> None:
    ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
    bls = get_codec("bls.measurement")
    frame = bytes.fromhex("06780050005d00e80706170e230a4800")
    stored = ingestor.ingest_frame(bls, frame, context(CUFF), PATIENT)
    assert [o.status for o in stored] == [IngestStatus.STORED]
    assert len(stored[0].observation_ids) == 2
    again = ingestor.ingest_frame(bls, frame, context(CUFF), PATIENT)
    assert [o.status for o in again] == [IngestStatus.DUPLICATE]
    truncated = ingestor.ingest_frame(bls, frame[:5], context(CUFF), PATIENT)
    assert truncated[0].status is IngestStatus.REJECTED and "byte" in (truncated[0].reason or "")
    # systolic 400 mmHg cannot be a real reading: rejected with a reason, not stored, not crashed
    impossible = bytes.fromhex("069001500 05d00e80706170e240a4800".replace(" ", ""))
    refused = ingestor.ingest_frame(bls, impossible, context(CUFF), PATIENT)
    assert refused[0].status is IngestStatus.REJECTED
    cuff_pressure = ingestor.ingest_frame(get_codec("bls.intermediate-cuff"), bytes.fromhex("009800ff07ff07"),
                                          context(CUFF), PATIENT)
    assert cuff_pressure[0].status is IngestStatus.DISPLAY_ONLY
    held = ingestor.ingest_frame(bls, bytes.fromhex("06790050005d00e80706170e250a4800"), context(CUFF), None)
    assert held[0].status is IngestStatus.HELD
    assert count(store, "observations") == 4
    assert count(store, "outbox") == 4
    assert count(store, "rejections") == 2
    with sqlite3.connect(store.path) as connection:
        reasons = [row[0] for row in connection.execute("SELECT reason FROM rejections ORDER BY id")]
        raw = [row[0] for row in connection.execute("SELECT raw_hex FROM rejections ORDER BY id")]
    assert all(reasons) and raw[0] == frame[:5].hex()


def test_live_oximetry_frames_are_display_only(store: RecordStore) -> None:
    ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
    live = V7LiveData(signal_strength=5, searching_too_long=False, low_spo2=False, beep=False, probe_error=False,
                      pleth=50, searching=False, bar_graph=4, pi_invalid=False, pulse_rate=72, spo2=97, pi_raw=250)
    outcomes = ingestor.ingest_frame(get_codec("cms50.v7"), encode_live(live), context(KIOSK), PATIENT)
    assert [o.status for o in outcomes] == [IngestStatus.DISPLAY_ONLY]
    assert count(store, "observations") == 0


def test_kiosk_bp_result_and_error(store: RecordStore) -> None:
    ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
    pc300 = get_codec("pc300")
    result = encode_result(BpResult(systolic=150, mean_arterial=110, diastolic=92, pulse_rate=70,
                                    irregular_heartbeat=False))
    frames = pc300.frames(result)
    outcomes = ingestor.ingest_frame(pc300, frames[0].data, context(KIOSK), PATIENT)
    assert [o.status for o in outcomes] == [IngestStatus.STORED]
    error = pc300.frames(encode_error(3))[0].data
    failed = ingestor.ingest_frame(pc300, error, context(KIOSK, minute=42), PATIENT)
    # a failed measurement is kept with its values absent, so staff and doctors see the attempt
    assert [o.status for o in failed] == [IngestStatus.STORED]
    assert count(store, "readings") == 2
    with sqlite3.connect(store.path) as connection:
        texts = [row[0] for row in connection.execute(
            "SELECT resource_json FROM observations WHERE code = '85354-9' ORDER BY id")]
    assert '"dataAbsentReason"' not in texts[0] and '"dataAbsentReason"' in texts[1]
    # the same kiosk frame seen again at the same instant (a replayed capture) is not stored twice
    repeated = ingestor.ingest_frame(pc300, error, context(KIOSK, minute=42), PATIENT)
    assert [o.status for o in repeated] == [IngestStatus.DUPLICATE]


def test_claimed_records_carry_their_patient_device_and_gateway(store: RecordStore) -> None:
    from datetime import timedelta

    ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"), site_name="Test hut")
    ingestor.ingest_frame(get_codec("bls.measurement"), bytes.fromhex("06780050005d00e80706170e230a4800"),
                          context(CUFF), PATIENT)
    items = store.claim_batch(limit=10, now=datetime.now(UTC), lease=timedelta(minutes=1), worker="test")
    assert len(items) == 2
    for item in items:
        assert item.gateway_json is not None and '"Device"' in item.gateway_json
        assert '"Patient"' in item.patient_json and '"Device"' in item.device_json
        assert "urn:uuid:" in item.observation_json
