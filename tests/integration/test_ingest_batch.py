"""Batched ingest (`Ingestor.ingest_frames` / `ingest_readings`, `healthhut replay`) on real SQLite stores:
the same outcomes and rows as frame-by-frame ingest, rejections kept, one bad reading costs no other."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from healthhut.cli import replay as replay_module
from healthhut.cli.replay import REPLAY_BATCH_FRAMES, replay_capture
from healthhut.config import Config, parse_config
from healthhut.drivers.capture import format_capture_line
from healthhut.drivers.codecs.base import Codec, ReadingContext
from healthhut.drivers.codecs.cms50_v7 import V7LiveData, encode_live
from healthhut.drivers.codecs.pc300 import BpResult, encode_error, encode_result
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import StoreError, UsageError
from healthhut.gateway.ingest import IncomingFrame, IngestBatchError, Ingestor, IngestOutcome, IngestStatus
from healthhut.readings import DeviceIdentity, Reading, ReadingKind, Transport
from healthhut.records.drafts import PatientRef
from healthhut.records.normalise import NormaliseSettings
from healthhut.records.observations import ObservationContext, PendingObservation
from healthhut.records.store import OutboxState, RecordStore
from healthhut.records.vital_signs import blood_pressure_observations

SITE_TZ = ZoneInfo("Asia/Shanghai")
PATIENT = PatientRef(system="urn:oid:2.999.1", value="SECRET-7654321")
OTHER = PatientRef(system="urn:oid:2.999.1", value="SECRET-1234567")
CUFF = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:74", model="UA-651BLE")
SECOND_CUFF = DeviceIdentity(Transport.BLE, address="00:1C:05:FF:E8:75", model="UA-651BLE")
KIOSK = DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0", model="PC-300", serial="K-1")
T0 = datetime(2024, 6, 23, 6, 40, tzinfo=UTC)
TRUNCATED = bytes.fromhex("0678")
IMPOSSIBLE = bytes.fromhex("06900150005d00e80706170e240a4800")  # systolic 400 mmHg: the normaliser refuses it
CUFF_PRESSURE = bytes.fromhex("009800ff07ff07")                  # intermediate cuff pressure: display only
UNSTORABLE_SYSTOLIC = 151  # the test builder below gives this reading an index row the database refuses
TABLES = ("readings", "observations", "outbox", "patients", "devices", "audit", "rejections", "checkins")


def bp_frame(index: int, *, systolic: int | None = None) -> bytes:
    """A Blood Pressure Measurement (flags 0x06: time stamp, pulse) of a new minute per index."""
    at = datetime(2024, 1, 1, 8, 0) + timedelta(minutes=index)
    systolic = 110 + index % 60 if systolic is None else systolic
    return (bytes([0x06]) + struct.pack("<hhh", systolic, 70 + index % 30, 90 + index % 20)
            + struct.pack("<HBBBBB", at.year, at.month, at.day, at.hour, at.minute, at.second)
            + struct.pack("<h", 60 + index % 40))


def context(device: DeviceIdentity = CUFF, seconds: int = 0) -> ReadingContext:
    return ReadingContext(device=device, received_at=T0 + timedelta(seconds=seconds), timezone=SITE_TZ)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store (ids and times included); the gateway row's wall-clock times left out."""
    with sqlite3.connect(path) as conn:
        rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
        rows["devices"] = conn.execute(
            "SELECT id, key, ref, resource_json, CASE WHEN key LIKE 'gateway:%' THEN NULL ELSE first_seen END, "
            "CASE WHEN key LIKE 'gateway:%' THEN NULL ELSE last_seen END FROM devices ORDER BY id").fetchall()
    return rows


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def unstorable_bp(ctx: ObservationContext) -> list[PendingObservation]:
    """The real blood-pressure builder, except that one systolic value gets no code: NOT NULL refuses it."""
    built = blood_pressure_observations(ctx)
    systolic = ctx.reading.values[next(iter(ctx.reading.values))].value
    if systolic == UNSTORABLE_SYSTOLIC:
        return [replace(p, code=None) for p in built]  # type: ignore[arg-type]
    return built


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[RecordStore]:
    """A second store, filled frame by frame, to compare the batched one with."""
    opened = RecordStore.open(tmp_path / "twin" / "records.db")
    yield opened
    opened.close()


def frame_by_frame(ingestor: Ingestor, codec: Codec, frames: Sequence[IncomingFrame],
                   patient: PatientRef | None) -> list[list[IngestOutcome]]:
    return [ingestor.ingest_frame(codec, f.data, f.context, patient, now=f.now) for f in frames]


