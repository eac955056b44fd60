"""CMS50 drivers against pty-pair emulators: live data, keep-alive, detection, downloads, garbage, unplug."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from healthhut.drivers.codecs import cms50_v7
from healthhut.drivers.emulators.serial_cms50 import Cms50LegacyEmulator, Cms50V7Emulator, OximeterScript
from healthhut.drivers.emulators.serial_pty import SerialFaults
from healthhut.drivers.serial_oximeter import Cms50Generation, Cms50Oximeter, OximeterOptions
from healthhut.drivers.serial_session import DriverContext
from healthhut.gateway.ingest import Ingestor, IngestStatus
from healthhut.readings import (
    AbsentReason,
    DeviceIdentity,
    Metric,
    Reading,
    ReadingKind,
    StatusFlag,
    TimeSource,
    Transport,
)
from healthhut.records.normalise import NormaliseSettings
from healthhut.records.store import RecordStore

HUT = timezone(timedelta(hours=8))
FAST = OximeterOptions(live_interval=0, detect_timeout=0.6, silence_timeout=0.3, watchdog=2.0,
                       request_timeout=1.0, upload_request_every=0.2, upload_wait=5.0)
NIGHT = [(97, 72)] * 100 + [(0x7F, 0xFF)]   # 100 s of data and one invalid second


def stepping_clock(start: datetime = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)) -> Callable[[], datetime]:
    """A clock that moves 10 ms per call, so every Reading has its own receive time."""
    ticks = itertools.count()
    return lambda: start + timedelta(milliseconds=10 * next(ticks))


def context(link: Path) -> DriverContext:
    return DriverContext(DeviceIdentity(Transport.SERIAL, address=str(link), model="CMS50D+"), timezone=HUT,
                         clock=stepping_clock())


async def take(oximeter: Cms50Oximeter, n: int) -> list[Reading]:
    out: list[Reading] = []
    async for reading in oximeter.readings():
        out.append(reading)
        if len(out) >= n:
            break
    return out


def ingest_twice(db: Path, reading: Reading) -> tuple[IngestStatus, IngestStatus]:
    store = RecordStore.open(db)
    try:
        ingestor = Ingestor(store, NormaliseSettings(site_id="hut-test"))
        first = ingestor.ingest_reading(reading, None)
        second = ingestor.ingest_reading(reading, None)
        return first.status, second.status
    finally:
        store.close()


async def test_v7_live_readings_with_finger_out(tmp_path: Path) -> None:
    script = OximeterScript(spo2=96, pulse_rate=64, finger_out=[range(30, 50)])
    async with Cms50V7Emulator(tmp_path / "tty", script=script, rate_hz=200) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=FAST) as oximeter:
            readings = await take(oximeter, 80)
            assert oximeter.session is not None
            framed = oximeter.session.framer.frame_count
            assert oximeter.discarded == 0 and oximeter.decode_errors == 0
    assert device.commands[:2] == [cms50_v7.CMD_STOP_STORED, cms50_v7.CMD_START_LIVE]
    assert len(readings) == 80 <= framed                      # one Reading per live packet, none lost
    assert len({r.received_at for r in readings}) == 80       # and none twice
    out = [r for r in readings if StatusFlag.FINGER_OUT in r.status]
    assert len(out) == 20
    assert all(r.values[Metric.SPO2].absent is AbsentReason.SENSOR_OFF for r in out)
    good = [r for r in readings if not r.status]
    assert {r.values[Metric.SPO2].value for r in good} == {Decimal(96)}
    assert {r.values[Metric.PULSE_RATE].value for r in good} == {Decimal(64)}
    assert all(r.kind is ReadingKind.SPO2 and r.time_source is TimeSource.RECEIPT for r in readings)


async def test_v7_live_is_reduced_to_one_reading_per_interval(tmp_path: Path) -> None:
    options = OximeterOptions(live_interval=0.1, watchdog=2.0)
    async with Cms50V7Emulator(tmp_path / "tty", rate_hz=200) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=options) as oximeter:
            readings = await take(oximeter, 5)
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(readings)]
    assert all(gap >= timedelta(seconds=0.1) for gap in gaps)   # the 10 ms clock: 10 packets per Reading


async def test_v7_keep_alive_keeps_the_stream_going(tmp_path: Path) -> None:
    options = OximeterOptions(live_interval=0, keepalive_every=0.1, watchdog=2.0)
    async with Cms50V7Emulator(tmp_path / "tty", rate_hz=200, keepalive_timeout=0.4) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=options) as oximeter:
            readings = await take(oximeter, 240)    # 1.2 s at 200/s: three keep-alive windows
            assert oximeter.session is not None and oximeter.session.reopens == 0
    assert len(readings) == 240
    assert device.commands.count(cms50_v7.CMD_KEEP_ALIVE) >= 5


async def test_v7_without_keep_alive_goes_silent_and_the_watchdog_restarts_it(tmp_path: Path) -> None:
    options = OximeterOptions(live_interval=0, keepalive_every=60, watchdog=0.3,
                              backoff=FAST.backoff)
    async with Cms50V7Emulator(tmp_path / "tty", rate_hz=200, keepalive_timeout=0.2) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=options) as oximeter:
            await take(oximeter, 100)    # more than 0.2 s of packets: needs a restart in between
            assert oximeter.session is not None and oximeter.session.reopens >= 1
    assert device.commands.count(cms50_v7.CMD_START_LIVE) >= 2


async def test_generation_is_detected(tmp_path: Path) -> None:
    async with Cms50V7Emulator(tmp_path / "v7", rate_hz=200) as device:
        found = await Cms50Oximeter(device.path, context(tmp_path / "v7"), options=FAST).detect_generation()
    assert found is Cms50Generation.V7
    # A generation-A unit talks noise at 115200 (wrong baud): detection moves on to 19200 8O1.
    async with Cms50LegacyEmulator(tmp_path / "a", rate_hz=200) as legacy:
        oximeter = Cms50Oximeter(legacy.path, context(tmp_path / "a"), options=FAST)
        assert await oximeter.detect_generation() is Cms50Generation.LEGACY
        readings = await take(oximeter, 10)
        await oximeter.close()
    assert {r.values[Metric.SPO2].value for r in readings} == {Decimal(97)}


async def test_v7_recording_download_is_one_series_stored_once(tmp_path: Path) -> None:
    script = OximeterScript(recording=NIGHT, recording_start=datetime(2026, 11, 27, 22, 41, 9))
    async with Cms50V7Emulator(tmp_path / "tty", script=script, rate_hz=200) as device:
        oximeter = Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=FAST)
        series = await oximeter.download_recording()
        again = await oximeter.download_recording()
    assert series is not None and again is not None
    assert series.kind is ReadingKind.OXIMETRY_SERIES
    assert series.measured_at == datetime(2026, 11, 27, 22, 41, 9, tzinfo=HUT)
    assert series.time_source is TimeSource.DEVICE and StatusFlag.FROM_STORAGE in series.status
    spo2, pulse = series.series[Metric.SPO2], series.series[Metric.PULSE_RATE]
    assert len(spo2.samples) == 101 and spo2.period == timedelta(seconds=1)   # the padding pair is dropped
    assert spo2.samples[:100] == (97.0,) * 100 and spo2.samples[100] is None and pulse.samples[100] is None
    assert again.series == series.series
    statuses = await asyncio.to_thread(ingest_twice, tmp_path / "hut.db", series)
    assert statuses[1] is IngestStatus.DUPLICATE and statuses[0] is not IngestStatus.DUPLICATE
    assert (await asyncio.to_thread(ingest_twice, tmp_path / "hut.db", again)) == (
        IngestStatus.DUPLICATE, IngestStatus.DUPLICATE)   # a re-download is the same record


async def test_v7_unit_without_recording(tmp_path: Path) -> None:
    async with Cms50V7Emulator(tmp_path / "tty") as device:
        oximeter = Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=FAST)
        assert await oximeter.download_recording() is None


async def test_legacy_upload_with_clock_and_length(tmp_path: Path) -> None:
    script = OximeterScript(recording=[(95, 140)] * 50 + [(0, 0)] * 5,
                            recording_start=datetime(2026, 11, 27, 23, 15))
    async with Cms50LegacyEmulator(tmp_path / "tty", script=script, rate_hz=200) as device:
        oximeter = Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.LEGACY,
                                 options=FAST)
        series = await oximeter.download_recording()
        assert device.uploads == 1
        await asyncio.sleep(0.05)
    assert series is not None and series.time_source is TimeSource.DEVICE
    assert series.measured_at == datetime(2026, 11, 27, 23, 15, tzinfo=HUT)
    assert series.series[Metric.PULSE_RATE].samples == (140.0,) * 50 + (None,) * 5
    assert device.bytes_received.endswith(bytes.fromhex("F6 F6 F6 F6 F6 F6"))   # back to live mode


async def test_legacy_upload_from_a_unit_without_clock_or_length(tmp_path: Path) -> None:
    script = OximeterScript(recording=[(93, 80)] * 30)
    async with Cms50LegacyEmulator(tmp_path / "tty", script=script, rate_hz=200, send_length=False) as device:
        oximeter = Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.LEGACY,
                                 options=FAST)
        series = await oximeter.download_recording()
    assert series is not None
    assert series.time_source is TimeSource.UNKNOWN and series.measured_at is None
    assert StatusFlag.CLOCK_NOT_SET in series.status
    assert series.series[Metric.SPO2].samples == (93.0,) * 30
    statuses = await asyncio.to_thread(ingest_twice, tmp_path / "hut.db", series)
    assert statuses[1] is IngestStatus.DUPLICATE


@pytest.mark.parametrize("faults", [
    SerialFaults(garbage_every=3, garbage_bytes=7, split_frames=True),
    SerialFaults(drop_every=5, split_frames=True),
], ids=["garbage", "dropped-bytes"])
async def test_v7_resyncs_after_garbage_or_dropped_bytes(tmp_path: Path, faults: SerialFaults) -> None:
    async with Cms50V7Emulator(tmp_path / "tty", faults=faults, rate_hz=300) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=FAST) as oximeter:
            readings = await take(oximeter, 150)
            discarded = oximeter.discarded
    assert discarded > 0
    # V7 has no checksum, but a live packet is 9 bytes with a single type byte: 7 garbage bytes cannot fake one,
    # and a packet short of one byte meets the next type byte. (Both at once can: see the next test.)
    assert {r.values[Metric.SPO2].value for r in readings} == {Decimal(97)}
    assert {r.values[Metric.PULSE_RATE].value for r in readings} == {Decimal(72)}


async def test_v7_survives_garbage_and_drops_together(tmp_path: Path) -> None:
    faults = SerialFaults(garbage_every=3, garbage_bytes=7, drop_every=7, split_frames=True)
    async with Cms50V7Emulator(tmp_path / "tty", faults=faults, rate_hz=300) as device:  # noqa: SIM117 - the inner context needs device.path
        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=FAST) as oximeter:
            readings = await take(oximeter, 150)
    # A cut packet completed by garbage decodes to nonsense (no checksum to catch it): rare, never a crash.
    right = [r for r in readings if r.values[Metric.SPO2].value == Decimal(97)]
    assert len(right) >= 0.8 * len(readings)


async def test_unplug_mid_stream_reopens_with_backoff(tmp_path: Path, all_log_lines: list[str]) -> None:
    delays: list[float] = []
    async with Cms50V7Emulator(tmp_path / "tty", rate_hz=200,
                               faults=SerialFaults(unplug_after_frames=40)) as device:

        async def sleep(delay: float) -> None:   # injected backoff sleep: replug instead of waiting
            delays.append(delay)
            if not device.plugged.is_set():
                await device.replug()

        async with Cms50Oximeter(device.path, context(tmp_path / "tty"), generation=Cms50Generation.V7,
                                 options=FAST, sleep=sleep) as oximeter:
            readings = await take(oximeter, 100)
            assert oximeter.session is not None and oximeter.session.reopens == 1
    assert len(readings) == 100 and delays and delays[0] == FAST.backoff.initial
    assert device.commands.count(cms50_v7.CMD_START_LIVE) == 2   # live restarted on the new port
    assert any("reopened" in line for line in all_log_lines)
    assert not any("97" in line.split(" ", 2)[-1] for line in all_log_lines)   # no measured values logged


async def test_legacy_unplug_and_reopen(tmp_path: Path) -> None:
    async with Cms50LegacyEmulator(tmp_path / "tty", rate_hz=200,
                                   faults=SerialFaults(unplug_after_frames=30)) as device:

        async def sleep(delay: float) -> None:
            if not device.plugged.is_set():
                await device.replug()

        async with Cms50Oximeter(device.path, context(tmp_path / "tty"),
                                 generation=Cms50Generation.LEGACY, options=FAST, sleep=sleep) as oximeter:
            readings = await take(oximeter, 60)
            assert oximeter.session is not None and oximeter.session.reopens == 1
    assert {r.values[Metric.SPO2].value for r in readings} == {Decimal(97)}
