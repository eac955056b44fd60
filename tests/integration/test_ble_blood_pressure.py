"""End to end through BleakScanner/BleakClient: the BP driver against an emulated cuff on a bumble link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from decimal import Decimal

import pytest

from healthhut.drivers.ble.ble_blood_pressure import BleBloodPressureDriver
from healthhut.drivers.ble.gatt_common import MemoryWatermarks
from healthhut.drivers.ble.transport_ble import ADVICE_BONDED, ADVICE_OUT_OF_RANGE, BleBackend, BleTransport, scan
from healthhut.drivers.codecs.blood_pressure import BloodPressureMeasurement
from healthhut.drivers.codecs.gatt_time import DeviceTime
from healthhut.drivers.emulators.ble_blood_pressure import BloodPressureCuff, CuffBehaviour
from healthhut.drivers.emulators.ble_common import DeviceClock
from healthhut.drivers.emulators.ble_rig import BleRig, start_rig
from healthhut.errors import DeviceError
from healthhut.readings import AbsentReason, Metric, Reading, TimeSource

ADDRESS = "C0:10:00:00:00:01"


def measurement(systolic: int, minute: int = 0) -> BloodPressureMeasurement:
    return BloodPressureMeasurement(Decimal(systolic), Decimal(80), Decimal(93),
                                    timestamp=DeviceTime(2024, 6, 23, 14, minute, 10), pulse_rate=Decimal(72))


def stored(n: int) -> list[BloodPressureMeasurement]:
    return [measurement(110 + i, i) for i in range(n)]


class Store:
    """Stands in for the records store: remembers what was committed, keyed like the store would."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []

    async def commit(self, reading: Reading) -> None:
        self.readings.append(reading)

    @property
    def sequences(self) -> list[int | None]:
        return [r.sequence for r in self.readings]


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def rig() -> AsyncIterator[BleRig]:
    rig = await start_rig()
    yield rig
    await rig.close()


async def connect(rig: BleRig, cuff: BloodPressureCuff) -> BleBloodPressureDriver:
    await rig.add(cuff)
    transport = BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2, sleep=no_sleep)
    driver = BleBloodPressureDriver(await transport.connect(), timezone=UTC, record_timeout=2)
    await driver.start()
    return driver


async def test_discovery_finds_the_cuff_by_service(rig: BleRig) -> None:
    await rig.add(BloodPressureCuff(ADDRESS, name="EMU-BP"))
    found = await scan(seconds=0.2, service_uuids=["1810"], backend=BleBackend(**rig.backend()))
    assert [(a.address, a.name) for a in found] == [(ADDRESS, "EMU-BP")]
    assert "00001810-0000-1000-8000-00805f9b34fb" in found[0].service_uuids
    assert await scan(seconds=0.2, service_uuids=["1822"], backend=BleBackend(**rig.backend())) == []


async def test_identity_battery_and_features(rig: BleRig) -> None:
    driver = await connect(rig, BloodPressureCuff(ADDRESS))
    assert driver.identity.model == "EMU-BP1"
    assert driver.identity.serial == "BP0001"   # NUL padding trimmed
    assert driver.identity.system_id == "C01000FFFE000001"  # OUI half + FFFE + device half of C0:10:…:01
    assert driver.battery == 87
    features = await driver.features()
    assert features is not None and int(features.supported) == 0x1F


async def test_live_measurement_becomes_a_reading_and_cuff_pressure_does_not(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS)
    driver = await connect(rig, cuff)
    shown: list[bytes] = []
    driver.on_display = lambda uuid, frame: shown.append(frame)
    readings = driver.live(count=1, within=2)
    first = asyncio.ensure_future(anext(readings))
    await asyncio.sleep(0.05)
    await cuff.inflate([40, 80, 120, 160])
    await cuff.measure(measurement(128))
    reading = await first
    assert shown[0] == bytes.fromhex("002800ff07ff07")   # cuff at 40 mmHg, diastolic/MAP slots NaN
    assert len(shown) == 4
    assert reading.values[Metric.SYSTOLIC].value == Decimal(128)
    assert reading.values[Metric.PULSE_RATE].value == Decimal(72)
    assert reading.time_source is TimeSource.DEVICE
    assert reading.clock_skew is not None and abs(reading.clock_skew) < timedelta(seconds=2)