MIXED_FRAMES = [
    IncomingFrame(bp_frame(0), context(), T0),
    IncomingFrame(bp_frame(1), context(seconds=5), T0 + timedelta(seconds=5)),
    IncomingFrame(TRUNCATED, context(seconds=6), T0 + timedelta(seconds=6)),
    IncomingFrame(IMPOSSIBLE, context(seconds=7), T0 + timedelta(seconds=7)),
    IncomingFrame(bp_frame(0), context(seconds=8), T0 + timedelta(seconds=8)),       # copy: duplicate
    IncomingFrame(bp_frame(2), context(SECOND_CUFF, 70), T0 + timedelta(seconds=70)),
    IncomingFrame(bp_frame(3), context(seconds=90), T0 + timedelta(seconds=90)),
]


def test_ingest_frames_gives_the_outcomes_and_rows_of_ingest_frame(store: RecordStore, twin: RecordStore) -> None:
    codec = get_codec("bls.measurement")
    batched = Ingestor(store, NormaliseSettings(site_id="hut-test"))
    single = Ingestor(twin, NormaliseSettings(site_id="hut-test"))
    outcomes = batched.ingest_frames(codec, MIXED_FRAMES, PATIENT)
    assert outcomes == frame_by_frame(single, codec, MIXED_FRAMES, PATIENT)
    assert [[o.status for o in frame] for frame in outcomes] == [
        [IngestStatus.STORED], [IngestStatus.STORED], [IngestStatus.REJECTED], [IngestStatus.REJECTED],
        [IngestStatus.DUPLICATE], [IngestStatus.STORED], [IngestStatus.STORED]]
    assert "byte" in (outcomes[2][0].reason or "") and "systolic" in (outcomes[3][0].reason or "")
    # a second batch overlapping the first, held this time (no resident): duplicates and new readings
    later = [IncomingFrame(bp_frame(i), context(seconds=200 + i), T0 + timedelta(seconds=200 + i))
             for i in (3, 4, 1, 5, 5)]
    outcomes = batched.ingest_frames(codec, later, None)
    assert outcomes == frame_by_frame(single, codec, later, None)
    assert [frame[0].status for frame in outcomes] == [IngestStatus.DUPLICATE, IngestStatus.HELD,
                                                        IngestStatus.DUPLICATE, IngestStatus.HELD,
                                                        IngestStatus.DUPLICATE]
    rows = dump(store.path)
    assert rows == dump(twin.path)
    assert len(rows["rejections"]) == 2 and len(rows["readings"]) == 6
    assert [r[3] for r in rows["rejections"]] == ["bls.measurement", None]  # decode, then normalise


def test_frames_without_a_now_take_the_call_s_now(store: RecordStore) -> None:
    ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    ingestor.ingest_frames(get_codec("bls.measurement"),
                           [IncomingFrame(bp_frame(0), context()), IncomingFrame(TRUNCATED, context())],
                           PATIENT, now=at)
    with sqlite3.connect(store.path) as conn:
        created = conn.execute("SELECT DISTINCT created_at FROM readings").fetchall()
        rejected = conn.execute("SELECT received_at FROM rejections").fetchall()
    assert [c[0][:19] for c in created] == ["2025-01-02T03:04:05"]
    assert [r[0][:19] for r in rejected] == ["2025-01-02T03:04:05"]


def test_display_only_frames_in_a_batch(store: RecordStore) -> None:
    ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
    cuff = ingestor.ingest_frames(get_codec("bls.intermediate-cuff"),
                                  [IncomingFrame(CUFF_PRESSURE, context())] * 3, PATIENT)
    assert cuff == [[IngestOutcome(IngestStatus.DISPLAY_ONLY)]] * 3
    live = V7LiveData(signal_strength=5, searching_too_long=False, low_spo2=False, beep=False, probe_error=False,
                      pleth=50, searching=False, bar_graph=4, pi_invalid=False, pulse_rate=72, spo2=97, pi_raw=250)
    oximeter = ingestor.ingest_frames(get_codec("cms50.v7"), [IncomingFrame(encode_live(live), context(KIOSK))],
                                      PATIENT)
    assert oximeter == [[IngestOutcome(IngestStatus.DISPLAY_ONLY)]]
    assert ingestor.ingest_frames(get_codec("bls.measurement"), [], PATIENT) == []
    assert count(store.path, "readings") == 0 and count(store.path, "rejections") == 0