async def test_clock_skew_is_read_before_the_clock_is_set(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, clock=DeviceClock(offset=timedelta(hours=-2)))
    driver = await connect(rig, cuff)
    assert driver.clock is not None and driver.clock.skew is not None
    assert abs(driver.clock.skew - timedelta(hours=2)) < timedelta(seconds=2)
    assert driver.clock.set_to is not None and len(cuff.clock.writes) == 1
    assert abs(cuff.clock.offset) < timedelta(seconds=2)


async def test_unset_clock_means_time_unknown_and_is_then_set(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, clock=DeviceClock(unset=True),
                             records=[BloodPressureMeasurement(Decimal(120), Decimal(80), Decimal(93),
                                                               timestamp=DeviceTime.unknown())])
    driver = await connect(rig, cuff)
    assert driver.clock is not None and driver.clock.device_time is None and driver.clock.skew is None
    assert cuff.clock.unset is False  # the gateway wrote its time
    store = Store()
    result = await driver.download(store.commit, MemoryWatermarks())
    assert result.complete and store.readings[0].time_source is TimeSource.UNKNOWN
    assert store.readings[0].measured_at is None


async def test_read_only_clock_is_not_written(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, clock=DeviceClock(offset=timedelta(minutes=7), writable=False))
    driver = await connect(rig, cuff)
    assert driver.clock is not None and not driver.clock.writable and driver.clock.set_to is None
    assert driver.clock.skew is not None and abs(driver.clock.skew + timedelta(minutes=7)) < timedelta(seconds=2)
    assert cuff.clock.writes == []


async def test_download_all_then_only_newer_records(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, records=stored(5))
    driver = await connect(rig, cuff)
    assert await driver.stored_count() == 5
    marks, store = MemoryWatermarks(), Store()
    first = await driver.download(store.commit, marks)
    assert first.complete and first.committed == 5 and first.high_water_mark == 5
    assert store.sequences == [1, 2, 3, 4, 5]
    assert cuff.racp.requests[-1] == bytes.fromhex("0101")
    cuff.add_record(measurement(150, 30))
    second = await driver.download(store.commit, marks)
    assert cuff.racp.requests[-1] == bytes.fromhex("0103010600")  # ≥ 6
    assert second.complete and second.committed == 1 and store.sequences == [1, 2, 3, 4, 5, 6]
    third = await driver.download(store.commit, marks)
    assert third.complete and third.committed == 0 and third.response is not None


async def test_interrupted_download_resumes_from_n_and_stores_nothing_twice(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, records=stored(7), behaviour=CuffBehaviour(disconnect_after=3))
    driver = await connect(rig, cuff)
    marks, store = MemoryWatermarks(), Store()
    cut = await driver.download(store.commit, marks)
    assert not cut.complete and cut.error is not None and cut.committed == 3
    assert await marks.load(driver.identity.key) == 3
    cuff.racp.disconnect_after = None
    transport = BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2, sleep=no_sleep)
    again = BleBloodPressureDriver(await transport.reconnect(), timezone=UTC, record_timeout=2)
    await again.start()
    resumed = await again.download(store.commit, marks)
    assert cuff.racp.requests[-1] == bytes.fromhex("0103010400")  # from 4: not 0, not 7
    assert resumed.complete and resumed.committed == 4
    assert store.sequences == [1, 2, 3, 4, 5, 6, 7]


async def test_commit_failure_keeps_the_mark(rig: BleRig) -> None:
    driver = await connect(rig, BloodPressureCuff(ADDRESS, records=stored(3)))
    marks, seen = MemoryWatermarks(), []

    async def failing_commit(reading: Reading) -> None:
        if reading.sequence == 2:
            raise OSError("disk full")
        seen.append(reading.sequence)

    with pytest.raises(OSError):
        await driver.download(failing_commit, marks)
    assert seen == [1] and await marks.load(driver.identity.key) == 1