def test_ingest_readings_matches_ingest_reading(store: RecordStore, twin: RecordStore) -> None:
    codec = get_codec("bls.measurement")

    def reading(index: int, frame: bytes | None = None) -> Reading:
        (only,) = codec.readings(codec.decode(frame or bp_frame(index)), context(seconds=index))
        return only

    items = [(reading(0), PATIENT), (reading(1), None), (reading(2), OTHER), (reading(3, IMPOSSIBLE), PATIENT),
             (reading(0), PATIENT), (reading(4), PATIENT), (reading(1), None)]
    batched = Ingestor(store, NormaliseSettings(site_id="hut-test")).ingest_readings(items, now=T0)
    single = Ingestor(twin, NormaliseSettings(site_id="hut-test"))
    assert batched == [single.ingest_reading(r, p, now=T0) for r, p in items]
    assert [o.status for o in batched] == [IngestStatus.STORED, IngestStatus.HELD, IngestStatus.STORED,
                                           IngestStatus.REJECTED, IngestStatus.DUPLICATE, IngestStatus.STORED,
                                           IngestStatus.DUPLICATE]
    assert dump(store.path) == dump(twin.path)
    assert store.outbox_counts()[OutboxState.HELD] == 2  # the held reading's two observations, once


def test_one_unstorable_reading_costs_no_other(store: RecordStore, all_log_lines: list[str]) -> None:
    settings = NormaliseSettings(site_id="hut-test", builders={ReadingKind.BLOOD_PRESSURE: unstorable_bp})
    ingestor = Ingestor(store, settings)
    codec = get_codec("bls.measurement")
    frames = [IncomingFrame(bp_frame(0), context()), IncomingFrame(TRUNCATED, context()),
              IncomingFrame(bp_frame(1, systolic=UNSTORABLE_SYSTOLIC), context()),
              IncomingFrame(bp_frame(2), context()), IncomingFrame(bp_frame(0), context())]
    with pytest.raises(IngestBatchError) as caught:
        ingestor.ingest_frames(codec, frames, PATIENT)
    outcomes = caught.value.outcomes
    assert [len(frame) for frame in outcomes] == [1] * 5
    first, truncated, failed, third, copy = (frame[0] for frame in outcomes)
    assert isinstance(first, IngestOutcome) and first.status is IngestStatus.STORED
    assert isinstance(truncated, IngestOutcome) and truncated.status is IngestStatus.REJECTED
    assert isinstance(failed, StoreError) and caught.value.message == failed.message
    assert isinstance(third, IngestOutcome) and third.status is IngestStatus.STORED
    assert isinstance(copy, IngestOutcome) and copy.status is IngestStatus.DUPLICATE
    assert count(store.path, "readings") == 2 and count(store.path, "rejections") == 1
    # alone, as before group commit, the reading raises its own StoreError
    with pytest.raises(StoreError) as alone:
        ingestor.ingest_frame(codec, bp_frame(1, systolic=UNSTORABLE_SYSTOLIC), context(), PATIENT)
    assert type(alone.value) is StoreError
    # ingest_readings: the same, one single-entry list per reading
    (bad,) = codec.readings(codec.decode(bp_frame(7, systolic=UNSTORABLE_SYSTOLIC)), context())
    (good,) = codec.readings(codec.decode(bp_frame(8)), context())
    with pytest.raises(IngestBatchError) as caught_readings:
        ingestor.ingest_readings([(bad, PATIENT), (good, None)])
    failed_reading, held = (entry[0] for entry in caught_readings.value.outcomes)
    assert isinstance(failed_reading, StoreError)
    assert isinstance(held, IngestOutcome) and held.status is IngestStatus.HELD
    assert count(store.path, "readings") == 3
    text = "\n".join(all_log_lines)
    assert "one at a time" in text
    for secret in (PATIENT.value, str(UNSTORABLE_SYSTOLIC), "valueQuantity", "urn:uuid"):
        assert secret not in text


# --- healthhut replay ----------------------------------------------------------------------------------

def config_for(tmp_path: Path) -> Config:
    return parse_config({"site": {"id": "hut-test", "timezone": "Asia/Shanghai"},
                         "store": {"path": str(tmp_path / "unused.db")}}, "test")


def write_capture(path: Path, lines: Sequence[tuple[DeviceIdentity, str, bytes]]) -> Path:
    path.write_text("# a capture\n" + "".join(
        format_capture_line(T0 + timedelta(seconds=i), device, codec, data) + "\n"
        for i, (device, codec, data) in enumerate(lines)), encoding="utf-8")
    return path