async def test_duplicate_and_malformed_records(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, records=stored(4),
                             behaviour=CuffBehaviour(duplicate_records=True, malformed_records=frozenset({3})))
    driver = await connect(rig, cuff)
    store = Store()
    result = await driver.download(store.commit, MemoryWatermarks())
    assert result.complete and store.sequences == [1, 2, 4]
    assert result.skipped_duplicates == 3 and result.rejected == 2


async def test_slow_indications_still_complete(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, records=stored(3), behaviour=CuffBehaviour(indication_delay=0.05))
    driver = await connect(rig, cuff)
    store = Store()
    assert (await driver.download(store.commit, MemoryWatermarks())).complete
    assert store.sequences == [1, 2, 3]


async def test_err_frame_gives_absent_values_and_truncated_frames_are_rejected(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS, behaviour=CuffBehaviour(truncate_frames=True))
    driver = await connect(rig, cuff)
    readings = driver.live(count=1, within=2)
    first = asyncio.ensure_future(anext(readings))
    await asyncio.sleep(0.05)
    await cuff.measure(measurement(120))   # truncated: rejected, no crash
    cuff.behaviour.truncate_frames = False
    await cuff.measure(None)               # the "Err" frame
    reading = await first
    assert driver.rejected_frames == 1
    assert reading.values[Metric.SYSTOLIC].absent is AbsentReason.NOT_A_NUMBER


async def test_refused_cccd_write_is_a_clear_device_error(rig: BleRig) -> None:
    driver = await connect(rig, BloodPressureCuff(ADDRESS, behaviour=CuffBehaviour(refuse_cccd=True)))
    with pytest.raises(DeviceError) as caught:
        await anext(driver.live(count=1, within=1))
    assert caught.value.advice == ADVICE_BONDED


async def test_forced_disconnect_ends_live_readings_and_reconnect_works(rig: BleRig) -> None:
    cuff = BloodPressureCuff(ADDRESS)
    driver = await connect(rig, cuff)
    pending = asyncio.ensure_future(anext(driver.live(count=1, within=5)))
    await asyncio.sleep(0.05)
    await cuff.disconnect()
    with pytest.raises(DeviceError):
        await pending
    assert driver.connection.disconnected.is_set()
    transport = BleTransport(ADDRESS, backend=BleBackend(**rig.backend()), scan_timeout=2, sleep=no_sleep)
    connection = await transport.reconnect()
    assert connection.is_connected
    await connection.close()


async def test_absent_device_is_out_of_range_and_backoff_uses_injected_sleep(rig: BleRig) -> None:
    delays: list[float] = []

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)

    transport = BleTransport("C0:99:99:99:99:99", backend=BleBackend(**rig.backend()), scan_timeout=0.1,
                             backoff=(1.0, 5.0), sleep=record_sleep)
    with pytest.raises(DeviceError) as caught:
        await transport.reconnect(attempts=3)
    assert caught.value.advice == ADVICE_OUT_OF_RANGE
    assert delays == [1.0, 5.0]


async def test_driver_logs_carry_no_measured_values(rig: BleRig, all_log_lines: list[str]) -> None:
    cuff = BloodPressureCuff(ADDRESS, records=stored(3),
                             behaviour=CuffBehaviour(disconnect_after=2, malformed_records=frozenset({1})))
    driver = await connect(rig, cuff)
    await driver.download(Store().commit, MemoryWatermarks())
    ours = [line for line in all_log_lines if " healthhut." in line]
    assert ours, "the download should have logged its interruption"
    for value in ("110", "111", "112", "mm[Hg]"):  # field names in decode reasons are fine, values not
        assert not any(value in line for line in ours), value


async def test_connect_retries_are_bounded_by_bleak_retry_connector(rig: BleRig) -> None:
    await rig.add(BloodPressureCuff(ADDRESS))
    assert rig.central is not None
    backend = BleBackend(**rig.backend())
    rig.central.failing_connects = 2
    connection = await BleTransport(ADDRESS, backend=backend, scan_timeout=2, max_attempts=3).connect()
    assert connection.is_connected and rig.central.connect_attempts == 3
    await connection.close()
    rig.central.failing_connects, rig.central.connect_attempts = 5, 0
    with pytest.raises(DeviceError):
        await BleTransport(ADDRESS, backend=backend, scan_timeout=2, max_attempts=2).connect()
    assert rig.central.connect_attempts == 2