def replay_frame_by_frame(store: RecordStore, config: Config, capture: Path,
                          patient: PatientRef | None) -> list[dict[str, Any]]:
    """What `replay_capture` did before group commit: `ingest_frame` per frame, same entries."""
    from healthhut.drivers.capture import read_capture
    from healthhut.drivers.codecs.base import SingleFrameCodec
    from healthhut.records.ranges import ranges_from_mapping

    settings = NormaliseSettings(site_id=config.site.id, ranges=ranges_from_mapping(config.ranges))
    ingestor = Ingestor(store, settings, site_name=config.site.name)
    entries: list[dict[str, Any]] = []
    for line in read_capture(capture):
        codec = get_codec(line.codec)
        ctx = ReadingContext(device=line.device, received_at=line.received_at, timezone=config.site.tz)
        chunks = [line.data] if isinstance(codec, SingleFrameCodec) else [f.data for f in codec.frames(line.data)]
        for chunk in chunks:
            for outcome in ingestor.ingest_frame(codec, chunk, ctx, patient, now=line.received_at):
                entry: dict[str, Any] = {"line": line.line_number, "codec": line.codec,
                                         "status": outcome.status.value}
                if outcome.reading_id is not None:
                    entry["reading_id"] = outcome.reading_id
                if outcome.observation_ids:
                    entry["observation_ids"] = list(outcome.observation_ids)
                if outcome.reason:
                    entry["reason"] = outcome.reason
                entries.append(entry)
    return entries


def long_capture() -> list[tuple[DeviceIdentity, str, bytes]]:
    kiosk_pair = (encode_result(BpResult(systolic=150, mean_arterial=110, diastolic=92, pulse_rate=70,
                                         irregular_heartbeat=False)) + encode_error(3))
    lines: list[tuple[DeviceIdentity, str, bytes]] = []
    for i in range(300):
        lines.append((CUFF if i % 2 else SECOND_CUFF, "bls.measurement", bp_frame(i)))
        if i % 97 == 5:
            lines.append((KIOSK, "pc300", kiosk_pair))  # two frames on one line, another codec
        if i % 61 == 3:
            lines.append((CUFF, "bls.intermediate-cuff", CUFF_PRESSURE))
        if i % 89 == 7:
            lines.append((CUFF, "bls.measurement", TRUNCATED))
            lines.append((CUFF, "bls.measurement", IMPOSSIBLE))
        if i % 45 == 44:
            lines.append((CUFF if (i - 3) % 2 else SECOND_CUFF, "bls.measurement", bp_frame(i - 3)))  # re-sent
    return lines


def counting(calls: list[int], save: Callable[..., Any]) -> Callable[..., Any]:
    def spy(items: Sequence[Any]) -> Any:
        calls.append(len(items))
        return save(items)
    return spy


@pytest.mark.parametrize("batch_frames", [7, REPLAY_BATCH_FRAMES])
def test_replay_in_batches_gives_the_entries_and_rows_of_frame_by_frame(
        store: RecordStore, twin: RecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        batch_frames: int) -> None:
    monkeypatch.setattr(replay_module, "REPLAY_BATCH_FRAMES", batch_frames)
    capture = write_capture(tmp_path / "capture.jsonl", long_capture())
    config = config_for(tmp_path)
    calls: list[int] = []
    monkeypatch.setattr(store, "save_readings", counting(calls, store.save_readings))
    entries = replay_capture(store, config, capture, PATIENT)
    assert entries == replay_frame_by_frame(twin, config, capture, PATIENT)
    assert dump(store.path) == dump(twin.path)
    statuses = [e["status"] for e in entries]
    # a kiosk line's second frame has its first's arrival time and no clock of its own: a duplicate
    assert statuses.count("stored") == 300 + 4 and statuses.count("duplicate") == 6 + 4
    assert statuses.count("rejected") == 8 and statuses.count("display-only") == 5
    assert len(entries) == len(long_capture()) + 4  # one entry per frame: each pc300 line has two
    assert max(calls) <= batch_frames and sum(calls) == 300 + 2 * 4 + 6  # every stored reading in some batch
    assert len(calls) < 40 if batch_frames == REPLAY_BATCH_FRAMES else len(calls) > 40
    # replaying again stores nothing new
    assert {e["status"] for e in replay_capture(store, config, capture, PATIENT)} == {
        "duplicate", "rejected", "display-only"}


def test_replay_stores_the_frames_before_a_bad_line(store: RecordStore, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture.jsonl",
                            [(CUFF, "bls.measurement", bp_frame(i)) for i in range(5)])
    with capture.open("a", encoding="utf-8") as handle:
        handle.write('{"received_at": "not a time"}\n')
    with pytest.raises(UsageError, match="line 7"):
        replay_capture(store, config_for(tmp_path), capture, None)
    assert count(store.path, "readings") == 5
